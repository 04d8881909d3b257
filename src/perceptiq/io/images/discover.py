"""Find image files: list the images in folders by suffix, and pair images with their references.

Folders are walked in sorted order without following symbolic links to folders; hidden names
(starting with ``"."``) are skipped unless asked for. A suffix is compared in lower case.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from perceptiq.errors import DataFileError
from perceptiq.io.images.decode import PathLike
from perceptiq.io.tables import read_table

__all__ = ["IMAGE_EXTENSIONS", "find_images", "scan_images", "pair_references"]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif"}
    | {".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k", ".jpx", ".avif", ".qoi"}
)
"""Lower-case file suffixes that :func:`find_images` treats as images (raster formats Pillow decodes)."""


def find_images(
    paths: PathLike | Iterable[PathLike],
    *,
    recursive: bool = True,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    include_hidden: bool = False,
) -> list[Path]:
    """List image files in folders (sorted), keeping files named explicitly as they are.

    Args:
        paths: one path or several; a folder contributes the files in it whose suffix (compared in
            lower case) is in ``extensions``; any other path that exists (a file, a FIFO, a link) is
            returned as given whatever its suffix, and the reader decides what to make of it.
        recursive: also walk sub-folders (symbolic links to folders are not followed).
        extensions: suffixes with the dot, e.g. ``{".png", ".jpg"}``; default :data:`IMAGE_EXTENSIONS`.
        include_hidden: also list names starting with ``"."`` (e.g. macOS ``._photo.jpg`` resource
            forks, which are not images), skipped by default.

    Returns:
        Paths in argument order; each folder's files sorted by their path relative to the folder;
        duplicates removed. :func:`scan_images` also returns the folder entries left out.

    Raises:
        DataFileError: a path does not exist.
    """
    return scan_images(paths, recursive=recursive, extensions=extensions, include_hidden=include_hidden)[0]


def scan_images(
    paths: PathLike | Iterable[PathLike],
    *,
    recursive: bool = True,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    include_hidden: bool = False,
) -> tuple[list[Path], list[Path]]:
    """:func:`find_images`, plus the non-hidden folder entries skipped for their suffix (e.g. ``.heic``).

    Returns:
        ``(images, unsupported)``: the images as :func:`find_images` lists them, and the files found
        in the folders whose suffix is not in ``extensions``, in the same order.
    """
    roots = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found: dict[Path, None] = {}
    unsupported: dict[Path, None] = {}
    for root in roots:
        p = Path(root)
        if p.is_dir():
            for f in _walk(p, recursive, include_hidden):
                (found if f.suffix.lower() in wanted else unsupported).setdefault(f, None)
        elif p.exists() or p.is_symlink():
            found.setdefault(p, None)
        else:
            raise DataFileError(p, "no such file or folder")
    return list(found), list(unsupported)


def _walk(folder: Path, recursive: bool, include_hidden: bool) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = (
            sorted(d for d in dirnames if include_hidden or not d.startswith(".")) if recursive else []
        )
        files.extend(Path(dirpath, f) for f in filenames if include_hidden or not f.startswith("."))
    return sorted(files, key=lambda f: f.relative_to(folder).parts)


def pair_references(images: list[Path], ref: str | Path) -> dict[Path, Path | None]:
    """Reference of each image: same file name (or stem) in folder ``ref``, or a manifest's ``ref`` column.

    A manifest (CSV/TSV/JSONL/JSON/Parquet) has columns ``image`` and ``ref`` with paths relative to
    the manifest's folder (or absolute); images are matched by resolved path, else by file name.
    """
    ref = Path(ref)
    if not ref.exists():
        raise DataFileError(ref, "reference folder or manifest not found")
    out: dict[Path, Path | None] = {}
    if ref.is_dir():
        by_name = {p.name: p for p in ref.iterdir() if p.is_file()}
        by_stem = {p.stem: p for p in ref.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
        for img in images:
            out[img] = by_name.get(img.name) or by_stem.get(img.stem)
        return out
    frame = read_table(ref)
    missing = [c for c in ("image", "ref") if c not in frame.columns]
    if missing:
        raise DataFileError(
            ref, f"manifest lacks column(s) {missing}; columns are: {', '.join(frame.columns)}"
        )
    base = ref.parent
    by_path: dict[Path, Path] = {}
    by_name: dict[str, Path] = {}
    for image, reference in zip(frame["image"].astype(str), frame["ref"].astype(str), strict=True):
        resolved = (base / image).resolve()
        target = (base / reference).resolve()
        by_path[resolved] = target
        by_name.setdefault(Path(image).name, target)
    for img in images:
        out[img] = by_path.get(img.resolve()) or by_name.get(img.name)
    return out
