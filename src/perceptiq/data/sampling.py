"""Multi-dataset training without scale realignment: every batch, and every pair, comes from one dataset.

MOS scales differ between datasets (1-5, 0-100, Elo, ...) and are never mapped onto each other. Ranking
losses compare only images of one dataset, so each batch of :class:`DatasetBatchSampler` holds rows of
a single dataset and :func:`within_dataset_pairs` draws pairs within one dataset. The pair target is
the Thurstone probability that image i is better than image j (LIQE and SR-IQA-SMC25 Fidelity_Loss.py):
``p = Phi((mos_i - mos_j) / sqrt(std_i^2 + std_j^2))`` when both rating stds are known and not both zero,
else the hard preference 1 / 0.5 / 0 (i better / tie / j better).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtr
from torch.utils.data import Sampler

from perceptiq.errors import InputError

__all__ = [
    "epoch_batch_count",
    "thurstone_target",
    "group_positions",
    "within_dataset_pairs",
    "dataset_batches",
    "DatasetBatchSampler",
]


def thurstone_target(
    mos_i: np.ndarray,
    mos_j: np.ndarray,
    std_i: np.ndarray | None = None,
    std_j: np.ndarray | None = None,
) -> np.ndarray:
    """Probability that i is rated above j: ``Phi(d / sqrt(s_i^2 + s_j^2))``, d = mos_i - mos_j.

    Where a std is missing (None or NaN) or both are 0, the hard target ``(sign(d) + 1) / 2``.

    Example:
        >>> thurstone_target(np.array([3.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])).tolist()
        [1.0, 0.5, 1.0]
    """
    mos_i = np.asarray(mos_i, dtype=np.float64)
    mos_j = np.asarray(mos_j, dtype=np.float64)
    diff = mos_i - mos_j
    hard = 0.5 * (np.sign(diff) + 1.0)
    if std_i is None or std_j is None:
        return hard
    scale = np.hypot(np.asarray(std_i, dtype=np.float64), np.asarray(std_j, dtype=np.float64))
    soft = np.isfinite(scale) & (scale > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(soft, ndtr(diff / np.where(soft, scale, 1.0)), hard)


def group_positions(datasets: Sequence[Hashable] | pd.Series | np.ndarray) -> dict[str, np.ndarray]:
    """Row positions of each dataset name (names as strings, in sorted order)."""
    names = pd.Series(list(datasets), dtype=object)
    if names.isna().any():
        raise InputError(f"{int(names.isna().sum())} row(s) have no dataset name")
    names = names.astype(str).to_numpy()
    return {str(name): np.flatnonzero(names == name) for name in np.unique(names)}


def _probabilities(groups: Mapping[str, np.ndarray], weights: Mapping[str, float] | None) -> np.ndarray:
    if weights is None:
        raw = np.asarray([len(v) for v in groups.values()], dtype=np.float64)
    else:
        unknown = sorted(set(weights) - set(groups))
        if unknown:
            raise InputError(
                f"weights name unknown or too small dataset(s) {unknown}; usable: {sorted(groups)}"
            )
        raw = np.asarray([float(weights.get(name, 0.0)) for name in groups], dtype=np.float64)
        if (raw < 0).any() or not np.isfinite(raw).all():
            raise InputError(f"dataset weights must be finite and non-negative, got {dict(weights)}")
    if raw.sum() <= 0:
        raise InputError("dataset weights sum to zero")
    return raw / raw.sum()


def within_dataset_pairs(
    frame: pd.DataFrame,
    n_pairs: int,
    seed: int = 0,
    *,
    weights: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n_pairs`` pairs (i, j), i != j, of row positions of one dataset each, with their targets.

    The dataset of each pair is drawn with probability proportional to its number of rows (or to
    ``weights`` by dataset name), then i and j uniformly among its rows. Without a ``dataset`` column
    the frame is one dataset. Every row needs a MOS; ``mos_std`` is used where the column exists.

    Returns:
        ``(i, j, p)``: int64 positions into ``frame`` and float64 ``P(i better than j)``
        (:func:`thurstone_target`).
    """
    if int(n_pairs) != n_pairs or n_pairs < 0:
        raise InputError(f"n_pairs must be a non-negative integer, got {n_pairs!r}")
    if "mos" not in frame.columns:
        raise InputError("pairs need a 'mos' column")
    mos = pd.to_numeric(frame["mos"], errors="coerce").to_numpy(np.float64)
    if not np.isfinite(mos).all():
        raise InputError(f"{int((~np.isfinite(mos)).sum())} row(s) have no finite MOS; drop them first")
    names = frame["dataset"] if "dataset" in frame.columns else ["all"] * len(frame)
    groups = {k: v for k, v in group_positions(names).items() if v.size >= 2}
    if not groups:
        raise InputError("no dataset has two rows to pair")
    rng = np.random.default_rng(seed)
    which = rng.choice(len(groups), size=int(n_pairs), p=_probabilities(groups, weights))
    members = list(groups.values())
    flat = np.concatenate(members)
    starts = np.cumsum([0] + [m.size for m in members[:-1]])[which]
    sizes = np.asarray([m.size for m in members])[which]
    a = np.floor(rng.random(int(n_pairs)) * sizes).astype(np.int64)
    b = np.floor(rng.random(int(n_pairs)) * (sizes - 1)).astype(np.int64)
    b = b + (b >= a)
    i, j = flat[starts + a], flat[starts + b]
    std = None
    if "mos_std" in frame.columns:
        std = pd.to_numeric(frame["mos_std"], errors="coerce").to_numpy(np.float64)
    p = thurstone_target(mos[i], mos[j], None if std is None else std[i], None if std is None else std[j])
    return i, j, p


def epoch_batch_count(groups: Mapping[str, np.ndarray], batch_size: int, *, drop_last: bool = True) -> int:
    """Number of batches of one epoch-mode pass (groups of fewer than 2 rows give none)."""
    sizes = [len(m) for m in groups.values() if len(m) >= 2]
    return sum(n // batch_size + int(not drop_last and n % batch_size >= 2) for n in sizes)


def dataset_batches(
    groups: Mapping[str, np.ndarray],
    batch_size: int,
    rng: np.random.Generator,
    *,
    weights: Mapping[str, float] | None = None,
    num_batches: int | None = None,
    drop_last: bool = True,
) -> list[list[int]]:
    """Batches of row positions, each from one group.

    Epoch mode (no ``weights``, no ``num_batches``): each group is shuffled and cut into batches of
    ``batch_size`` (a last partial batch of at least 2 rows is kept unless ``drop_last``) and all
    batches are shuffled together, so every row is seen once and datasets appear in proportion to size.
    Stream mode (``weights`` or ``num_batches`` given): each batch picks a group with probability
    proportional to its weight (default: its size) and takes the next ``batch_size`` rows of that group's
    shuffled order, reshuffling when fewer remain; a group smaller than ``batch_size`` gives all its
    rows. ``num_batches`` defaults to the epoch-mode count.
    """
    groups = {k: np.asarray(v, dtype=np.int64) for k, v in groups.items() if len(v) >= 2}
    if not groups:
        raise InputError("no dataset has two rows to pair")
    if weights is None and num_batches is None:
        batches = []
        for members in groups.values():
            order = rng.permutation(members)
            for start in range(0, order.size, batch_size):
                chunk = order[start : start + batch_size]
                if chunk.size == batch_size or (not drop_last and chunk.size >= 2):
                    batches.append(chunk.tolist())
        return [batches[k] for k in rng.permutation(len(batches))]
    if num_batches is None:
        num_batches = epoch_batch_count(groups, batch_size, drop_last=drop_last)
    names = list(groups)
    picks = rng.choice(len(names), size=int(num_batches), p=_probabilities(groups, weights))
    queues = {name: np.empty(0, dtype=np.int64) for name in names}
    out = []
    for pick in picks:
        name = names[pick]
        size = min(batch_size, groups[name].size)
        if queues[name].size < size:
            queues[name] = rng.permutation(groups[name])
        out.append(queues[name][:size].tolist())
        queues[name] = queues[name][size:]
    return out


class DatasetBatchSampler(Sampler[list[int]]):
    """A ``batch_sampler`` for ``torch.utils.data.DataLoader`` whose batches never mix datasets.

    Args:
        datasets: the dataset name of every row (e.g. ``manifest["dataset"]``); positions index the rows.
        batch_size: rows per batch (>= 2, so every batch has a pair).
        seed: base seed; the batches of epoch ``e`` (see :meth:`set_epoch`) are drawn from
            ``numpy.random.default_rng([seed, e])``, so they are reproducible and differ by epoch.
        weights: optional sampling weight per dataset name (stream mode of :func:`dataset_batches`).
        num_batches: optional number of batches per epoch (stream mode).
        drop_last: drop partial batches (epoch mode).
    """

    def __init__(
        self,
        datasets: Sequence[Hashable] | pd.Series | np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        weights: Mapping[str, float] | None = None,
        num_batches: int | None = None,
        drop_last: bool = True,
    ) -> None:
        if int(batch_size) != batch_size or batch_size < 2:
            raise InputError(f"batch_size must be an integer >= 2 (a batch needs a pair), got {batch_size!r}")
        if num_batches is not None and (int(num_batches) != num_batches or num_batches < 1):
            raise InputError(f"num_batches must be a positive integer, got {num_batches!r}")
        self.groups = group_positions(datasets)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.weights = None if weights is None else dict(weights)
        self.num_batches = num_batches
        self.drop_last = drop_last
        self.epoch = 0
        self._length = (
            int(num_batches)
            if num_batches is not None
            else epoch_batch_count(self.groups, self.batch_size, drop_last=drop_last)
        )
        if weights is not None:
            _probabilities({k: v for k, v in self.groups.items() if v.size >= 2}, weights)
        if self._length == 0:
            raise InputError(f"no dataset has {self.batch_size if drop_last else 2} rows to fill a batch")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        return dataset_batches(
            self.groups,
            self.batch_size,
            np.random.default_rng([self.seed, self.epoch]),
            weights=self.weights,
            num_batches=self.num_batches,
            drop_last=self.drop_last,
        )

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return self._length
