"""Content-independent splits: every image of one content (reference image, prompt, LR input, or the
image itself) falls in one split, so no test content was seen in training.

Assignment rule (ours): the distinct content keys are sorted, shuffled with ``numpy.random.default_rng(seed)``
and laid end to end, each taking as much room as it has images; a content goes to the split whose share
of the line ``[0, 1)`` holds the midpoint of its stretch. Split sizes in images thus follow the fractions
up to one content's size, and the same frame and seed always give the same labels. K-fold assignment is
the same rule with k equal shares (labels 0..k-1). For super-resolution data split by ``ref`` (the HR
image), not ``lr``: all LR inputs made from one HR image share its content.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from perceptiq.errors import InputError

__all__ = [
    "DEFAULT_FRACTIONS",
    "content_keys",
    "assign_groups",
    "content_split",
    "kfold",
    "check_content_split",
]

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
_NAMES_BY_COUNT = {1: ("train",), 2: ("train", "test"), 3: ("train", "val", "test")}


def content_keys(frame: pd.DataFrame, by: str) -> pd.Series:
    """The content key of each row: the values of column ``by`` as strings; every row must have one."""
    if by not in frame.columns:
        raise InputError(f"cannot split by {by!r}: no such column (columns are: {', '.join(frame.columns)})")
    keys = frame[by]
    missing = keys.isna()
    if missing.any():
        raise InputError(
            f"cannot split by {by!r}: {int(missing.sum())} row(s) have no {by}, e.g. at index "
            f"{frame.index[missing][:3].tolist()} (split by 'image' for data without {by})"
        )
    return keys.astype(str)


def assign_groups(sizes: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Split index of each group, groups laid end to end in the given order (the midpoint rule above).

    Example:
        >>> assign_groups(np.array([2, 2, 3, 1, 2]), np.array([0.8, 0.2])).tolist()
        [0, 0, 0, 0, 1]
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or fractions.size == 0 or (fractions < 0).any() or fractions.sum() <= 0:
        raise InputError(f"fractions must be non-negative with a positive sum, got {fractions.tolist()}")
    bounds = np.cumsum(fractions) / fractions.sum()
    ends = np.cumsum(sizes)
    mid = (ends - sizes / 2.0) / ends[-1]
    return np.minimum(np.searchsorted(bounds, mid, side="right"), fractions.size - 1)


def _fractions(fractions: Mapping[str, float] | Sequence[float] | None) -> tuple[list[str], np.ndarray]:
    if fractions is None:
        fractions = DEFAULT_FRACTIONS
    if isinstance(fractions, Mapping):
        return [str(k) for k in fractions], np.asarray(list(fractions.values()), dtype=np.float64)
    values = np.asarray(list(fractions), dtype=np.float64)
    if values.size not in _NAMES_BY_COUNT:
        raise InputError(
            f"{values.size} unnamed fractions; give 1-3 (train[, val], test) or a dict of split names"
        )
    return list(_NAMES_BY_COUNT[values.size]), values


def content_split(
    frame: pd.DataFrame,
    by: str = "ref",
    *,
    fractions: Mapping[str, float] | Sequence[float] | None = None,
    n_folds: int | None = None,
    seed: int = 0,
) -> pd.Series:
    """Split label of every row such that rows of one content share a label.

    Args:
        frame: a manifest (any table with the column ``by``).
        by: content column: ``"ref"`` (full-reference and SR data), ``"prompt"`` (text-to-image),
            ``"lr"``, ``"image"`` (one content per image), or any other column.
        fractions: share of images per split, a dict ``{name: share}`` or 1-3 numbers named
            (train, val, test) as in (0.8, 0.2) -> train/test; default 0.8/0.1/0.1 train/val/test.
            Shares are normalised to sum 1.
        n_folds: instead of fractions, k-fold labels 0..k-1 (int).
        seed: shuffling seed; same frame and seed give the same labels.

    Returns:
        A Series aligned with ``frame.index`` named ``"split"`` (strings) or ``"fold"`` (ints).
    """
    if n_folds is not None and fractions is not None:
        raise InputError("give fractions or n_folds, not both")
    keys = content_keys(frame, by)
    unique, inverse, counts = np.unique(keys.to_numpy(), return_inverse=True, return_counts=True)
    if n_folds is not None:
        if int(n_folds) != n_folds or n_folds < 2:
            raise InputError(f"n_folds must be an integer >= 2, got {n_folds!r}")
        if n_folds > unique.size:
            raise InputError(
                f"{n_folds} folds need at least {n_folds} distinct {by} values, found {unique.size}"
            )
        names, shares = list(range(int(n_folds))), np.ones(int(n_folds))
    else:
        names, shares = _fractions(fractions)
    order = np.random.default_rng(seed).permutation(unique.size)
    group_split = np.empty(unique.size, dtype=np.int64)
    group_split[order] = assign_groups(counts[order], shares)
    labels = np.asarray(names, dtype=object)[group_split[inverse]]
    if n_folds is not None:
        return pd.Series(labels.astype(np.int64), index=frame.index, name="fold")
    return pd.Series(labels, index=frame.index, name="split")


def kfold(
    frame: pd.DataFrame, by: str = "ref", *, n_folds: int = 5, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Content-independent k-fold cross-validation: (train positions, validation positions) per fold."""
    folds = content_split(frame, by, n_folds=n_folds, seed=seed).to_numpy()
    for k in range(n_folds):
        yield np.flatnonzero(folds != k), np.flatnonzero(folds == k)


def check_content_split(frame: pd.DataFrame, labels: pd.Series | Sequence | str, by: str) -> None:
    """Raise :class:`InputError` when one content (value of ``by``) appears in more than one split.

    ``labels`` is a column name of ``frame`` (e.g. ``"split"``) or one label per row.
    """
    values = frame[labels] if isinstance(labels, str) else pd.Series(list(labels), index=frame.index)
    if len(values) != len(frame):
        raise InputError(f"{len(values)} labels for {len(frame)} rows")
    table = pd.DataFrame({"key": content_keys(frame, by).to_numpy(), "label": values.to_numpy()})
    spread = table.groupby("key")["label"].nunique(dropna=False)
    leaked = spread[spread > 1]
    if not leaked.empty:
        examples = leaked.index[:3].tolist()
        raise InputError(
            f"{leaked.size} {by} value(s) appear in more than one split, e.g. {examples} "
            f"(in splits {sorted(map(str, table[table['key'] == examples[0]]['label'].unique()))})"
        )
