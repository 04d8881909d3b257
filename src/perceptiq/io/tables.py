"""Reading prediction and ground-truth tables and joining them on an id column.

Formats by suffix: ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` (JSON Lines), ``.json`` (a list of
records), ``.parquet``/``.pq``. Every problem raises :class:`~perceptiq.errors.DataFileError` with
the file's path and a one-line reason.

Tables are read whole into memory, so a file larger than :data:`MAX_TABLE_BYTES` (1 GiB) is refused
before reading; the environment variable ``PERCEPTIQ_MAX_TABLE_BYTES`` raises (or lowers) the cap.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from perceptiq.errors import DataFileError

__all__ = [
    "ID_CANDIDATES",
    "PRED_CANDIDATES",
    "MOS_CANDIDATES",
    "STD_CANDIDATES",
    "read_table",
    "pick_column",
    "numeric_column",
    "std_column",
    "Joined",
    "join_tables",
    "check_id_overlap",
    "MAX_TABLE_BYTES",
    "max_table_bytes",
    "check_table_size",
    "TABLE_SUFFIXES",
    "read_scorer",
]

ID_CANDIDATES = ("id", "image", "img", "img_path", "image_name", "name", "filename", "file", "path")
PRED_CANDIDATES = ("score", "pred", "prediction", "predicted", "quality", "total_score")
MOS_CANDIDATES = ("mos", "dmos", "gt", "ground_truth", "label", "score", "total_score")
STD_CANDIDATES = ("mos_std", "std", "sd")
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")
MAX_TABLE_BYTES = 1 << 30
_MAX_BYTES_ENV = "PERCEPTIQ_MAX_TABLE_BYTES"


def max_table_bytes() -> int:
    """The table size cap in bytes: ``PERCEPTIQ_MAX_TABLE_BYTES`` when set, else :data:`MAX_TABLE_BYTES`."""
    raw = os.environ.get(_MAX_BYTES_ENV, "").strip()
    if not raw:
        return MAX_TABLE_BYTES
    try:
        value = int(float(raw))
    except ValueError:
        raise DataFileError(_MAX_BYTES_ENV, f"must be a number of bytes, got {raw!r}") from None
    return value


def check_table_size(path: Path) -> None:
    """Refuse a file above the table size cap (it would be read whole into memory)."""
    size, cap = path.stat().st_size, max_table_bytes()
    if size > cap:
        raise DataFileError(
            path,
            f"{size:,} bytes exceeds the {cap:,}-byte cap on tables read into memory "
            f"(set {_MAX_BYTES_ENV} to raise it)",
        )


def read_table(path: str | Path, *, as_text: bool = False) -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/JSON/Parquet table into a DataFrame.

    ``as_text``: every cell as a string, for readers that parse the cells themselves: in CSV/TSV the
    text as written (no NA markers, spaces after a separator skipped); in the other formats the text
    of each value, a missing value as "".
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "file not found")
    if path.is_dir():
        raise DataFileError(path, "is a directory, expected a table file")
    if path.stat().st_size == 0:
        raise DataFileError(path, "file is empty")
    check_table_size(path)
    suffix = path.suffix.lower()
    text = {"dtype": str, "keep_default_na": False, "skipinitialspace": True} if as_text else {}
    text_read = suffix in (".csv", ".txt", ".tsv")
    try:
        if suffix in (".csv", ".txt"):
            frame = pd.read_csv(path, **text)
        elif suffix == ".tsv":
            frame = pd.read_csv(path, sep="\t", **text)
        elif suffix in (".jsonl", ".ndjson"):
            frame = pd.read_json(path, lines=True, precise_float=True)
        elif suffix == ".json":
            with path.open(encoding="utf-8") as fh:
                records = json.load(fh)
            if isinstance(records, dict):
                records = [
                    {"id": k, **(v if isinstance(v, dict) else {"score": v})} for k, v in records.items()
                ]
            if not isinstance(records, list):
                raise DataFileError(path, "JSON must hold a list of records or an object keyed by id")
            bad = next((k for k, r in enumerate(records) if not isinstance(r, dict)), None)
            if bad is not None:
                raise DataFileError(
                    path,
                    f"JSON list element {bad} is {type(records[bad]).__name__} {_clip(records[bad])}, "
                    'expected an object (record) such as {"id": ..., "score": ...}',
                )
            frame = pd.DataFrame.from_records(records)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise DataFileError(
                path, f"unsupported table format {suffix!r} (use csv, tsv, jsonl, json or parquet)"
            )
    except DataFileError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, ImportError) as err:
        raise DataFileError(
            path, f"cannot be read as {suffix.lstrip('.') or 'a table'}: {_first_line(err)}"
        ) from err
    if frame.empty:
        raise DataFileError(path, "table has no rows")
    frame.columns = [str(c) for c in frame.columns]
    if as_text and not text_read:
        frame = frame.astype(object).where(frame.notna(), "").astype(str)
    return frame


def _clip(value: object, width: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_scorer(path: str | Path) -> str | None:
    """The ``scorer`` named in a ``perceptiq score`` output table, or None when it has no such column.

    Non-table files (pickles, EvalMuse JSON that is not a record list) give None. Several scorers in
    one file are an error: their scores are not on one scale.
    """
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        return None
    try:
        frame = read_table(path)
    except DataFileError:
        return None  # the reader of the protocol reports what is wrong with the file
    column = next((c for c in frame.columns if c.lower() == "scorer"), None)
    if column is None:
        return None
    names = sorted({str(v).strip() for v in frame[column].dropna()} - {""})
    if len(names) > 1:
        raise DataFileError(path, f"scores of several scorers in one file ({', '.join(names[:5])}): split it")
    return names[0] if names else None


def pick_column(
    frame: pd.DataFrame,
    path: str | Path,
    requested: str | None,
    candidates: tuple[str, ...],
    what: str,
    exclude: tuple[str, ...] = (),
) -> str:
    """The column named ``requested``, else the first of ``candidates`` present (case-insensitive)."""
    columns = list(frame.columns)
    if requested is not None:
        if requested in columns:
            return requested
        raise DataFileError(path, f"no {what} column {requested!r}; columns are: {', '.join(columns)}")
    lower = {c.lower(): c for c in columns if c not in exclude}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    numeric = [c for c in columns if c not in exclude and pd.api.types.is_numeric_dtype(frame[c])]
    if what != "id" and len(numeric) == 1:
        return numeric[0]
    raise DataFileError(
        path,
        f"cannot tell which column holds the {what}; columns are: {', '.join(columns)} "
        "(name it with an option)",
    )


def std_column(frame: pd.DataFrame) -> str | None:
    """The column holding MOS standard deviations: the first named like :data:`STD_CANDIDATES`
    (case-insensitive), None when there is none."""
    return next((c for c in frame.columns if c.lower() in STD_CANDIDATES), None)


def numeric_column(
    frame: pd.DataFrame, column: str, path: str | Path, ids: pd.Series | None = None
) -> np.ndarray:
    """Column as float64, raising on non-numeric, NaN or infinite entries (naming a few ids)."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        labels = (ids if ids is not None else frame.index.to_series()).to_numpy()[bad][:5].tolist()
        raise DataFileError(
            path,
            f"column {column!r} has {int(bad.sum())} missing, non-numeric or infinite value(s), "
            f"e.g. at {labels}",
        )
    return values


def _ids(frame: pd.DataFrame, column: str, path: str | Path) -> pd.Series:
    ids = frame[column].astype(str).str.strip()
    dup = ids[ids.duplicated(keep=False)]
    if not dup.empty:
        examples = sorted(set(dup.tolist()))[:5]
        raise DataFileError(path, f"{dup.nunique()} duplicate id(s) in column {column!r}, e.g. {examples}")
    return ids


def check_id_overlap(
    pred_ids: set[str],
    gt_ids: set[str],
    pred_path: str | Path,
    gt_path: str | Path,
    allow_missing: bool,
    what: str,
) -> tuple[list[str], list[str]]:
    """Ids only predicted and ids only in the ground truth; an error naming both unless ``allow_missing``."""
    only_pred, only_gt = sorted(pred_ids - gt_ids), sorted(gt_ids - pred_ids)
    if (only_pred or only_gt) and not allow_missing:
        parts = []
        if only_gt:
            parts.append(f"{len(only_gt)} ground-truth {what}(s) have no prediction, e.g. {only_gt[:5]}")
        if only_pred:
            parts.append(
                f"{len(only_pred)} predicted {what}(s) are not in {Path(gt_path).name}, e.g. {only_pred[:5]}"
            )
        raise DataFileError(pred_path, "; ".join(parts) + " (use --allow-missing to evaluate the common ids)")
    return only_pred, only_gt


def path_keys(ids: pd.Series, table: str | Path) -> pd.Series:
    """Ids read as file paths: absolute, with relative ones taken from the folder of ``table``.

    ``perceptiq score`` writes absolute image paths and a manifest holds paths relative to its own
    folder; both name the same file once resolved this way (no file is opened, links are not followed).
    """
    base = Path(table).resolve().parent
    return ids.map(lambda value: os.path.normpath(os.path.join(base, value)))


def _matching_ids(
    p_ids: pd.Series, g_ids: pd.Series, pred_path: str | Path, gt_path: str | Path
) -> tuple[pd.Series, pd.Series, bool]:
    """The id keys to join on: the ids as written, or, when that leaves ids unmatched and more match
    as file paths (see :func:`path_keys`), the resolved paths; the flag says which."""
    exact = len(set(p_ids) & set(g_ids))
    if exact == len(g_ids) == len(p_ids):
        return p_ids, g_ids, False
    p_paths, g_paths = path_keys(p_ids, pred_path), path_keys(g_ids, gt_path)
    by_path = len(set(p_paths) & set(g_paths))
    if by_path > exact and not p_paths.duplicated().any() and not g_paths.duplicated().any():
        return p_paths, g_paths, True
    return p_ids, g_ids, False


@dataclass(frozen=True)
class Joined:
    """Predictions and ground truth matched by id (in the ground truth's row order)."""

    ids: np.ndarray
    pred: np.ndarray
    mos: np.ndarray
    mos_std: np.ndarray | None
    pred_frame: pd.DataFrame
    gt_frame: pd.DataFrame
    dropped_pred: tuple[str, ...] = ()
    dropped_gt: tuple[str, ...] = ()
    matched_as_paths: bool = False


def join_tables(
    pred_path: str | Path,
    gt_path: str | Path,
    *,
    id_col: str | None = None,
    pred_col: str | None = None,
    gt_col: str | None = None,
    gt_id_col: str | None = None,
    std_col: str | None = None,
    allow_missing: bool = False,
    pred_frame: pd.DataFrame | None = None,
    gt_frame: pd.DataFrame | None = None,
) -> Joined:
    """Read both tables and match rows by id.

    Ids are compared as stripped strings. Ids present in only one table are an error naming how many
    and a few examples, unless ``allow_missing`` (then the intersection is used and the dropped ids
    are returned). Duplicate ids and missing/non-numeric values are errors. Ids that are file paths
    match when they name the same file (:func:`path_keys`), so the absolute paths of a ``perceptiq
    score`` output join a manifest's paths relative to its folder; the ground truth's ids are kept.
    """
    pf = read_table(pred_path) if pred_frame is None else pred_frame
    gf = read_table(gt_path) if gt_frame is None else gt_frame
    pid = pick_column(pf, pred_path, id_col, ID_CANDIDATES, "id")
    gid = pick_column(gf, gt_path, gt_id_col or id_col, ID_CANDIDATES, "id")
    pcol = pick_column(pf, pred_path, pred_col, PRED_CANDIDATES, "prediction", exclude=(pid,))
    gcol = pick_column(gf, gt_path, gt_col, MOS_CANDIDATES, "ground-truth (MOS)", exclude=(gid,))
    p_ids, g_ids = _ids(pf, pid, pred_path), _ids(gf, gid, gt_path)
    p_keys, g_keys, as_paths = _matching_ids(p_ids, g_ids, pred_path, gt_path)
    only_pred, only_gt = check_id_overlap(set(p_keys), set(g_keys), pred_path, gt_path, allow_missing, "id")
    common = g_keys[g_keys.isin(set(p_keys))]
    if common.empty:
        raise DataFileError(pred_path, f"no id in common with {gt_path} (id columns {pid!r} and {gid!r})")
    pf = pf.assign(_pq_id=p_keys).set_index("_pq_id").loc[common.to_numpy()]
    gf = gf.assign(_pq_id=g_keys).set_index("_pq_id").loc[common.to_numpy()]
    ids = g_ids.loc[common.index].to_numpy()
    std = None
    std_name = std_col or std_column(gf)
    if std_name is not None:
        if std_name not in gf.columns:
            raise DataFileError(gt_path, f"no MOS standard deviation column {std_name!r}")
        std = numeric_column(gf, std_name, gt_path, pd.Series(ids))
    return Joined(
        ids=ids,
        pred=numeric_column(pf, pcol, pred_path, pd.Series(ids)),
        mos=numeric_column(gf, gcol, gt_path, pd.Series(ids)),
        mos_std=std,
        pred_frame=pf,
        gt_frame=gf,
        dropped_pred=tuple(only_pred),
        dropped_gt=tuple(only_gt),
        matched_as_paths=as_paths,
    )
