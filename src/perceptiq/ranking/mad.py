"""MAD competition: pick, per pair of methods, the inputs that best tell them apart (Chen et al., Learning
from Model Rankings, 2025, eq. 1).

Chen et al., Learning from Model Rankings, 2025 (eq. 1) selects for each pair of methods ``(f_i, f_j)`` the
``k``-th input greedily as

    x_k = argmax over x not in S of  D1(f_i(x), f_j(x)) + lambda * D2(x, S),

``S`` being the inputs already selected, ``D1`` a perceptual distance between the two outputs (DISTS in
the paper) and ``D2`` a "semantic distance between x and the set S" (VGG-16 features). The paper does
not say how the distance to a set is formed. The released code (cschenjunlin/SR-IQA-SMC25,
``MAD_competition.py``) does the following, which is the default here:

1. sort the inputs by ``D1`` descending (here a stable sort, so equal ``D1`` keep input order);
2. the first pick is the top of that order (``argmax D1``; ``D2`` of an empty set is not used);
3. at step ``k = |S| >= 1`` pick ``argmax_x D1(x) + lambda * (sum_{s in S} d2(x, s)) / k`` over the
   remaining inputs, ``d2(x, s)`` the mean squared difference of the feature vectors of ``x`` and ``s``
   (``F.mse_loss``), i.e. lambda times the *mean* feature distance to the selected set; ties go to the
   input that comes first in the ``D1``-descending order.

The released run used lambda = 0.05 and 12 inputs per pair; the paper reports lambda = 0.1, K = 16.
Options: ``distance`` = ``"mse"`` (default), ``"sqeuclidean"``, ``"euclidean"`` or ``"cosine"`` for
``d2(x, s)``; ``reduce`` = ``"mean"`` (default, the released code) or ``"min"`` (distance to the nearest
selected input, the other common reading of ``D2(x, S)``).

Everything is vectorised over method pairs: the ``n x n`` matrix of ``d2`` is computed once, then each
greedy step updates a running sum (or minimum) for all pairs at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

import numpy as np
import torch
from scipy.spatial.distance import pdist, squareform

from perceptiq.errors import InputError

__all__ = [
    "D2Distance",
    "D2Reduce",
    "MadSelection",
    "MadPairs",
    "method_pairs",
    "feature_distances",
    "greedy_select",
    "mad_select",
    "similarity_to_distance",
    "select_mad_pairs",
]

D2Distance = Literal["mse", "sqeuclidean", "euclidean", "cosine"]
D2Reduce = Literal["mean", "min"]

ImageSource = torch.Tensor | Sequence[torch.Tensor] | Callable[[int], torch.Tensor]
"""Images per input: a tensor indexed by input, a sequence of tensors, or a loader ``i -> tensor``."""


@dataclass(frozen=True, eq=False)
class MadSelection:
    """Greedy MAD picks for ``P`` method pairs (row ``p`` of every array is pair ``p``).

    Attributes:
        indices: (P, K) input indices in selection order.
        d1: (P, K) ``D1`` of the picked inputs.
        d2: (P, K) ``D2(x, S)`` at the time of the pick (mean or min of ``d2`` to the inputs picked
            before); NaN for the first pick, whose ``S`` is empty.
        objective: (P, K) ``D1 + lambda * D2`` that was maximised (``D1`` for the first pick).
        lam: the trade-off lambda.
    """

    indices: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    objective: np.ndarray
    lam: float

    @property
    def k(self) -> int:
        """Inputs selected per pair."""
        return int(self.indices.shape[1])


def method_pairs(n_methods: int) -> np.ndarray:
    """All unordered pairs ``(a, b)``, ``a < b``, of ``n_methods`` methods, (P, 2) in lexicographic order."""
    if n_methods < 2:
        raise InputError(f"MAD needs at least 2 methods, got {n_methods}")
    return np.array(list(combinations(range(n_methods), 2)), dtype=np.intp)


def _as_matrix(values: object, what: str, ndim: int) -> np.ndarray:
    arr = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    if arr.ndim != ndim:
        raise InputError(f"{what} must have {ndim} dimensions, got shape {arr.shape}")
    return arr


def feature_distances(features: np.ndarray | torch.Tensor, distance: D2Distance = "mse") -> np.ndarray:
    """Pairwise ``d2`` of ``n`` feature vectors (n, d) -> (n, n) float64, by ``scipy.spatial.distance.pdist``.

    ``"mse"``: ``mean_j (a_j - b_j)^2`` (squared Euclidean / d; the released code's ``F.mse_loss``);
    ``"sqeuclidean"``: ``sum_j (a_j - b_j)^2``; ``"euclidean"``: its square root; ``"cosine"``:
    ``1 - a.b / (|a| |b|)`` (undefined for a zero vector). Each pair is computed once and summed
    directly (no ``|a|^2 + |b|^2 - 2 a.b`` expansion), so the matrix is exactly symmetric,
    ``d2(x, x) = 0`` and identical feature rows tie exactly.
    """
    feats = _as_matrix(features, "features", 2)
    if feats.shape[0] < 1 or feats.shape[1] < 1:
        raise InputError(f"features must be a non-empty (n_inputs, d) array, got shape {feats.shape}")
    if not np.isfinite(feats).all():
        raise InputError("features hold NaN or infinite values")
    if distance not in ("mse", "sqeuclidean", "euclidean", "cosine"):
        raise InputError(f"distance must be 'mse', 'sqeuclidean', 'euclidean' or 'cosine', got {distance!r}")
    if distance == "cosine" and (zero_rows := np.linalg.norm(feats, axis=1) == 0).any():
        zero = int(np.flatnonzero(zero_rows)[0])
        raise InputError(f"cosine distance is undefined for the all-zero feature vector of input {zero}")
    metric = "sqeuclidean" if distance == "mse" else distance
    matrix = squareform(pdist(feats, metric))
    return matrix / feats.shape[1] if distance == "mse" else matrix


def greedy_select(
    d1: np.ndarray | torch.Tensor,
    d2_matrix: np.ndarray | torch.Tensor,
    k: int,
    lam: float,
    *,
    reduce: D2Reduce = "mean",
) -> MadSelection:
    """Greedy MAD selection from ``D1`` and a precomputed ``d2`` matrix (Chen et al., Learning from Model
    Rankings, 2025, eq. 1, released rule).

    Args:
        d1: (n,) ``D1`` of one method pair over ``n`` inputs, or (P, n) for ``P`` pairs; larger = the two
            outputs differ more. ``+-inf`` is allowed (e.g. ``-PSNR`` of identical outputs), NaN is not.
        d2_matrix: (n, n) ``d2(x, s)`` between inputs (:func:`feature_distances`), shared by all pairs.
        k: inputs to pick per pair; at most ``n`` are picked (all of them when ``k >= n``).
        lam: trade-off lambda >= 0; 0 gives the top-``k`` inputs by ``D1`` (stable order).
        reduce: ``"mean"``: ``D2(x, S) = sum_{s in S} d2(x, s) / |S|`` (released code); ``"min"``:
            ``min_{s in S} d2(x, s)``.

    Returns:
        :class:`MadSelection` with (P, min(k, n)) arrays (P = 1 for a 1-D ``d1``).
    """
    scores = _as_matrix(d1, "d1", 2 if np.ndim(d1) == 2 else 1)
    scores = scores[None, :] if scores.ndim == 1 else scores
    n_pairs, n = scores.shape
    d2m = _as_matrix(d2_matrix, "d2_matrix", 2)
    if d2m.shape != (n, n):
        raise InputError(f"d2_matrix must have shape ({n}, {n}) for {n} inputs, got {d2m.shape}")
    if n == 0:
        raise InputError("d1 holds no inputs")
    if np.isnan(scores).any():
        p, i = np.argwhere(np.isnan(scores))[0]
        raise InputError(f"d1 is NaN for pair {p}, input {i}")
    if not np.isfinite(d2m).all():
        raise InputError("d2_matrix holds NaN or infinite values")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if not (math.isfinite(lam) and lam >= 0):
        raise InputError(f"lambda must be a finite number >= 0, got {lam!r}")
    if reduce not in ("mean", "min"):
        raise InputError(f"reduce must be 'mean' or 'min', got {reduce!r}")

    n_pick = min(int(k), n)
    order = np.argsort(-scores, axis=1, kind="stable")
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(n)[None, :], axis=1)
    rows = np.arange(n_pairs)
    available = np.ones((n_pairs, n), dtype=bool)
    acc = np.zeros((n_pairs, n)) if reduce == "mean" else np.full((n_pairs, n), np.inf)
    d2_term = np.full((n_pairs, n), np.nan)
    objective = scores
    picked = np.empty((n_pairs, n_pick), dtype=np.intp)
    d2_out = np.empty((n_pairs, n_pick))
    obj_out = np.empty((n_pairs, n_pick))
    for step in range(n_pick):
        if step > 0:
            last = d2m[picked[:, step - 1]]
            if reduce == "mean":
                acc += last
                d2_term = acc / step
                objective = scores + lam * acc / step
            else:
                np.minimum(acc, last, out=acc)
                d2_term = acc
                objective = scores + lam * acc
        masked = np.where(available, objective, -np.inf)
        tied = available & (masked == masked.max(axis=1, keepdims=True))
        choice = np.argmin(np.where(tied, position, n), axis=1)
        picked[:, step] = choice
        d2_out[:, step] = d2_term[rows, choice]
        obj_out[:, step] = objective[rows, choice]
        available[rows, choice] = False
    return MadSelection(
        indices=picked,
        d1=np.take_along_axis(scores, picked, axis=1),
        d2=d2_out,
        objective=obj_out,
        lam=float(lam),
    )


def mad_select(
    d1: np.ndarray | torch.Tensor,
    features: np.ndarray | torch.Tensor,
    k: int,
    lam: float,
    *,
    distance: D2Distance = "mse",
    reduce: D2Reduce = "mean",
) -> MadSelection:
    """MAD selection (Chen et al., Learning from Model Rankings, 2025, eq. 1, released-code rule) from ``D1``
    and per-input feature vectors.

    Args:
        d1: (n,) or (P, n) ``D1`` per method pair and input (a distance: larger = more different).
        features: (n, d) feature vector of each input, the source of ``D2``.
        k, lam, reduce: as in :func:`greedy_select`.
        distance: ``d2`` between two feature vectors (:func:`feature_distances`); ``"mse"`` as released.

    Example:
        >>> sel = mad_select([0.9, 0.8, 0.1], [[0.0], [0.1], [5.0]], k=2, lam=0.1)
        >>> sel.indices.tolist()
        [[0, 2]]
    """
    n = np.shape(d1)[-1]
    if np.shape(features)[0] != n:
        raise InputError(f"features has {np.shape(features)[0]} rows but d1 has {n} inputs")
    return greedy_select(d1, feature_distances(features, distance), k, lam, reduce=reduce)


def similarity_to_distance(
    scores: np.ndarray | torch.Tensor,
    lower_is_better: bool,
    score_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Turn a full-reference metric's scores into a ``D1`` distance (larger = outputs differ more).

    A distance (``lower_is_better``, e.g. DISTS, GMSD, LPIPS) is kept as is. A similarity is flipped:
    ``upper - score`` when its range has a finite upper bound (``1 - SSIM``, ``1 - MS-SSIM``), else
    ``-score`` (``-PSNR``). Both are a constant shift of ``-score``, so the greedy choices are the same
    either way; only the reported ``d1`` differs. (The released code uses the score as is and is run
    with DISTS, a distance.)
    """
    values = _as_matrix(scores, "scores", np.ndim(scores))
    if lower_is_better:
        return values
    upper = None if score_range is None else score_range[1]
    if upper is not None and math.isfinite(upper):
        return upper - values
    return -values


@dataclass(frozen=True, eq=False)
class MadPairs:
    """The result of :func:`select_mad_pairs`.

    Attributes:
        methods: method names, in the order of the output tensors.
        inputs: input names.
        pairs: (P, 2) method indices ``(a, b)``, ``a < b``; ``D1`` compares ``f_a(x)`` (image) with
            ``f_b(x)`` (reference).
        d1: (P, n_inputs) ``D1`` of every pair and input.
        selection: the greedy picks (:class:`MadSelection`).
        metric: name of the ``D1`` metric.
        lower_is_better: whether that metric is a distance (if not, ``D1`` was flipped).
    """

    methods: tuple[str, ...]
    inputs: tuple[str, ...]
    pairs: np.ndarray
    d1: np.ndarray
    selection: MadSelection
    metric: str
    lower_is_better: bool
    options: dict[str, object] = field(default_factory=dict)

    def records(self) -> list[dict[str, object]]:
        """One dict per selected (pair, input): pair_id, method_a, method_b, input, d1, d2_mean,
        objective, rank_in_pair (1 = first pick); ``d2_mean`` is None for the first pick."""
        sel = self.selection
        out: list[dict[str, object]] = []
        for p, (a, b) in enumerate(self.pairs):
            for r in range(sel.k):
                d2 = float(sel.d2[p, r])
                out.append(
                    {
                        "pair_id": p,
                        "method_a": self.methods[a],
                        "method_b": self.methods[b],
                        "input": self.inputs[sel.indices[p, r]],
                        "input_index": int(sel.indices[p, r]),
                        "d1": float(sel.d1[p, r]),
                        "d2_mean": None if math.isnan(d2) else d2,
                        "objective": float(sel.objective[p, r]),
                        "rank_in_pair": r + 1,
                    }
                )
        return out


def _fetch(source: ImageSource, i: int, what: str) -> torch.Tensor:
    x = source(i) if callable(source) else source[i]
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what} of input {i} must be a torch.Tensor, got {type(x).__name__}")
    return x


def _pair_views(images: torch.Tensor, chunk: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The two sides of a chunk of pairs: slices (no copy) for one pair, gathered batches otherwise."""
    if len(chunk) == 1:
        a, b = int(chunk[0, 0]), int(chunk[0, 1])
        return images[a : a + 1], images[b : b + 1]
    index = torch.as_tensor(chunk, device=images.device)
    return images[index[:, 0]], images[index[:, 1]]


def _scan(
    outputs: ImageSource,
    metric: torch.nn.Module,
    extractor: Callable[[torch.Tensor], torch.Tensor],
    feature_images: ImageSource | None,
    input_names: Sequence[str],
    n_methods: int | None,
    pair_batch: int,
    device: torch.device | str,
    progress: Callable[[int, int], None] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over the inputs: metric scores of every method pair, (P, n), and features, (n, d)."""
    n_inputs = len(input_names)
    pairs = method_pairs(n_methods) if n_methods is not None else None
    scores: np.ndarray | None = None
    feats: list[torch.Tensor] = []
    with torch.no_grad():
        for i, name in enumerate(input_names):
            images = _fetch(outputs, i, "outputs")
            if pairs is None:
                pairs = method_pairs(int(images.shape[0]) if images.ndim == 4 else 0)
            n_m = int(pairs.max()) + 1
            if images.ndim != 4 or images.shape[0] != n_m:
                raise InputError(
                    f"outputs of input {name!r} must have shape ({n_m}, C, H, W), got {tuple(images.shape)}"
                )
            if scores is None:
                scores = np.empty((len(pairs), n_inputs))
            images = images.to(device)
            for start in range(0, len(pairs), pair_batch):
                chunk = pairs[start : start + pair_batch]
                first, second = _pair_views(images, chunk)
                try:
                    values = metric(first, reference=second)
                except InputError as err:
                    raise InputError(f"input {name!r}: {err}") from None
                scores[start : start + len(chunk), i] = values.detach().double().cpu().numpy()
            x = images[0] if feature_images is None else _fetch(feature_images, i, "feature image").to(device)
            x = x.unsqueeze(0) if x.ndim == 3 else x
            if x.ndim != 4 or x.shape[0] != 1:
                raise InputError(
                    f"feature image of input {name!r} must be (C, H, W) or (1, C, H, W), got {tuple(x.shape)}"
                )
            feats.append(extractor(x).reshape(1, -1).double().cpu())
            if progress is not None:
                progress(i + 1, n_inputs)
    if len({f.shape[1] for f in feats}) > 1:
        raise InputError("the feature extractor returned vectors of different lengths for different inputs")
    if pairs is None or scores is None:
        raise InputError("MAD needs at least one input")
    return pairs, scores, torch.cat(feats).numpy()


def select_mad_pairs(
    outputs: ImageSource,
    metric: torch.nn.Module,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor],
    k: int = 16,
    lam: float = 0.1,
    *,
    n_inputs: int | None = None,
    feature_images: ImageSource | None = None,
    methods: Sequence[str] | None = None,
    inputs: Sequence[str] | None = None,
    distance: D2Distance = "mse",
    reduce: D2Reduce = "mean",
    pair_batch: int | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> MadPairs:
    """MAD competition over all method pairs: ``D1`` once per pair and input, features once per input.

    Each input is loaded once: its method pairs are scored with ``metric`` (in batches of
    ``pair_batch``) and its ``D2`` image goes through ``feature_extractor``; then
    :func:`mad_select` picks ``k`` inputs per pair.

    Args:
        outputs: per input, a (n_methods, C, H, W) float tensor in [0, 1] of the methods' outputs (same
            method order for every input): a (n_inputs, n_methods, C, H, W) tensor, a sequence of
            tensors (sizes may differ between inputs) or a loader ``i -> tensor`` (then give ``n_inputs``).
        metric: a full-reference metric module, e.g. ``perceptiq.create_metric("ssim")``.
            ``D1 = metric(f_a(x), reference=f_b(x))`` for each pair ``a < b``; a similarity is turned
            into a distance by :func:`similarity_to_distance` (from the metric's ``lower_is_better``
            and ``score_range``).
        feature_extractor: ``(1, C, H, W) -> (1, d)`` features for ``D2``, e.g.
            :class:`perceptiq.models.mad_features.SimpleFeatures` (the CLI's default).
        k, lam: inputs per pair (at most the number of inputs) and trade-off lambda.
        n_inputs: number of inputs, required with a loader.
        feature_images: the image of each input that feeds ``D2`` (one (C, H, W) image per input, same
            forms as ``outputs``). The released code uses the LR input; default (None): the first
            method's output.
        methods, inputs: names (default ``"0"``, ``"1"``, ...).
        distance, reduce: form of ``D2`` (:func:`feature_distances`, :func:`greedy_select`).
        pair_batch: method pairs scored per metric call; default 1 on the CPU (each side is then a view,
            no copy) and 16 on other devices (batched calls; bounds memory on large images).
        device: where the metric and the extractor run.
        progress: called as ``progress(done, total)`` after each input.
    """
    if not isinstance(metric, torch.nn.Module):
        raise InputError(
            f"metric must be a metric module (e.g. perceptiq.create_metric(name)), "
            f"got {type(metric).__name__}"
        )
    if not callable(feature_extractor):
        raise InputError(f"feature_extractor must be callable, got {type(feature_extractor).__name__}")
    if n_inputs is None:
        if callable(outputs):
            raise InputError("n_inputs is required when outputs is a loader function")
        n_inputs = len(outputs)
    if n_inputs < 1:
        raise InputError("MAD needs at least one input")
    if pair_batch is None:
        pair_batch = 1 if torch.device(device).type == "cpu" else 16
    if pair_batch < 1:
        raise InputError(f"pair_batch must be >= 1, got {pair_batch}")
    input_names = tuple(inputs) if inputs is not None else tuple(str(i) for i in range(n_inputs))
    if len(input_names) != n_inputs:
        raise InputError(f"{len(input_names)} input names for {n_inputs} inputs")
    name = str(getattr(metric, "name", "") or type(metric).__name__)
    if getattr(metric, "kind", "FR") != "FR":
        raise InputError(f"metric {name!r} is no-reference; MAD needs a full-reference metric for D1")
    metric = metric.to(device).eval()
    extractor = feature_extractor
    if isinstance(extractor, torch.nn.Module):
        extractor = extractor.to(device).eval()

    n_methods = None if methods is None else len(methods)
    pairs, raw, feats = _scan(
        outputs, metric, extractor, feature_images, input_names, n_methods, pair_batch, device, progress
    )
    method_names = tuple(methods) if methods is not None else tuple(str(m) for m in range(pairs.max() + 1))
    if np.isnan(raw).any():
        p, i = np.argwhere(np.isnan(raw))[0]
        a, b = pairs[p]
        raise InputError(
            f"metric {name!r} is NaN for input {input_names[i]!r}, "
            f"methods {method_names[a]!r} vs {method_names[b]!r}"
        )
    lower = bool(getattr(metric, "lower_is_better", True))
    d1 = similarity_to_distance(raw, lower, getattr(metric, "score_range", None))
    selection = mad_select(d1, feats, k, lam, distance=distance, reduce=reduce)
    return MadPairs(
        methods=method_names,
        inputs=input_names,
        pairs=pairs,
        d1=d1,
        selection=selection,
        metric=name,
        lower_is_better=lower,
        options={"k": int(k), "lambda": float(lam), "distance": distance, "reduce": reduce},
    )
