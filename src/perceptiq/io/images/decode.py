"""Decode image files into float tensors, safely (regular files only, size and pixel caps).

Every reader returns a float tensor in [0, 1] of shape (1, C, H, W): C = 3 (RGB) by default, C = 1 with
``channels="grey"``. Pixel values are taken as encoded (no colour management: an embedded ICC profile
is ignored and the data are treated as sRGB-encoded values). The EXIF orientation tag is applied, so
the tensor shows the image the way a viewer displays it.

Mode conversions (Pillow modes, see the Pillow "Concepts" page):

- ``1``, ``L``: grey, ``v / 255`` (``1`` becomes 0 or 1).
- ``LA``, ``La``: grey + alpha; alpha handled as below.
- ``P``, ``PA``: palette expanded to RGB, or to RGBA when the file declares a transparent entry.
- ``RGB``, ``RGBA``, ``RGBX``, ``RGBa``: 8-bit colour (+ alpha); ``RGBX`` padding dropped, ``RGBa``
  un-premultiplied by Pillow.
- ``CMYK``: Pillow's CMYK -> RGB conversion (``R = (1 - C)(1 - K)``, ...; no ICC profile); Adobe's
  inverted CMYK JPEGs are handled by Pillow's JPEG decoder.
- ``YCbCr``, ``LAB``, ``HSV``: converted to RGB by Pillow.
- ``I;16``, ``I;16B``, ``I;16L``, ``I;16N``: 16-bit grey (PNG, TIFF), ``v / 65535`` exactly.
- ``I``: 32-bit integer grey holding 16-bit samples (Pillow's mode for 16-bit PGM), ``v / 65535``;
  samples outside [0, 65535] raise :class:`ImageDecodeError`.
- ``F``: 32-bit float grey taken as is; samples outside [0, 1] or not finite raise.
- 16-bit colour: 16-bit RGB/RGBA/grey+alpha PNGs are decoded by ``torchvision.io.decode_png`` and
  16-bit RGB/RGBA TIFFs by ``tifffile`` (when installed), both ``v / 65535``; Pillow alone would keep
  only the high byte. 16-bit colour PPM files are read by Pillow with 8-bit precision.

Alpha (``alpha=``): ``"white"`` (default) composites the colour over a white background,
``out = a * c + (1 - a)``; ``"black"`` over black, ``out = a * c``; ``"drop"`` discards the alpha channel.
Compositing is done on the encoded values, as Pillow's ``alpha_composite`` does.

Grey output from colour uses the ITU-R BT.601 luma weights ``Y = 0.299 R + 0.587 G + 0.114 B`` (the
weights of Pillow's ``convert("L")`` and MATLAB's ``rgb2gray``), computed in floating point.

Only the first frame of multi-frame files (GIF, APNG, multi-page TIFF) is read. The orientation is
read from the header (EXIF, or XMP where Pillow finds it); a PNG ``eXIf`` chunk placed after the
image data is not seen.

Decompression bombs: the header is parsed first and an image with more than ``max_pixels`` pixels
raises :class:`ImageTooLargeError` before any pixel is decoded. Pillow's own process-wide guard
(``PIL.Image.MAX_IMAGE_PIXELS``) still applies on top: Pillow refuses images above twice that value
(about 179 million pixels by default) whatever ``max_pixels`` says; such files raise
:class:`ImageTooLargeError` too. Whether Pillow decodes truncated files depends on the process-wide
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` flag, which perceptiq never sets (by default truncated files
raise :class:`ImageDecodeError`).

On a CUDA device, RGB or grey JPEGs are decoded on the GPU with
``torchvision.io.decode_jpeg(device="cuda")`` (nvJPEG), whose output can differ from libjpeg's by a few
levels of 255; when nvJPEG rejects a batch, its files are decoded again by Pillow. Other files are
decoded by Pillow on the CPU and moved to the device. (torchvision 0.29 marks its image codecs as
deprecated in favour of TorchCodec; they are used for nvJPEG and 16-bit colour PNG only.)
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from perceptiq.errors import DataFileError, InputError, PerceptiqWarning
from perceptiq.functional._checks import usable_device
from perceptiq.functional._color import LUMA_BT601

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_BYTES",
    "PNG_SIGNATURE",
    "ImageDecodeError",
    "ImageTooLargeError",
    "ImageInfo",
    "probe_image",
    "choose_decoder",
    "read_image",
    "decode_image",
    "apply_exif_orientation",
]

Channels = Literal["rgb", "grey"]
Alpha = Literal["white", "black", "drop"]
Decoder = Literal["pillow", "png16", "tiff16", "torchvision_jpeg"]
PathLike = str | os.PathLike[str]


DEFAULT_MAX_PIXELS: int = 1 << 28
"""Default pixel limit: 268,435,456 pixels (16384 x 16384; an 8K frame has 33 million)."""

DEFAULT_MAX_BYTES: int = 1 << 30
"""Default file-size limit: 1 GiB, checked before a file is read (an uncompressed 8-bit RGB TIFF of
16384 x 16384 pixels is 805 MB)."""

_EXIF_ORIENTATION_TAG = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The eight bytes that open every PNG file (PNG specification, ISO/IEC 15948, sec. 5.2)."""
_I16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_TO_RGB_MODES = ("CMYK", "YCbCr", "LAB", "HSV", "RGBX")
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    RuntimeError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


class ImageDecodeError(DataFileError):
    """An image file is missing, empty, corrupt, truncated, of an unknown format or of unusable values."""


class ImageTooLargeError(ImageDecodeError):
    """An image has more pixels than the allowed limit (decompression-bomb guard)."""


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image file says, read without decoding pixels.

    Attributes:
        format: Pillow's format name (``"PNG"``, ``"JPEG"``, ``"TIFF"``, ...).
        mode: Pillow's mode of the stored data (``"RGB"``, ``"I;16"``, ``"P"``, ...).
        width: stored width in pixels (before EXIF orientation).
        height: stored height in pixels.
        orientation: EXIF orientation 1..8 (1 when absent or invalid).
        bit_depth: bits per sample as stored (16 for 16-bit PNG/TIFF, 32 for modes I and F, else 8).
    """

    format: str | None
    mode: str
    width: int
    height: int
    orientation: int
    bit_depth: int

    @property
    def display_size(self) -> tuple[int, int]:
        """(height, width) after the EXIF orientation is applied."""
        if self.orientation in (5, 6, 7, 8):
            return self.width, self.height
        return self.height, self.width


@dataclass(frozen=True)
class _Options:
    channels: Channels
    alpha: Alpha
    max_pixels: int | None
    dtype: torch.dtype
    device: torch.device
    gpu_jpeg: bool
    max_bytes: int | None = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class _Raw:
    """Decoded samples (C, H, W) on the CPU, to be divided by ``scale``."""

    samples: torch.Tensor
    scale: float


@dataclass
class _Pending:
    """A JPEG whose decoding is left to the batched GPU decoder."""

    index: int
    path: Path
    data: bytes
    info: ImageInfo


def _options(
    channels: str,
    alpha: str,
    max_pixels: int | None,
    dtype: torch.dtype,
    device: object,
    gpu_jpeg: bool,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> _Options:
    if channels not in ("rgb", "grey"):
        raise InputError(f"channels must be 'rgb' or 'grey', got {channels!r}")
    if alpha not in ("white", "black", "drop"):
        raise InputError(f"alpha must be 'white', 'black' or 'drop', got {alpha!r}")
    if max_pixels is not None and max_pixels < 1:
        raise InputError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    if max_bytes is not None and max_bytes < 1:
        raise InputError(f"max_bytes must be a positive integer or None, got {max_bytes!r}")
    if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise InputError(f"dtype must be a floating-point torch dtype, got {dtype}")
    dev = usable_device(device)
    return _Options(channels, alpha, max_pixels, dtype, dev, gpu_jpeg, max_bytes)  # type: ignore[arg-type]


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _read_bytes(path: Path, max_bytes: int | None = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a regular file (symbolic links followed) of at most ``max_bytes`` bytes.

    The file type and size are checked with ``os.stat`` before the file is opened, so a FIFO, a
    device (e.g. a link to ``/dev/zero``) or an oversized file is refused without blocking or
    filling memory; at most ``max_bytes + 1`` bytes are read in case the file grows meanwhile.
    """
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ImageDecodeError(path, "is a directory, not an image file")
        if not stat.S_ISREG(info.st_mode):
            raise ImageDecodeError(path, f"is {_file_kind(info.st_mode)}, not a regular file; not read")
        if max_bytes is not None and info.st_size > max_bytes:
            raise ImageDecodeError(
                path, f"file is {info.st_size} bytes, over the limit of {max_bytes} bytes (max_bytes)"
            )
        with open(path, "rb") as fh:
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    except FileNotFoundError as err:
        raise ImageDecodeError(path, "file not found") from err
    except IsADirectoryError as err:
        raise ImageDecodeError(path, "is a directory, not an image file") from err
    except PermissionError as err:
        raise ImageDecodeError(path, "permission denied") from err
    except OSError as err:
        raise ImageDecodeError(path, f"cannot read file: {err.strerror or err}") from err
    if not data:
        raise ImageDecodeError(path, "file is empty (0 bytes)")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageDecodeError(path, f"file grew over the limit of {max_bytes} bytes (max_bytes) while read")
    return data


def _orientation(img: Image.Image) -> int:
    """EXIF orientation read from the header only.

    ``Image.Image.getexif`` is called unbound because Pillow's PNG override decodes the whole image
    when the header has no eXIf chunk, which would bypass the pixel limit and hide decode errors.
    """
    try:
        value = Image.Image.getexif(img).get(_EXIF_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _bit_depth(img: Image.Image, data: bytes) -> int:
    if img.format == "PNG" and data[:8] == PNG_SIGNATURE and len(data) > 24:
        return data[24]
    if img.format == "TIFF":
        bits = getattr(img, "tag_v2", {}).get(258, 8)
        return int(max(bits)) if isinstance(bits, tuple) else int(bits)
    if img.mode in _I16_MODES:
        return 16
    return 32 if img.mode in ("I", "F") else 8


def _open(data: bytes, name: str | Path, max_pixels: int | None) -> tuple[Image.Image, ImageInfo]:
    """Parse the header with Pillow (no pixel decoding) and apply the pixel limit."""
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ImageTooLargeError(
            name, f"exceeds Pillow's process-wide limit PIL.Image.MAX_IMAGE_PIXELS ({err})"
        ) from err
    except UnidentifiedImageError as err:
        raise ImageDecodeError(name, "not a recognised image format") from err
    except _DECODE_ERRORS as err:
        raise ImageDecodeError(name, f"cannot parse image header ({type(err).__name__}: {err})") from err
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            name,
            f"{width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels} "
            "(decompression-bomb guard; pass a larger max_pixels to allow it)",
        )
    info = ImageInfo(img.format, img.mode, width, height, _orientation(img), _bit_depth(img, data))
    return img, info


def probe_image(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read the header of an image file (format, mode, size, EXIF orientation) without decoding pixels.

    Raises:
        ImageDecodeError: the file is missing, empty or not an image.
        ImageTooLargeError: it has more than ``max_pixels`` pixels.
    """
    p = Path(path)
    return _open(_read_bytes(p), p, max_pixels)[1]


def choose_decoder(info: ImageInfo, device: torch.device | str, *, cuda_jpeg: bool) -> Decoder:
    """Pick the decoder for a file from its header.

    Args:
        info: the file's header (:func:`probe_image`).
        device: where the tensor is wanted.
        cuda_jpeg: whether GPU JPEG decoding is usable (requested and ``torch.cuda.is_available()``).

    Returns:
        ``"torchvision_jpeg"`` for RGB or grey JPEGs (including camera MPO files, whose first image
        is a JPEG stream) on a CUDA device when ``cuda_jpeg`` is set,
        ``"png16"`` for 16-bit colour PNGs, ``"tiff16"`` for 16-bit RGB(A) TIFFs, else ``"pillow"``.
    """
    if (
        info.format in ("JPEG", "MPO")
        and info.mode in ("RGB", "L")
        and torch.device(device).type == "cuda"
        and cuda_jpeg
    ):
        return "torchvision_jpeg"
    if info.format == "PNG" and info.bit_depth == 16 and info.mode not in _I16_MODES:
        return "png16"
    if info.format == "TIFF" and info.bit_depth == 16 and info.mode in ("RGB", "RGBA"):
        return "tiff16"
    return "pillow"


def _cuda_jpeg_usable(opts: _Options) -> bool:
    return opts.gpu_jpeg and opts.device.type == "cuda" and torch.cuda.is_available()


def _check_int_range(arr: np.ndarray, name: str | Path) -> None:
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 65535:
        raise ImageDecodeError(
            name, f"32-bit integer samples span [{lo}, {hi}]; mode 'I' is read as 16-bit data in [0, 65535]"
        )


def _check_float_range(arr: np.ndarray, name: str | Path) -> None:
    if not np.isfinite(arr).all():
        raise ImageDecodeError(name, "float image holds NaN or infinite samples")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ImageDecodeError(name, f"float samples span [{lo:g}, {hi:g}]; expected values in [0, 1]")


def _pillow_samples(img: Image.Image, name: str | Path) -> _Raw:
    """Decode with Pillow and map the mode to 1-4 channels (grey, grey+alpha, RGB, RGBA)."""
    try:
        mode = img.mode
        if mode in ("P", "PA"):
            img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
        elif mode == "1":
            img = img.convert("L")
        elif mode == "La":
            img = img.convert("LA")
        elif mode == "RGBa":
            img = img.convert("RGBA")
        elif mode in _TO_RGB_MODES:
            img = img.convert("RGB")
        else:
            img.load()
        arr = np.asarray(img)
    except _DECODE_ERRORS as err:
        raise ImageDecodeError(name, f"cannot decode image ({type(err).__name__}: {err})") from err
    if img.mode in _I16_MODES:
        scale = 65535.0
        arr = arr.astype(np.uint16, copy=False)
    elif img.mode == "I":
        _check_int_range(arr, name)
        scale = 65535.0
    elif img.mode == "F":
        _check_float_range(arr, name)
        scale = 1.0
    elif img.mode in ("L", "LA", "RGB", "RGBA"):
        scale = 255.0
    else:
        raise ImageDecodeError(name, f"unsupported Pillow mode {img.mode!r}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return _Raw(torch.from_numpy(np.array(arr.transpose(2, 0, 1), order="C")), scale)


def _png16_samples(data: bytes, name: str | Path) -> _Raw:
    from torchvision.io import ImageReadMode, decode_png

    try:
        samples = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8), ImageReadMode.UNCHANGED)
    except _DECODE_ERRORS as err:
        raise ImageDecodeError(name, f"cannot decode 16-bit PNG ({type(err).__name__}: {err})") from err
    return _Raw(samples, 65535.0 if samples.dtype == torch.uint16 else 255.0)


def _tiff16_samples(img: Image.Image, data: bytes, name: str | Path) -> _Raw:
    channels = len(img.mode)  # "RGB" or "RGBA"
    try:
        import tifffile
    except ImportError:
        warnings.warn(
            f"{name}: 16-bit colour TIFF read with 8-bit precision; install tifffile to keep 16 bits",
            PerceptiqWarning,
            stacklevel=4,
        )
        return _pillow_samples(img, name)
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            arr = page.asarray()
            separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    except (*_DECODE_ERRORS, tifffile.TiffFileError) as err:
        raise ImageDecodeError(name, f"cannot decode 16-bit TIFF ({type(err).__name__}: {err})") from err
    if arr.dtype != np.uint16 or arr.ndim != 3:
        raise ImageDecodeError(name, f"unsupported 16-bit TIFF layout: dtype {arr.dtype}, shape {arr.shape}")
    chw = arr if separate else arr.transpose(2, 0, 1)
    if chw.shape[0] < channels:
        raise ImageDecodeError(name, f"16-bit TIFF has {chw.shape[0]} samples per pixel, expected {channels}")
    return _Raw(torch.from_numpy(np.ascontiguousarray(chw[:channels], dtype=np.uint16)), 65535.0)


def _cpu_samples(img: Image.Image, info: ImageInfo, data: bytes, name: str | Path) -> _Raw:
    decoder = choose_decoder(info, "cpu", cuda_jpeg=False)
    if decoder == "png16":
        return _png16_samples(data, name)
    if decoder == "tiff16":
        return _tiff16_samples(img, data, name)
    return _pillow_samples(img, name)


def apply_exif_orientation(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Turn a (..., H, W) tensor the way EXIF ``orientation`` (1..8) says, as a viewer displays it.

    The eight values follow the EXIF 2.32 specification (tag 0x0112): 2 mirror horizontally, 3 rotate
    180 degrees, 4 mirror vertically, 5 transpose, 6 rotate 90 degrees clockwise, 7 transverse,
    8 rotate 90 degrees counter-clockwise; 1 (and anything else) leaves the tensor unchanged.
    """
    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-2, -1)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-2, -1)
    if orientation == 6:
        return torch.rot90(image, -1, dims=(-2, -1))
    if orientation == 7:
        return image.transpose(-2, -1).flip(-2, -1)
    if orientation == 8:
        return torch.rot90(image, 1, dims=(-2, -1))
    return image


def _finish(raw: _Raw, orientation: int, opts: _Options) -> torch.Tensor:
    """Samples (C, H, W) -> float (1, C', H', W') in [0, 1]: scale, alpha, channels, orientation."""
    work = torch.float64 if opts.dtype == torch.float64 else torch.float32
    x = raw.samples.to(opts.device).to(work).unsqueeze(0)
    if raw.scale != 1.0:
        x = x.div_(raw.scale)
    if x.shape[1] in (2, 4):
        colour, a = x[:, :-1], x[:, -1:]
        if opts.alpha == "drop":
            x = colour
        elif opts.alpha == "white":
            x = colour * a + (1.0 - a)
        else:
            x = colour * a
    if opts.channels == "rgb" and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif opts.channels == "grey" and x.shape[1] == 3:
        weights = torch.tensor(LUMA_BT601, dtype=work, device=x.device).view(1, 3, 1, 1)
        x = (x * weights).sum(dim=1, keepdim=True)
    x = apply_exif_orientation(x, orientation)
    return x.to(opts.dtype).contiguous()


def _decode_jpeg_batch(datas: list[bytes], modes: list[str], device: torch.device) -> list[torch.Tensor]:
    """Decode JPEG byte strings with ``torchvision.io.decode_jpeg`` on ``device`` in one call.

    Grey files (mode ``"L"``) and colour files are decoded in separate calls; returns (C, H, W) uint8.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    out: list[torch.Tensor | None] = [None] * len(datas)
    for want, read_mode in (("L", ImageReadMode.GRAY), ("RGB", ImageReadMode.RGB)):
        idx = [i for i, m in enumerate(modes) if m == want]
        if not idx:
            continue
        inputs = [torch.frombuffer(bytearray(datas[i]), dtype=torch.uint8) for i in idx]
        decoded = decode_jpeg(inputs, mode=read_mode, device=device)
        for i, tensor in zip(idx, decoded, strict=True):
            out[i] = tensor
    return [t for t in out if t is not None]


def _decode_gpu(pending: list[_Pending], opts: _Options) -> list[torch.Tensor | DataFileError]:
    """Batched GPU JPEG decoding; falls back to Pillow per file when nvJPEG rejects the batch."""
    try:
        decoded = _decode_jpeg_batch([p.data for p in pending], [p.info.mode for p in pending], opts.device)
    except _DECODE_ERRORS:
        return [_decode_cpu_item(p.data, p.path, opts) for p in pending]
    return [_finish(_Raw(t, 255.0), p.info.orientation, opts) for t, p in zip(decoded, pending, strict=True)]


def _decode_cpu_item(data: bytes, name: str | Path, opts: _Options) -> torch.Tensor | DataFileError:
    try:
        img, info = _open(data, name, opts.max_pixels)
        return _finish(_cpu_samples(img, info, data, name), info.orientation, opts)
    except DataFileError as err:
        return err


def _decode(data: bytes, name: str | Path, opts: _Options) -> torch.Tensor:
    img, info = _open(data, name, opts.max_pixels)
    if choose_decoder(info, opts.device, cuda_jpeg=_cuda_jpeg_usable(opts)) == "torchvision_jpeg":
        result = _decode_gpu([_Pending(0, Path(str(name)), data, info)], opts)[0]
        if isinstance(result, DataFileError):
            raise result
        return result
    return _finish(_cpu_samples(img, info, data, name), info.orientation, opts)


def decode_image(
    data: bytes,
    *,
    name: str = "<bytes>",
    channels: Channels = "rgb",
    alpha: Alpha = "white",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    gpu_jpeg: bool = True,
) -> torch.Tensor:
    """Decode an encoded image held in memory; same options and result as :func:`read_image`.

    ``name`` labels the data in error messages (e.g. an upload's file name).
    """
    opts = _options(channels, alpha, max_pixels, dtype, device, gpu_jpeg)
    if not data:
        raise ImageDecodeError(name, "file is empty (0 bytes)")
    return _decode(data, name, opts)


def read_image(
    path: PathLike,
    *,
    channels: Channels = "rgb",
    alpha: Alpha = "white",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    gpu_jpeg: bool = True,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> torch.Tensor:
    """Read one image file as a float tensor (1, C, H, W) in [0, 1], EXIF orientation applied.

    Args:
        path: the file; any format Pillow reads, plus 16-bit colour PNG/TIFF (see the module docstring).
        channels: ``"rgb"`` (C = 3, grey files repeated) or ``"grey"`` (C = 1, BT.601 luma of colour files).
        alpha: ``"white"`` / ``"black"`` composite transparent pixels on that background; ``"drop"``
            ignores alpha.
        max_pixels: refuse images with more pixels than this (None: no limit of perceptiq's own).
        dtype: floating-point dtype of the result (scaling is computed in float32, or float64).
        device: where the result lives; on CUDA, JPEGs are decoded there (see ``gpu_jpeg``).
        gpu_jpeg: decode RGB/grey JPEGs with nvJPEG when ``device`` is a CUDA device.
        max_bytes: refuse files larger than this many bytes, checked before reading (None: no limit).
            Only regular files are read (symbolic links followed): FIFOs, devices and sockets raise.

    Raises:
        ImageDecodeError: missing, empty, corrupt, truncated or unreadable file, not a regular file,
            or larger than ``max_bytes`` (a ``DataFileError``).
        ImageTooLargeError: more than ``max_pixels`` pixels.

    Example:
        >>> x = read_image("photo.jpg")  # doctest: +SKIP
        >>> x.shape  # doctest: +SKIP
        torch.Size([1, 3, 480, 640])
    """
    opts = _options(channels, alpha, max_pixels, dtype, device, gpu_jpeg, max_bytes)
    p = Path(path)
    return _decode(_read_bytes(p, opts.max_bytes), p, opts)
