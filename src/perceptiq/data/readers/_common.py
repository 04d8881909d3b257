"""Plumbing shared by the dataset readers: the registry, label files, column names, file lookup and the
final manifest check.

Every reader resolves ``root``, reads its label file(s), builds one list per manifest column with
absolute paths and hands them to :func:`finish`, which fills the missing columns, validates the table
(:func:`perceptiq.data.manifest.validate_manifest`) and checks that every listed file exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from perceptiq._registry import Registry
from perceptiq.data.manifest import MANIFEST_COLUMNS, NUMERIC_COLUMNS, PATH_COLUMNS, validate_manifest
from perceptiq.errors import DataFileError, InputError
from perceptiq.io.tables import read_table

__all__ = [
    "DATASETS",
    "ColumnMap",
    "dataset_root",
    "find_label_file",
    "load_label_table",
    "load_mat_variable",
    "cell_strings",
    "map_columns",
    "column_strings",
    "FolderIndex",
    "image_folder",
    "finish",
]

DATASETS: Registry[pd.DataFrame] = Registry("dataset")
"""Dataset readers by name; each factory is ``read_<name>(root, **options) -> manifest DataFrame``."""

ColumnMap = Mapping[str, str | None]
"""Manifest field (``"image"``, ``"mos"``, ...) -> column of the label file; None = do not read it."""


def dataset_root(root: str | Path) -> Path:
    """``root`` as an absolute path; raises when it is not a folder."""
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise DataFileError(path, "dataset folder not found")
    return path


def find_label_file(root: Path, candidates: Sequence[str], what: str) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that is a file, else a clear error."""
    for name in candidates:
        path = root / name
        if path.is_file():
            return path
    others = f" (also looked for {', '.join(candidates[1:])})" if len(candidates) > 1 else ""
    raise DataFileError(root / candidates[0], f"{what} not found{others}")


def load_label_table(path: Path, *, sheet: str | int = 0) -> pd.DataFrame:
    """Read a label table: ``.xlsx``/``.xls`` with pandas (needs openpyxl), anything else with
    :func:`perceptiq.io.tables.read_table` (CSV, TSV, JSON Lines, JSON, Parquet)."""
    if path.suffix.lower() not in (".xlsx", ".xls"):
        return read_table(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    try:
        frame = pd.read_excel(path, sheet_name=sheet)
    except ImportError as err:
        raise DataFileError(
            path, "reading Excel files needs openpyxl (pip install openpyxl), or save the sheet as CSV"
        ) from err
    except (ValueError, OSError, KeyError) as err:
        raise DataFileError(path, f"cannot be read as an Excel sheet {sheet!r}: {err}") from err
    if frame.empty:
        raise DataFileError(path, f"sheet {sheet!r} has no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def load_mat_variable(path: Path, name: str) -> np.ndarray:
    """Variable ``name`` of a MATLAB (v4-v7.2) file, or its only variable when ``name`` is absent."""
    import scipy.io

    if not path.is_file():
        raise DataFileError(path, "file not found")
    try:
        data = scipy.io.loadmat(path)
    except NotImplementedError as err:
        raise DataFileError(path, "MATLAB v7.3 (HDF5) files are not supported; save it with -v7") from err
    except (ValueError, OSError, TypeError) as err:
        raise DataFileError(path, f"cannot be read as a MATLAB file: {err}") from err
    names = [k for k in data if not k.startswith("__")]
    if name in data:
        return np.asarray(data[name])
    if len(names) == 1:
        return np.asarray(data[names[0]])
    raise DataFileError(path, f"no variable {name!r}; variables are: {', '.join(names) or 'none'}")


def cell_strings(values: np.ndarray, path: Path) -> list[str]:
    """The strings of a MATLAB cell array or padded char matrix (as scipy loads them), column-major order."""
    out = []
    for item in values.ravel(order="F"):
        while isinstance(item, np.ndarray):
            if item.size != 1:
                raise DataFileError(
                    path, f"expected one string per cell, found an array of shape {item.shape}"
                )
            item = item.ravel()[0]
        out.append(str(item).strip())
    return out


def _lookup(frame: pd.DataFrame, column: str) -> str | None:
    if column in frame.columns:
        return column
    folded = {str(c).strip().lower(): c for c in frame.columns}
    return folded.get(column.strip().lower())


def map_columns(
    frame: pd.DataFrame,
    path: Path,
    defaults: Mapping[str, str],
    override: ColumnMap | None,
    optional: Sequence[str] = (),
) -> dict[str, str | None]:
    """Which column of ``frame`` holds each field: ``defaults`` updated by ``override``.

    Column names match exactly, else case- and space-insensitively. A missing required column is a
    :class:`DataFileError` listing the columns; an optional one (or one mapped to None) gives None.
    """
    override = dict(override or {})
    unknown = sorted(set(override) - set(defaults))
    if unknown:
        raise InputError(f"columns= names unknown field(s) {unknown}; this reader reads {sorted(defaults)}")
    merged = {**defaults, **override}
    found: dict[str, str | None] = {}
    for field, column in merged.items():
        if column is None:
            found[field] = None
            continue
        hit = _lookup(frame, column)
        if hit is None and field not in optional:
            raise DataFileError(
                path,
                f"no column {column!r} (for {field}); columns are: {', '.join(map(str, frame.columns))} "
                "(name the right one with columns=)",
            )
        found[field] = hit
    return found


def column_strings(frame: pd.DataFrame, column: str) -> list[str]:
    """The values of ``column`` as stripped strings (file names, type labels)."""
    return [str(v).strip() for v in frame[column]]


class FolderIndex:
    """Find files in a folder by name, falling back to a case-insensitive match.

    Released datasets mix cases (``I01.BMP`` beside ``i25.bmp``); with ``recursive`` the name is looked
    up among all files below the folder (for releases that split images into sub-folders).
    """

    def __init__(self, folder: Path, *, recursive: bool = False) -> None:
        self.folder = folder
        self.recursive = recursive
        self._index: dict[str, Path] | None = None

    def _build(self) -> dict[str, Path]:
        index: dict[str, Path] = {}
        if self.folder.is_dir():
            files = self.folder.rglob("*") if self.recursive else self.folder.iterdir()
            for path in sorted(files):
                if path.is_file():
                    index.setdefault(path.name.lower(), path)
        return index

    def find(self, name: str) -> Path:
        """The file called ``name``; when none exists, ``folder / name`` (reported later as missing)."""
        direct = self.folder / name
        if direct.is_file():
            return direct
        if self._index is None:
            self._index = self._build()
        return self._index.get(Path(name).name.lower() if self.recursive else name.lower(), direct)


def image_folder(
    root: Path, image_dir: str | None, candidates: Sequence[str], first_name: str
) -> FolderIndex:
    """The image folder: ``root / image_dir`` when given, else the first of ``candidates`` (folders
    relative to ``root``; ``""`` is root itself) that holds ``first_name`` (matched as
    :meth:`FolderIndex.find` does), else the first candidate, whose missing files are then reported."""
    if image_dir is not None:
        return FolderIndex(root / image_dir)
    for name in candidates:
        folder = FolderIndex(root / name)
        if folder.find(first_name).is_file():
            return folder
    return FolderIndex(root / candidates[0])


def _column_values(values: Sequence | np.ndarray | pd.Series | None, column: str, n: int) -> list:
    if values is None:
        return [np.nan] * n if column in NUMERIC_COLUMNS else [None] * n
    out = list(values)
    if len(out) != n:
        raise InputError(f"column {column!r} has {len(out)} values for {n} images")
    if column in PATH_COLUMNS:
        return [None if v is None else str(v) for v in out]
    return out


def _check_files(frame: pd.DataFrame, source: Path) -> None:
    for column in PATH_COLUMNS:
        paths = pd.unique(frame[column].dropna())
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise DataFileError(
                missing[0],
                f"{column} file listed in {source} not found "
                f"({len(missing)} missing {column} file(s) in all)",
            )


def finish(
    columns: Mapping[str, Sequence | np.ndarray | pd.Series | None],
    *,
    dataset: str,
    source: Path,
    check_files: bool = True,
) -> pd.DataFrame:
    """Assemble the manifest: all :data:`MANIFEST_COLUMNS` in order, ``dataset`` filled, validated.

    ``columns`` maps manifest columns to per-image values (paths already absolute); absent columns
    become None (NaN for numeric ones). With ``check_files`` every image, ref, lr and mask path must be
    an existing file; the error names the first missing file and the label file ``source``.
    """
    n = len(columns["image"])
    if n == 0:
        raise DataFileError(source, "lists no images")
    data = {col: _column_values(columns.get(col), col, n) for col in MANIFEST_COLUMNS if col != "dataset"}
    data["dataset"] = [dataset] * n
    frame = validate_manifest(pd.DataFrame(data, columns=list(MANIFEST_COLUMNS)), source)
    if check_files:
        _check_files(frame, source)
    return frame
