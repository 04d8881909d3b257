"""Images on disk: decode files into float tensors, find them in folders, write them.

* :mod:`~perceptiq.io.images.decode`: reading files safely (regular files only, size and pixel caps),
  mode conversions, EXIF orientation, 16-bit PNG/TIFF, batched nvJPEG on CUDA.
* :mod:`~perceptiq.io.images.load`: many files decoded in worker threads, in order, errors as items.
* :mod:`~perceptiq.io.images.discover`: image files in folders by suffix (:data:`IMAGE_EXTENSIONS`),
  references paired with images (a folder or a manifest).
* :mod:`~perceptiq.io.images.sources`: what a scoring run reads: folders, files, glob patterns,
  manifests and fsspec URLs listed in one order (:func:`list_sources`), one entry read and decoded
  (:func:`load_source`).
* :mod:`~perceptiq.io.images.write`: :func:`save_image` (8-bit through Pillow, 16-bit PNG).

The public names of the five modules are importable from here.
"""

from perceptiq.io.images.decode import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    ImageInfo,
    ImageTooLargeError,
    apply_exif_orientation,
    choose_decoder,
    decode_image,
    probe_image,
    read_image,
)
from perceptiq.io.images.discover import IMAGE_EXTENSIONS, find_images, pair_references, scan_images
from perceptiq.io.images.load import LoadedImage, load_images
from perceptiq.io.images.sources import Source, is_url, list_sources, load_source, read_source_bytes
from perceptiq.io.images.write import save_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_BYTES",
    "ImageDecodeError",
    "ImageTooLargeError",
    "ImageInfo",
    "LoadedImage",
    "probe_image",
    "choose_decoder",
    "read_image",
    "decode_image",
    "load_images",
    "apply_exif_orientation",
    "find_images",
    "scan_images",
    "pair_references",
    "save_image",
    "Source",
    "is_url",
    "list_sources",
    "load_source",
    "read_source_bytes",
]
