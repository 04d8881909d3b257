"""Where the images of a scoring run come from: files, folders, glob patterns, manifests and filesystem URLs.

:func:`list_sources` turns what the user names into one ordered list of images, the same for every
engine of ``perceptiq score``:

* a folder: its image files, recursively, sorted (:func:`~perceptiq.io.images.discover.scan_images`);
* a file: itself, whatever its suffix (the reader decides), except a table (``.csv``, ``.tsv``,
  ``.jsonl``, ``.ndjson``, ``.parquet``), which is a manifest: its ``image`` column, paths relative to
  the manifest's folder (or absolute, or URLs);
* a local glob pattern (``*``, ``?``, ``[...]``; ``**`` crosses folders): the matches, sorted;
* a URL ``scheme://...`` of any fsspec filesystem (``file://``, ``s3://`` with s3fs, ``gs://`` with
  gcsfs, ``hdfs://``, ...): a folder, a file or a glob pattern there, listed by fsspec and kept as URLs.

:func:`read_source_bytes` reads one listed entry (a local path through the checked reader of
:mod:`.decode`, a URL through fsspec, with the same size cap) and :func:`load_source` decodes it on
the CPU exactly as :func:`~perceptiq.io.images.load.load_images` does, so an image has the same
values whichever engine read it.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable
from pathlib import Path

import torch

from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images.decode import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    PathLike,
    _cpu_samples,
    _finish,
    _open,
    _options,
    _read_bytes,
)
from perceptiq.io.images.discover import IMAGE_EXTENSIONS, scan_images
from perceptiq.io.images.load import LoadedImage
from perceptiq.io.tables import read_table

__all__ = [
    "MANIFEST_SUFFIXES",
    "Source",
    "is_url",
    "list_sources",
    "read_source_bytes",
    "load_source",
    "source_name",
]

Source = Path | str
"""A listed image: a local :class:`~pathlib.Path`, or a URL string (``scheme://...``)."""

MANIFEST_SUFFIXES = frozenset({".csv", ".tsv", ".jsonl", ".ndjson", ".parquet"})
"""Suffixes of a file named as an input that make it a manifest (an ``image`` column) rather than an image."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB = re.compile(r"[*?\[]")
_FSSPEC_MISSING = (
    "reading URLs needs fsspec (and the filesystem's package, e.g. s3fs): pip install 'perceptiq[scale]'"
)


def is_url(source: object) -> bool:
    """True for ``scheme://...`` (a filesystem URL read through fsspec)."""
    return isinstance(source, str) and _URL.match(source) is not None


def source_name(source: Source) -> str:
    """The file name of a listed image (last part of its path or URL)."""
    return str(source).rstrip("/").rsplit("/", 1)[-1]


def _url_fs(url: str) -> tuple[object, str]:
    try:
        import fsspec
    except ImportError:
        raise InputError(_FSSPEC_MISSING) from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise InputError(f"{url}: no filesystem for this URL ({err})") from None


def _wanted(name: str, extensions: frozenset[str], include_hidden: bool) -> bool | None:
    """True: an image suffix; False: another suffix; None: hidden (skipped)."""
    if not include_hidden and any(part.startswith(".") for part in name.split("/") if part):
        return None
    return Path(name).suffix.lower() in extensions


def _list_url(url: str, extensions: frozenset[str], include_hidden: bool) -> tuple[list[str], list[str]]:
    fs, root = _url_fs(url)
    try:
        if _GLOB.search(root):
            matches = sorted(p for p in fs.glob(root) if fs.isfile(p))
            if not matches:
                raise DataFileError(url, "no file matches this pattern")
            names = matches
        elif fs.isdir(root):
            base = root.rstrip("/") + "/"
            names = sorted(fs.find(root), key=lambda p: p[len(base) :] if p.startswith(base) else p)
            names = [p for p in names if _wanted(p[len(base) :], extensions, include_hidden) is not None]
        elif fs.exists(root):
            return [url], []
        else:
            raise DataFileError(url, "no such file or folder")
    except OSError as err:
        raise DataFileError(url, f"cannot list: {err}") from None
    found = [fs.unstrip_protocol(p) for p in names if _wanted(p, extensions, True)]
    other = [fs.unstrip_protocol(p) for p in names if not _wanted(p, extensions, True)]
    return found, other


def _list_manifest(path: Path) -> list[Source]:
    frame = read_table(path)
    if "image" not in frame.columns:
        raise DataFileError(
            path,
            "a manifest of images needs an 'image' column; "
            f"columns are: {', '.join(map(str, frame.columns))}",
        )
    out: list[Source] = []
    for number, value in enumerate(frame["image"].tolist(), start=2):
        if not isinstance(value, str) or not value.strip():
            raise DataFileError(path, f"row {number}: empty 'image' cell")
        out.append(value if is_url(value) else path.parent / value)
    return out


def list_sources(
    sources: PathLike | Iterable[PathLike],
    *,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    include_hidden: bool = False,
) -> tuple[list[Source], list[Source]]:
    """The images named by ``sources`` (see the module docstring), in order, each once.

    Returns:
        ``(images, unsupported)``: local images as paths and URL images as strings, in argument
        order (a folder's or pattern's matches sorted); ``unsupported`` the entries found in folders
        (or matched by patterns) whose suffix is not an image suffix (e.g. ``.heic``), not read.

    Raises:
        DataFileError: a path, folder or URL that does not exist, a pattern that matches nothing, a
            manifest without an ``image`` column.
        InputError: a URL without fsspec installed, or with a scheme fsspec does not know.
    """
    roots = [sources] if isinstance(sources, str | Path) else list(sources)
    wanted = frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    found: dict[Source, None] = {}
    unsupported: dict[Source, None] = {}
    for root in roots:
        text = str(root)
        if is_url(text):
            images, other = _list_url(text, wanted, include_hidden)
            found.update(dict.fromkeys(images))
            unsupported.update(dict.fromkeys(other))
            continue
        path = Path(root)
        if not path.exists() and _GLOB.search(text):
            matches = sorted(glob.glob(text, recursive=True, include_hidden=include_hidden))
            if not matches:
                raise DataFileError(text, "no file matches this pattern")
            for match in map(Path, matches):
                if match.is_dir():
                    images, other = scan_images([match], extensions=wanted, include_hidden=include_hidden)
                    found.update(dict.fromkeys(images))
                    unsupported.update(dict.fromkeys(other))
                else:
                    (found if match.suffix.lower() in wanted else unsupported).setdefault(match, None)
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            found.update(dict.fromkeys(_list_manifest(path)))
        else:
            images, other = scan_images([path], extensions=wanted, include_hidden=include_hidden)
            found.update(dict.fromkeys(images))
            unsupported.update(dict.fromkeys(other))
    return list(found), list(unsupported)


def read_source_bytes(source: Source, max_bytes: int | None = DEFAULT_MAX_BYTES) -> bytes:
    """The encoded bytes of a listed image: a local regular file, or a URL through fsspec.

    Raises:
        ImageDecodeError: missing, empty, unreadable, not a regular file, or over ``max_bytes``
            (checked before reading).
    """
    if not is_url(source):
        return _read_bytes(Path(source), max_bytes)
    url = str(source)
    fs, path = _url_fs(url)
    try:
        size = fs.size(path)
        if max_bytes is not None and size is not None and size > max_bytes:
            raise ImageDecodeError(
                url, f"file is {size} bytes, over the limit of {max_bytes} bytes (max_bytes)"
            )
        data = fs.cat_file(path)
    except FileNotFoundError:
        raise ImageDecodeError(url, "file not found") from None
    except OSError as err:
        raise ImageDecodeError(url, f"cannot read: {err}") from None
    if not data:
        raise ImageDecodeError(url, "file is empty (0 bytes)")
    return data


def load_source(
    index: int,
    source: Source,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> LoadedImage:
    """Read and decode one listed image on the CPU (RGB, float32 in [0, 1], EXIF orientation applied).

    The same decoding as :func:`~perceptiq.io.images.load.load_images` on the CPU; a broken file gives a
    :class:`~perceptiq.io.images.load.LoadedImage` carrying its error. ``path`` of the item is the
    local path, or the URL string.
    """
    opts = _options("rgb", "white", max_pixels, torch.float32, "cpu", False, max_bytes)
    path: Source = source if is_url(source) else Path(source)
    try:
        data = read_source_bytes(source, opts.max_bytes)
        img, info = _open(data, path, opts.max_pixels)
        image = _finish(_cpu_samples(img, info, data, path), info.orientation, opts)
    except DataFileError as err:
        return LoadedImage(index, path, None, err)  # type: ignore[arg-type]
    return LoadedImage(index, path, image, None)  # type: ignore[arg-type]
