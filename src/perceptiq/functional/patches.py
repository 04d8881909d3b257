"""High-resolution input handling: whole image, grid tiles, random patches, resize to a patch budget.

Metrics and learned models score large images (up to 8K, 7680 x 4320) through an
:class:`InputPolicy`; :func:`apply_policy` cuts the crops, scores them in chunks of at most
``max_batch`` crops per call of the score function (so only one chunk of crops exists at a time;
the crops of a chunk are copied from views of the input), and aggregates the per-crop scores into
one score per image. A full-reference score function gets the same crops of the image and of the
reference.

Conventions: images are (B, C, H, W) or (C, H, W) tensors on any device; a crop is a :class:`Box`
``(top, left, height, width)`` in pixels; a score function maps a (N, C, h, w) batch (and, for
full-reference scoring, a reference batch of the same shape) to N scores, shape (N,).

Aggregation (``aggregation=``): ``"mean"`` averages the crop scores; ``"area"`` weights each crop by
its number of pixels, so that with non-overlapping tiles cut at the border (``border="crop"``) the
aggregate of a per-pixel mean equals the mean over the whole image.

The patch-budget resize follows the NaFlex idea (Tschannen et al., "SigLIP 2", 2025, sec. 2.4):
keep the aspect ratio and scale the image so that its number of ``p x p`` patches,
``ceil(H s / p) * ceil(W s / p)``, stays within a budget ``N``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from perceptiq.errors import InputError
from perceptiq.functional._checks import as_batch

__all__ = [
    "Box",
    "InputPolicy",
    "grid_starts",
    "grid_boxes",
    "random_boxes",
    "spread_boxes",
    "budget_scale",
    "budget_size",
    "resize_to_budget",
    "crop_boxes",
    "aggregate_scores",
    "box_weights",
    "policy_boxes",
    "score_boxes",
    "apply_policy",
    "IMAGE_VIEWS",
    "image_view",
]

Mode = Literal["full", "tiles", "random_patches", "resize_budget"]
Border = Literal["shift", "crop"]
Aggregation = Literal["mean", "area"]
Interpolation = Literal["bilinear", "bicubic", "area"]
Size = int | tuple[int, int]
ScoreFn = Callable[..., torch.Tensor]

IMAGE_VIEWS = ("full", "hflip", "crop_tl", "crop_tr", "crop_bl", "crop_br")


class Box(NamedTuple):
    """A crop ``image[..., top:top + height, left:left + width]`` in pixels."""

    top: int
    left: int
    height: int
    width: int


def _pair(value: Size, what: str) -> tuple[int, int]:
    pair = (
        (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, tuple | list) else ()
    )
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise InputError(f"{what} must be a positive int or a pair (height, width) of them, got {value!r}")
    return pair  # type: ignore[return-value]


def grid_starts(length: int, tile: int, stride: int, border: Border = "shift") -> list[int]:
    """Start offsets of tiles of size ``tile`` every ``stride`` pixels covering ``[0, length)``.

    With ``border="shift"`` the last tile is moved back to end at the border (all tiles are full
    size, the last one may overlap more); with ``border="crop"`` the last tile starts on the stride
    grid and is cut at the border. A length not above ``tile`` gives one tile at 0.
    """
    if length < 1 or tile < 1 or not 1 <= stride <= tile:
        raise InputError(
            f"need length >= 1, tile >= 1 and 1 <= stride <= tile; got {length}, {tile}, {stride}"
        )
    if length <= tile:
        return [0]
    if border == "shift":
        starts = list(range(0, length - tile + 1, stride))
        if starts[-1] + tile < length:
            starts.append(length - tile)
        return starts
    if border == "crop":
        starts = [0]
        while starts[-1] + tile < length:
            starts.append(starts[-1] + stride)
        return starts
    raise InputError(f"border must be 'shift' or 'crop', got {border!r}")


def grid_boxes(
    height: int, width: int, tile_size: Size, stride: Size | None = None, border: Border = "shift"
) -> list[Box]:
    """Tiles covering every pixel of a ``height x width`` image, row by row.

    Args:
        height, width: image size.
        tile_size: tile side, or (tile height, tile width); clipped to the image size.
        stride: step between tile starts (default: the tile size, i.e. no overlap); at most the tile size.
        border: ``"shift"`` or ``"crop"`` for the last row/column, see :func:`grid_starts`.
    """
    if border not in ("shift", "crop"):
        raise InputError(f"border must be 'shift' or 'crop', got {border!r}")
    th, tw = _pair(tile_size, "tile_size")
    sh, sw = _pair(stride if stride is not None else (th, tw), "stride")
    if sh > th or sw > tw:
        raise InputError(f"stride {stride!r} exceeds tile_size {tile_size!r}: tiles would leave gaps")
    th, tw = min(th, height), min(tw, width)
    sh, sw = min(sh, th), min(sw, tw)
    rows = grid_starts(height, th, sh, border)
    cols = grid_starts(width, tw, sw, border)
    return [Box(t, left, min(th, height - t), min(tw, width - left)) for t in rows for left in cols]


def spread_boxes(height: int, width: int, size: int, per_side: int) -> list[Box]:
    """``per_side`` x ``per_side`` crops of ``size`` x ``size`` (clipped to the image) spread evenly from
    corner to corner, row by row: starts ``round(i (L - size) / (per_side - 1))``; overlapping on small
    images, apart on large ones. A side not above ``size`` gives one start, 0."""
    if size < 1 or per_side < 1:
        raise InputError(f"need size >= 1 and per_side >= 1; got {size}, {per_side}")
    th, tw = min(size, height), min(size, width)

    def starts(length: int, tile: int) -> list[int]:
        if length <= tile or per_side == 1:
            return [(length - tile) // 2] if per_side == 1 else [0]
        return sorted({round(i * (length - tile) / (per_side - 1)) for i in range(per_side)})

    return [Box(t, left, th, tw) for t in starts(height, th) for left in starts(width, tw)]


def random_boxes(
    height: int, width: int, patch_size: Size, count: int, generator: torch.Generator
) -> list[Box]:
    """``count`` patches at uniformly random positions, drawn from ``generator`` (never the global RNG).

    The patch size is clipped to the image size. Tops are drawn first, then lefts, each with
    ``torch.randint`` on the generator, so a generator seeded the same way gives the same patches.
    """
    ph, pw = _pair(patch_size, "patch_size")
    if not isinstance(generator, torch.Generator):
        raise InputError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if count < 1:
        raise InputError(f"count must be >= 1, got {count}")
    ph, pw = min(ph, height), min(pw, width)
    tops = torch.randint(0, height - ph + 1, (count,), generator=generator)
    lefts = torch.randint(0, width - pw + 1, (count,), generator=generator)
    return [Box(int(t), int(left), ph, pw) for t, left in zip(tops, lefts, strict=True)]


def budget_scale(
    height: int, width: int, patch_size: int, max_patches: int, *, allow_upscale: bool = False
) -> float:
    """Largest scale ``s`` with ``ceil(height s / p) * ceil(width s / p) <= max_patches``.

    The patch count is a non-decreasing step function of ``s``, so its feasible set is an interval
    ``(0, s*]`` whose end lies where ``height s / p`` or ``width s / p`` is a whole number. ``s*`` is
    therefore the larger of ``a p / height`` and ``b p / width``, where ``a`` (``b``) is the largest
    number of patch rows (columns) whose matching number of columns (rows) still fits the budget;
    both are found by bisection in exact integer arithmetic. ``s*`` is capped at 1 unless
    ``allow_upscale``.
    """
    if min(height, width, patch_size, max_patches) < 1:
        raise InputError(
            f"height, width, patch_size and max_patches must be >= 1; got {height}, {width}, "
            f"{patch_size}, {max_patches}"
        )
    candidates = range(1, max_patches + 1)
    a = bisect.bisect_right(candidates, max_patches, key=lambda r: r * -(-width * r // height))
    b = bisect.bisect_right(candidates, max_patches, key=lambda c: c * -(-height * c // width))
    scale = max(a * patch_size / height, b * patch_size / width)
    return scale if allow_upscale else min(scale, 1.0)


def budget_size(
    height: int, width: int, patch_size: int, max_patches: int, *, allow_upscale: bool = False
) -> tuple[int, int]:
    """Output (height, width) of the patch-budget resize: ``round(height s*)``, ``round(width s*)``.

    Rounding cannot exceed ``ceil`` of the exact size, which is at most a whole number of patches,
    so the rounded size keeps the patch count within ``max_patches``; the aspect ratio is kept to
    within one pixel.
    """
    s = budget_scale(height, width, patch_size, max_patches, allow_upscale=allow_upscale)
    if s == 1.0:
        return height, width
    return max(1, math.floor(height * s + 0.5)), max(1, math.floor(width * s + 0.5))


def resize_to_budget(
    image: torch.Tensor,
    patch_size: int,
    max_patches: int,
    *,
    allow_upscale: bool = False,
    interpolation: Interpolation = "bicubic",
) -> torch.Tensor:
    """Resize (B, C, H, W) images to :func:`budget_size`, antialiased, values clamped to [0, 1].

    Returns the input itself when no resize is needed.
    """
    x = as_batch(image, "image")
    h, w = budget_size(x.shape[-2], x.shape[-1], patch_size, max_patches, allow_upscale=allow_upscale)
    if (h, w) == tuple(x.shape[-2:]):
        return x
    if interpolation == "area":
        out = F.interpolate(x, size=(h, w), mode="area")
    elif interpolation in ("bilinear", "bicubic"):
        out = F.interpolate(x, size=(h, w), mode=interpolation, align_corners=False, antialias=True)
    else:
        raise InputError(f"interpolation must be 'bilinear', 'bicubic' or 'area', got {interpolation!r}")
    return out.clamp(0.0, 1.0)


def crop_boxes(image: torch.Tensor, boxes: Sequence[Box]) -> torch.Tensor:
    """Stack equal-size crops of a (B, C, H, W) batch into (len(boxes) * B, C, h, w), box-major.

    Row ``j * B + i`` is box ``j`` of image ``i``. Only these crops are copied (each from a view of
    the input, into one new buffer), so the input may be an expanded or otherwise strided tensor.
    Gradients flow back to ``image``.
    """
    if not boxes:
        raise InputError("crop_boxes needs at least one box")
    h, w = boxes[0].height, boxes[0].width
    if any((b.height, b.width) != (h, w) for b in boxes):
        raise InputError("crop_boxes needs boxes of one size; group them by size first")
    crops = image.new_empty((len(boxes), *image.shape[:-2], h, w))
    for j, b in enumerate(boxes):
        crops[j].copy_(image[..., b.top : b.top + h, b.left : b.left + w])
    return crops.reshape(-1, *crops.shape[2:])


def box_weights(boxes: Sequence[Box], aggregation: Aggregation) -> torch.Tensor | None:
    """Weights of :func:`aggregate_scores`: None for ``"mean"``, pixel counts for ``"area"``."""
    if aggregation == "mean":
        return None
    if aggregation == "area":
        return torch.tensor([b.height * b.width for b in boxes], dtype=torch.float64)
    raise InputError(f"aggregation must be 'mean' or 'area', got {aggregation!r}")


def aggregate_scores(scores: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Combine per-crop scores (n_crops, B) into per-image scores (B,).

    ``weights`` (n_crops,) gives the weighted mean ``sum_j w_j s_j / sum_j w_j``; None the plain mean.
    """
    if scores.ndim != 2 or scores.shape[0] < 1:
        raise InputError(f"scores must have shape (n_crops, B) with n_crops >= 1, got {tuple(scores.shape)}")
    if weights is None:
        return scores.mean(dim=0)
    if weights.shape != scores.shape[:1] or bool((weights < 0).any()) or float(weights.sum()) <= 0:
        raise InputError(f"weights must be {scores.shape[0]} non-negative values with a positive sum")
    w = weights.to(device=scores.device, dtype=scores.dtype)
    return (scores * w[:, None]).sum(dim=0) / w.sum()


@dataclass(frozen=True)
class InputPolicy:
    """How to feed an image of any size to a score function.

    Attributes:
        mode: ``"full"`` (the whole image), ``"tiles"`` (grid covering every pixel),
            ``"random_patches"`` (``num_patches`` crops at seeded random positions) or
            ``"resize_budget"`` (aspect-preserving resize to at most ``max_patches`` patches of
            ``patch_size``, then the whole image).
        tile_size: side, or (height, width), of grid tiles and random patches.
        stride: step between grid tiles (default ``tile_size``: no overlap).
        border: last grid row/column ``"shift"``-ed back inside the image or ``"crop"``-ped at the border.
        num_patches: number of random patches.
        seed: seed of the ``torch.Generator`` drawing random patches (same seed, same patches).
        aggregation: ``"mean"`` or ``"area"``-weighted mean of crop scores.
        patch_size: ``p`` of the patch-budget resize.
        max_patches: ``N`` of the patch-budget resize.
        allow_upscale: let the budget resize enlarge small images.
        interpolation: resampling of the budget resize.
    """

    mode: Mode = "full"
    tile_size: Size = 224
    stride: Size | None = None
    border: Border = "shift"
    num_patches: int = 16
    seed: int = 0
    aggregation: Aggregation = "mean"
    patch_size: int = 16
    max_patches: int = 1024
    allow_upscale: bool = False
    interpolation: Interpolation = "bicubic"

    def __post_init__(self) -> None:
        choices = {
            "mode": ("full", "tiles", "random_patches", "resize_budget"),
            "border": ("shift", "crop"),
            "aggregation": ("mean", "area"),
            "interpolation": ("bilinear", "bicubic", "area"),
        }
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise InputError(
                    f"InputPolicy.{field} must be one of {allowed}, got {getattr(self, field)!r}"
                )
        th, tw = _pair(self.tile_size, "InputPolicy.tile_size")
        if self.stride is not None:
            sh, sw = _pair(self.stride, "InputPolicy.stride")
            if sh > th or sw > tw:
                raise InputError(f"InputPolicy.stride {self.stride!r} exceeds tile_size {self.tile_size!r}")
        for field in ("num_patches", "patch_size", "max_patches"):
            if getattr(self, field) < 1:
                raise InputError(f"InputPolicy.{field} must be >= 1, got {getattr(self, field)!r}")


def policy_boxes(height: int, width: int, policy: InputPolicy) -> list[Box]:
    """The crops that ``policy`` cuts from a ``height x width`` image (one full box for other modes)."""
    if policy.mode == "tiles":
        return grid_boxes(height, width, policy.tile_size, policy.stride, policy.border)
    if policy.mode == "random_patches":
        generator = torch.Generator().manual_seed(policy.seed)
        return random_boxes(height, width, policy.tile_size, policy.num_patches, generator)
    return [Box(0, 0, height, width)]


def _call(score_fn: ScoreFn, crops: torch.Tensor, ref_crops: torch.Tensor | None) -> torch.Tensor:
    out = score_fn(crops) if ref_crops is None else score_fn(crops, ref_crops)
    n = crops.shape[0]
    if not isinstance(out, torch.Tensor) or out.numel() != n or out.ndim > 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InputError(
            f"score_fn must return {n} scores, shape ({n},), for a batch of {n} crops; got {shape}"
        )
    return out.reshape(n)


def _scoring_inputs(
    image: torch.Tensor, reference: torch.Tensor | None, max_batch: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``image`` (and ``reference``, same shape) as ``(B, C, H, W)`` batches; ``max_batch`` checked."""
    x = as_batch(image, "image")
    ref = None if reference is None else as_batch(reference, "reference")
    if ref is not None and ref.shape != x.shape:
        raise InputError(f"image shape {tuple(x.shape)} differs from reference shape {tuple(ref.shape)}")
    if max_batch < 1:
        raise InputError(f"max_batch must be >= 1, got {max_batch}")
    return x, ref


def score_boxes(
    score_fn: ScoreFn,
    image: torch.Tensor,
    boxes: Sequence[Box],
    *,
    reference: torch.Tensor | None = None,
    max_batch: int = 32,
) -> torch.Tensor:
    """Score every box of every image, at most ``max(max_batch, B)`` crops per ``score_fn`` call.

    Boxes are grouped by size (a cropped border gives up to four sizes) and cut chunk by chunk,
    so at most one chunk of crops is held at a time.

    Returns:
        Scores (len(boxes), B) in the order of ``boxes``.
    """
    x, ref = _scoring_inputs(image, reference, max_batch)
    if not boxes:
        raise InputError("score_boxes needs at least one box")
    batch = x.shape[0]
    per_call = max(1, max_batch // batch)
    groups: dict[tuple[int, int], list[int]] = {}
    for j, b in enumerate(boxes):
        groups.setdefault((b.height, b.width), []).append(j)
    # One result buffer, filled in place: keeping per-chunk score tensors alive between the large,
    # short-lived crop buffers fragments the C heap so that freed crop memory is not reused.
    result: torch.Tensor | None = None
    for members in groups.values():
        for start in range(0, len(members), per_call):
            idx = members[start : start + per_call]
            chunk = [boxes[j] for j in idx]
            ref_crops = None if ref is None else crop_boxes(ref, chunk)
            scores = _call(score_fn, crop_boxes(x, chunk), ref_crops).reshape(len(idx), batch)
            if result is None:
                result = scores.new_empty((len(boxes), batch))
            result[idx] = scores.to(result.dtype)
    assert result is not None
    return result


def _policy_resize(x: torch.Tensor, policy: InputPolicy) -> torch.Tensor:
    return resize_to_budget(
        x,
        policy.patch_size,
        policy.max_patches,
        allow_upscale=policy.allow_upscale,
        interpolation=policy.interpolation,
    )


def apply_policy(
    score_fn: ScoreFn,
    image: torch.Tensor,
    policy: InputPolicy,
    *,
    reference: torch.Tensor | None = None,
    max_batch: int = 32,
) -> torch.Tensor:
    """Score (B, C, H, W) images under ``policy``; returns one score per image, shape (B,).

    Args:
        score_fn: ``score_fn(crops)`` (no-reference) or ``score_fn(crops, ref_crops)`` (full-reference
            when ``reference`` is given), mapping N crops to N scores.
        image: (B, C, H, W) or (C, H, W).
        policy: the :class:`InputPolicy`.
        reference: reference images of the same shape; the same crops are cut from both.
        max_batch: crops per ``score_fn`` call (at least one crop of each image per call); in
            ``"full"`` and ``"resize_budget"`` modes the batch is split into chunks of ``max_batch``.

    Example:
        >>> x = torch.rand(1, 3, 300, 500)
        >>> policy = InputPolicy(mode="tiles", tile_size=100, aggregation="area")
        >>> s = apply_policy(lambda c: c.mean(dim=(1, 2, 3)), x, policy)
        >>> bool(torch.allclose(s, x.mean(dim=(1, 2, 3))))
        True
    """
    x, ref = _scoring_inputs(image, reference, max_batch)
    if policy.mode in ("full", "resize_budget"):
        if policy.mode == "resize_budget":
            x = _policy_resize(x, policy)
            ref = None if ref is None else _policy_resize(ref, policy)
        parts = [
            _call(score_fn, x[i : i + max_batch], None if ref is None else ref[i : i + max_batch])
            for i in range(0, x.shape[0], max_batch)
        ]
        return torch.cat(parts)
    boxes = policy_boxes(x.shape[-2], x.shape[-1], policy)
    scores = score_boxes(score_fn, x, boxes, reference=ref, max_batch=max_batch)
    return aggregate_scores(scores, box_weights(boxes, policy.aggregation))


def image_view(images: torch.Tensor, view: str, crop_fraction: float = 0.9) -> torch.Tensor:
    """One fixed view of (..., H, W) images, one of :data:`IMAGE_VIEWS`.

    ``full`` is the image itself, ``hflip`` its mirror image, and ``crop_tl/tr/bl/br`` the square-ish
    corner crops (top-left, top-right, bottom-left, bottom-right) of ``round(crop_fraction * H)`` x
    ``round(crop_fraction * W)`` pixels: the deterministic views used to augment, and to average over
    at test time, models whose descriptor is fixed (the ten-crop idea of Krizhevsky et al. 2012,
    without rescaling, so the views keep the image's scale).
    """
    if view == "full":
        return images
    if view == "hflip":
        return images.flip(-1)
    corners = {"crop_tl": (0, 0), "crop_tr": (0, 1), "crop_bl": (1, 0), "crop_br": (1, 1)}
    if view not in corners:
        raise InputError(f"unknown image view {view!r}; choose from {', '.join(IMAGE_VIEWS)}")
    if not 0.0 < crop_fraction <= 1.0:
        raise InputError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    h, w = images.shape[-2:]
    ch, cw = max(1, round(crop_fraction * h)), max(1, round(crop_fraction * w))
    bottom, right = corners[view]
    top, left = bottom * (h - ch), right * (w - cw)
    return images[..., top : top + ch, left : left + cw]
