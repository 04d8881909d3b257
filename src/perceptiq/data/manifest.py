"""The one manifest format of perceptiq's datasets: a table with one row per image.

Columns (only ``image`` is required; paths are relative to the manifest's folder or absolute):

=============  ===================================================================================
image          path of the (distorted / generated / super-resolved) image
mos            mean opinion score, higher = better, in the dataset's own scale
mos_std        standard deviation of the ratings
ref            path of the pristine reference (full-reference datasets)
lr             path of the low-resolution input (super-resolution datasets)
prompt         text prompt (text-to-image datasets)
elements       JSON object ``{"<element> (<category>)": presence in [0, 1]}``
mask           path of a distortion mask image (structure datasets)
method         the generating method (SR method, T2I model, distortion type)
scale          SR scale factor
dataset        dataset name (multi-dataset training samples pairs within one dataset)
split          train / val / test, or a fold index
=============  ===================================================================================

Row numbers in messages count the data rows of the file from 1 (a CSV's header line is not counted).

Readers of published dataset layouts live in :mod:`perceptiq.data.datasets`; all of them produce
this table. CSV, JSON Lines and Parquet are read and written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from perceptiq.errors import DataFileError
from perceptiq.io.tables import read_table

__all__ = [
    "MANIFEST_COLUMNS",
    "PATH_COLUMNS",
    "NUMERIC_COLUMNS",
    "read_manifest",
    "write_manifest",
    "validate_manifest",
    "bad_mos_rows",
    "missing_image_rows",
    "screen_rows",
]

MANIFEST_COLUMNS = (
    "image",
    "mos",
    "mos_std",
    "ref",
    "lr",
    "prompt",
    "elements",
    "mask",
    "method",
    "scale",
    "dataset",
    "split",
)
PATH_COLUMNS = ("image", "ref", "lr", "mask")
NUMERIC_COLUMNS = ("mos", "mos_std", "scale")


def validate_manifest(frame: pd.DataFrame, source: str | Path = "<manifest>") -> pd.DataFrame:
    """Check columns and types; returns the frame with numeric columns as float64.

    Raises :class:`~perceptiq.errors.DataFileError` naming ``source`` for a missing ``image`` column,
    unknown columns, non-numeric MOS values or duplicate images.
    """
    if "image" not in frame.columns:
        raise DataFileError(
            source, f"manifest needs an 'image' column; columns are: {', '.join(frame.columns)}"
        )
    unknown = sorted(set(frame.columns) - set(MANIFEST_COLUMNS))
    if unknown:
        raise DataFileError(
            source, f"unknown manifest column(s) {unknown}; allowed: {', '.join(MANIFEST_COLUMNS)}"
        )
    frame = frame.copy()
    for col in NUMERIC_COLUMNS:
        if col in frame.columns:
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna() & frame[col].notna()
            if bad.any():
                raise DataFileError(
                    source, f"column {col!r} has non-numeric values, e.g. {frame[col][bad].head(3).tolist()}"
                )
            frame[col] = values.astype(np.float64)
    dup = frame["image"][frame["image"].duplicated()]
    if not dup.empty:
        raise DataFileError(source, f"{dup.nunique()} image(s) listed twice, e.g. {dup.head(3).tolist()}")
    return frame


def read_manifest(path: str | Path, *, resolve_paths: bool = True) -> pd.DataFrame:
    """Read and validate a manifest; with ``resolve_paths`` make path columns absolute."""
    path = Path(path)
    frame = validate_manifest(read_table(path), path)
    if resolve_paths:
        base = path.resolve().parent
        for col in PATH_COLUMNS:
            if col in frame.columns:
                frame[col] = [
                    None
                    if (v is None or (isinstance(v, float) and np.isnan(v)))
                    else str((base / str(v)).resolve())
                    for v in frame[col]
                ]
    return frame


def write_manifest(frame: pd.DataFrame, path: str | Path) -> Path:
    """Validate and write a manifest as CSV, JSON Lines or Parquet (by suffix)."""
    path = Path(path)
    frame = validate_manifest(frame, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(path, orient="records", lines=True)
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        raise DataFileError(path, "manifest must be .csv, .jsonl or .parquet")
    return path


def bad_mos_rows(frame: pd.DataFrame, needed: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of rows whose MOS is missing where ``needed`` (default: every row) or is +-inf.

    Without a ``mos`` column every needed row counts as missing.
    """
    needed = np.ones(len(frame), dtype=bool) if needed is None else np.asarray(needed, dtype=bool)
    if "mos" not in frame.columns:
        return needed.copy()
    mos = frame["mos"].to_numpy(dtype=np.float64)
    return (np.isnan(mos) & needed) | np.isinf(mos)


def missing_image_rows(frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask of rows whose ``image`` path is empty or names no existing file."""
    return np.array(
        [not isinstance(p, str) or not p or not Path(p).is_file() for p in frame["image"]], dtype=bool
    )


def _examples(frame: pd.DataFrame, mask: np.ndarray, limit: int = 3) -> str:
    """``row 3 (a.png), row 7 (b.png), ...``: 1-based data rows (index + 1) and image names."""
    picked = [
        f"row {int(i) + 1} ({Path(str(p)).name if isinstance(p, str) and p else 'no image'})"
        for i, p in zip(frame.index[mask][:limit], frame["image"][mask][:limit], strict=True)
    ]
    more = ", ..." if int(mask.sum()) > limit else ""
    return ", ".join(picked) + more


def screen_rows(
    frame: pd.DataFrame,
    source: str | Path,
    *,
    mos_needed: np.ndarray | None = None,
    drop: bool = False,
    hint: str = "",
) -> tuple[pd.DataFrame, list[str]]:
    """Refuse or drop rows with a missing or non-finite MOS (:func:`bad_mos_rows`) or a missing image file.

    ``frame`` is (a selection of) a manifest read by :func:`read_manifest`, its index the row position in
    the file. Without ``drop`` any such row is a :class:`~perceptiq.errors.DataFileError` naming
    ``source``, the count and the first rows (``hint`` is appended); with ``drop`` they are removed and
    the notes say how many, e.g. ``dropped 2 rows with missing or non-finite MOS from m.csv``. Returns the
    kept rows (index unchanged) and the notes.
    """
    mos = bad_mos_rows(frame, mos_needed)
    image = missing_image_rows(frame) & ~mos
    problems = [
        (mask, what)
        for mask, what in ((mos, "missing or non-finite MOS"), (image, "an image file that does not exist"))
        if mask.any()
    ]
    if not problems:
        return frame, []
    if not drop:
        found = "; ".join(
            f"{int(mask.sum())} row(s) with {what}: {_examples(frame, mask)}" for mask, what in problems
        )
        raise DataFileError(source, found + (f"; {hint}" if hint else ""))
    notes = [
        f"dropped {int(mask.sum())} row{'s' if mask.sum() != 1 else ''} with {what} from {source}"
        for mask, what in problems
    ]
    return frame[~(mos | image)], notes
