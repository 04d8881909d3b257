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
