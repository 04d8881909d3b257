"""Readers for the files the challenges used, returning the fields of the protocols' data objects.

Each ``load_*`` function returns a ``dict`` whose keys are the fields of one data class of
:mod:`perceptiq.evaluation.protocols` (``AlignmentData``, ``StructureData``, ``PairData``); the
evaluation layer builds the object (:func:`perceptiq.evaluation.loading.load_for_protocol`), so this
module reads files and computes nothing.

* NTIRE 2025 T2I alignment (EvalMuse-40K): ``output.json`` = list of ``{prompt, img_path, total_score,
  element_score: {"<text> (<category>)": value}}`` for predictions and for ground truth alike.
* NTIRE 2025 T2I structure (EvalMuse-Structure): a pickle ``{img_name: {"score": float,
  "pred_area": uint8 HxW}}``; ground truth in the same form (mask key ``gt_area``, ``mask``, ``area`` or
  ``pred_area``), or a table with an id, a MOS and a ``mask`` column of image paths.
* RealSR 2AFC votes: a table of pairs (``name1_column, name2_column, score1_column`` as released, or
  ``first, second, p_first``) plus a predictions table keyed by image name.

Pickles are loaded with an unpickler that only admits plain containers and numpy arrays, so a
submission file cannot run code, and that refuses an array whose declared size its data do not back
(numpy itself checks the data against the shape when it fills the array).
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from perceptiq.errors import DataFileError
from perceptiq.io.tables import (
    ID_CANDIDATES,
    MOS_CANDIDATES,
    PRED_CANDIDATES,
    check_id_overlap,
    check_table_size,
    numeric_column,
    pick_column,
    read_table,
)

__all__ = [
    "read_evalmuse_json",
    "load_alignment",
    "safe_load_pickle",
    "read_structure_file",
    "load_structure",
    "load_pairs",
]

Fields = dict[str, object]
"""Keyword arguments of a protocol data class, e.g. ``AlignmentData(**fields)``."""

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
}


# numpy pickles an array as _reconstruct(ndarray, (0,), ...) followed by its data; _reconstruct
# allocates the shape it is given, so a crafted file could declare 10^12 elements it never sends.
_MAX_DECLARED_ELEMENTS = 1 << 20


def _guarded_reconstruct(reconstruct):  # noqa: ANN001, ANN202 - wraps numpy's private constructor
    def build(subtype, shape, dtype):  # noqa: ANN001, ANN202
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(isinstance(d, int) and d >= 0 for d in dims):
            raise pickle.UnpicklingError(f"array shape {shape!r} is not a tuple of sizes")
        elements = int(np.prod(dims, dtype=object))
        if elements > _MAX_DECLARED_ELEMENTS:
            raise pickle.UnpicklingError(
                f"declares an array of {elements:,} elements before its data (refused: numpy writes 0)"
            )
        return reconstruct(subtype, shape, dtype)

    return build


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle API
        if (module, name) in _ALLOWED_GLOBALS:
            found = super().find_class(module, name)
            return _guarded_reconstruct(found) if name == "_reconstruct" else found
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only containers and numpy arrays)")


def safe_load_pickle(path: str | Path) -> object:
    """Load a pickle that may contain only builtin containers, numbers, strings and numpy arrays."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "file not found")
    check_table_size(path)
    try:
        with path.open("rb") as fh:
            return _SafeUnpickler(io.BufferedReader(fh)).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ValueError,
        TypeError,
        ImportError,
        IndexError,
        MemoryError,
    ) as err:
        raise DataFileError(path, f"cannot be read as a pickle of scores and masks: {err}") from err


# ------------------------------------------------------------------------------------- alignment


def read_evalmuse_json(path: str | Path) -> dict[str, tuple[float, dict[str, float]]]:
    """``{img_path: (total_score, {element key: value})}`` from an EvalMuse-format JSON list."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "file not found")
    check_table_size(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFileError(path, f"not valid JSON: {err}") from err
    if not isinstance(records, list):
        raise DataFileError(path, "expected a JSON list of {img_path, total_score, element_score} records")
    out: dict[str, tuple[float, dict[str, float]]] = {}
    for k, rec in enumerate(records):
        if not isinstance(rec, dict) or "img_path" not in rec or "total_score" not in rec:
            raise DataFileError(path, f"record {k} lacks 'img_path' or 'total_score'")
        key = str(rec["img_path"])
        if key in out:
            raise DataFileError(path, f"duplicate img_path {key!r}")
        elements = rec.get("element_score") or {}
        if not isinstance(elements, dict):
            raise DataFileError(path, f"record {key!r}: element_score must be an object")
        try:
            total = float(rec["total_score"])
            values = {str(e): float(v) for e, v in elements.items()}
        except (TypeError, ValueError) as err:
            raise DataFileError(path, f"record {key!r}: non-numeric score ({err})") from err
        if not np.isfinite(total) or not all(np.isfinite(list(values.values()))):
            raise DataFileError(path, f"record {key!r}: NaN or infinite score")
        out[key] = (total, values)
    if not out:
        raise DataFileError(path, "no records")
    return out


def _match_keys(
    pred_keys: set[str], gt_keys: set[str], pred_path: Path, gt_path: Path, allow_missing: bool
) -> list[str]:
    check_id_overlap(pred_keys, gt_keys, pred_path, gt_path, allow_missing, "image")
    common = sorted(gt_keys & pred_keys)
    if not common:
        raise DataFileError(pred_path, f"no image in common with {gt_path}")
    return common


def load_alignment(pred_path: str | Path, gt_path: str | Path, *, allow_missing: bool = False) -> Fields:
    """Match EvalMuse predictions to ground truth by ``img_path`` and elements by key (``AlignmentData``)."""
    pred_path, gt_path = Path(pred_path), Path(gt_path)
    pred, gt = read_evalmuse_json(pred_path), read_evalmuse_json(gt_path)
    ids = _match_keys(set(pred), set(gt), pred_path, gt_path, allow_missing)
    e_pred, e_gt = [], []
    for key in ids:
        p_el, g_el = pred[key][1], gt[key][1]
        missing = sorted(set(g_el) - set(p_el))
        if missing:
            raise DataFileError(
                pred_path, f"image {key!r} lacks element(s) {missing[:3]} of the ground truth"
            )
        order = list(g_el)
        e_pred.append(np.array([p_el[e] for e in order], dtype=np.float64))
        e_gt.append(np.array([g_el[e] for e in order], dtype=np.float64))
    return {
        "ids": np.array(ids),
        "pred": np.array([pred[k][0] for k in ids]),
        "mos": np.array([gt[k][0] for k in ids]),
        "element_pred": tuple(e_pred),
        "element_gt": tuple(e_gt),
    }


# ------------------------------------------------------------------------------------- structure

_MASK_KEYS = ("pred_area", "gt_area", "mask", "area", "heatmap")


def _read_mask_image(path: Path, owner: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except (OSError, ValueError) as err:
        raise DataFileError(owner, f"mask image {path} cannot be read: {err}") from err


def read_structure_file(
    path: str | Path, *, score_col: str | None = None, mask_col: str = "mask", id_col: str | None = None
) -> dict[str, tuple[float, np.ndarray]]:
    """``{image: (score, mask array)}`` from a structure-track pickle or a table with mask image paths."""
    path = Path(path)
    if path.suffix.lower() in (".pkl", ".pickle"):
        obj = safe_load_pickle(path)
        if not isinstance(obj, dict):
            raise DataFileError(path, "expected a dict {image name: {'score': ..., 'pred_area': ...}}")
        out = {}
        for name, entry in obj.items():
            if not isinstance(entry, dict) or "score" not in entry:
                raise DataFileError(path, f"entry {name!r} lacks 'score'")
            key = next((k for k in _MASK_KEYS if k in entry), None)
            if key is None:
                raise DataFileError(path, f"entry {name!r} has no mask (one of {', '.join(_MASK_KEYS)})")
            mask = np.asarray(entry[key])
            if mask.ndim != 2:
                raise DataFileError(path, f"entry {name!r}: mask must be 2-D, got shape {mask.shape}")
            score = float(entry["score"])
            if not np.isfinite(score):
                raise DataFileError(path, f"entry {name!r}: score is NaN or infinite")
            out[str(name)] = (score, mask)
        if not out:
            raise DataFileError(path, "no entries")
        return out
    frame = read_table(path)
    idc = pick_column(frame, path, id_col, ID_CANDIDATES, "id")
    sc = pick_column(frame, path, score_col, (*MOS_CANDIDATES, *PRED_CANDIDATES), "score", exclude=(idc,))
    if mask_col not in frame.columns:
        raise DataFileError(path, f"no mask column {mask_col!r}; columns are: {', '.join(frame.columns)}")
    scores = numeric_column(frame, sc, path)
    return {
        str(i): (float(s), _read_mask_image(path.parent / str(m), path))
        for i, s, m in zip(frame[idc], scores, frame[mask_col], strict=True)
    }


def load_structure(
    pred_path: str | Path, gt_path: str | Path, *, allow_missing: bool = False
) -> tuple[Fields, list[str]]:
    """Match structure-track predictions to ground truth; returns ``StructureData`` fields and notes.

    Maps are kept as read: the structure protocol binarises heatmaps and resizes a predicted mask
    whose size differs from its ground truth (the notes say how many do).
    """
    pred_path, gt_path = Path(pred_path), Path(gt_path)
    pred, gt = read_structure_file(pred_path), read_structure_file(gt_path)
    ids = _match_keys(set(pred), set(gt), pred_path, gt_path, allow_missing)
    resized = sum(pred[key][1].shape != gt[key][1].shape for key in ids)
    notes = [f"{resized} predicted mask(s) resized (nearest) to the ground-truth size"] if resized else []
    fields = {
        "ids": np.array(ids),
        "pred": np.array([pred[k][0] for k in ids]),
        "mos": np.array([gt[k][0] for k in ids]),
        "pred_masks": tuple(pred[k][1] for k in ids),
        "gt_masks": tuple(gt[k][1] for k in ids),
    }
    return fields, notes


# ----------------------------------------------------------------------------------------- pairs

FIRST_CANDIDATES = ("name1_column", "name1", "first", "image1", "img1", "a")
SECOND_CANDIDATES = ("name2_column", "name2", "second", "image2", "img2", "b")
P_CANDIDATES = ("score1_column", "score1", "p_first", "p1", "prob_first", "fraction_first")


def load_pairs(
    pred_path: str | Path,
    pairs_path: str | Path,
    *,
    id_col: str | None = None,
    pred_col: str | None = None,
    allow_missing: bool = False,
    pred_frame: pd.DataFrame | None = None,
) -> Fields:
    """Human-voted pairs joined with per-image predictions (``PairData`` fields, 2AFC protocol)."""
    pred_path, pairs_path = Path(pred_path), Path(pairs_path)
    pf = read_table(pred_path) if pred_frame is None else pred_frame
    pairs = read_table(pairs_path)
    idc = pick_column(pf, pred_path, id_col, ID_CANDIDATES, "id")
    pc = pick_column(pf, pred_path, pred_col, PRED_CANDIDATES, "prediction", exclude=(idc,))
    first = pick_column(pairs, pairs_path, None, FIRST_CANDIDATES, "first image")
    second = pick_column(pairs, pairs_path, None, SECOND_CANDIDATES, "second image")
    pcol = pick_column(pairs, pairs_path, None, P_CANDIDATES, "fraction of votes for the first image")
    ids = pf[idc].astype(str).str.strip()
    if ids.duplicated().any():
        dup = sorted(set(ids[ids.duplicated()]))[:5]
        raise DataFileError(pred_path, f"duplicate id(s), e.g. {dup}")
    scores = dict(zip(ids, numeric_column(pf, pc, pred_path, ids), strict=True))
    a = pairs[first].astype(str).str.strip()
    b = pairs[second].astype(str).str.strip()
    same = (a == b).to_numpy()
    if same.any():
        row = int(np.flatnonzero(same)[0])
        raise DataFileError(
            pairs_path,
            f"line {row + 2}: image {a.iloc[row]!r} is compared with itself "
            f"({int(same.sum())} such pair(s)); a 2AFC pair needs two different images",
        )
    known = a.isin(scores.keys()) & b.isin(scores.keys())
    if not known.all():
        missing = sorted(set(a[~a.isin(scores.keys())]) | set(b[~b.isin(scores.keys())]))
        if not allow_missing:
            raise DataFileError(
                pred_path,
                f"{len(missing)} image(s) of {pairs_path.name} have no prediction, e.g. {missing[:5]} "
                "(use --allow-missing to evaluate the pairs whose images are both scored)",
            )
        pairs, a, b = pairs[known], a[known], b[known]
    if pairs.empty:
        raise DataFileError(pred_path, f"no pair of {pairs_path} has both images scored")
    p = numeric_column(pairs, pcol, pairs_path)
    if ((p < 0) | (p > 1)).any():
        raise DataFileError(pairs_path, f"column {pcol!r} must hold fractions in [0, 1]")
    return {
        "pair_ids": (a + " | " + b).to_numpy(),
        "p_first": p,
        "score_first": np.array([scores[k] for k in a]),
        "score_second": np.array([scores[k] for k in b]),
    }
