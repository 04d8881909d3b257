"""Read the files a protocol evaluates into its data object (the readers are in :mod:`perceptiq.io`).

:func:`load_for_protocol` picks the reader by the protocol's ``data_kind``: two tables joined on an
id (:func:`perceptiq.io.tables.join_tables`), EvalMuse JSON, structure pickles or 2AFC pairs
(:mod:`perceptiq.io.submissions`), and builds the data class from what the reader returns.
"""

from __future__ import annotations

from pathlib import Path

from perceptiq.evaluation.protocols import AlignmentData, PairData, Protocol, ScoreData, StructureData
from perceptiq.io.submissions import load_alignment, load_pairs, load_structure
from perceptiq.io.tables import join_tables

__all__ = ["load_for_protocol"]


def load_for_protocol(
    protocol: Protocol,
    pred_path: str | Path,
    gt_path: str | Path,
    *,
    id_col: str | None = None,
    pred_col: str | None = None,
    gt_col: str | None = None,
    gt_id_col: str | None = None,
    std_col: str | None = None,
    allow_missing: bool = False,
) -> tuple[ScoreData | PairData | AlignmentData | StructureData, list[str]]:
    """Read the files a protocol needs into its data object; returns (data, notes for the user)."""
    kind = protocol.data_kind
    if kind is AlignmentData:
        return AlignmentData(**load_alignment(pred_path, gt_path, allow_missing=allow_missing)), []
    if kind is StructureData:
        fields, notes = load_structure(pred_path, gt_path, allow_missing=allow_missing)
        return StructureData(**fields), notes
    if kind is PairData:
        fields = load_pairs(pred_path, gt_path, id_col=id_col, pred_col=pred_col, allow_missing=allow_missing)
        return PairData(**fields), []
    joined = join_tables(
        pred_path,
        gt_path,
        id_col=id_col,
        pred_col=pred_col,
        gt_col=gt_col,
        gt_id_col=gt_id_col,
        std_col=std_col,
        allow_missing=allow_missing,
    )
    notes = []
    if joined.matched_as_paths:
        notes.append(
            "ids matched as file paths (relative paths taken from the folder of their table); "
            f"ids shown as in {Path(gt_path).name}"
        )
    if joined.dropped_gt or joined.dropped_pred:
        notes.append(
            f"evaluated the {joined.ids.size} common ids; dropped {len(joined.dropped_gt)} ground-truth "
            f"and {len(joined.dropped_pred)} predicted id(s)"
        )
    return ScoreData(joined.ids, joined.pred, joined.mos, joined.mos_std), notes
