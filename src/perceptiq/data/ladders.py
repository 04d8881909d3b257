"""Severity ladders: graded distortions of pristine images, ranked pairs, pseudo-MOS, a dataset.

Each family of :data:`SEVERITIES` has five levels of its distortion's parameter, mildest first (see
:mod:`perceptiq.data.distortions` for what each parameter means and which way it is stronger).

Why the order is known:

- exact for any image (the error of every pixel, hence MSE/PSNR, cannot shrink along the ladder):
  additive noise, colour noise, hallucinated texture and over-sharpening scale one fixed field (same
  seed at every level) and clipping only shortens a step; contrast and saturation blend linearly
  towards a fixed target; brightness shifts further; ``quantize``'s grids are nested (33, 17, 9, 5, 3
  levels: each grid is a subset of the previous one); ``pixelate``'s tilings are nested (2, 4, 8, 16,
  32 px), and tile averaging is the orthogonal projection onto nested subspaces;
- checked on photos for the rest (blurs, Poisson noise, JPEG, JPEG 2000, down-up, ringing): PSNR
  against the pristine image falls at every step on each of the 173 photos of the
  ``pristine_natural`` set (Kodak, Set5/14, BSD100, McMaster, Urban100 subset); the smallest step is
  0.19 dB (bilinear down-up x6 -> x8), the mean PSNR of the mildest / strongest levels is 33.5 / 21.6
  dB for Gaussian blur, 33.6 / 23.2 dB for JPEG and 28.7 / 22.3 dB for bicubic down-up.

Saturation leaves grey images (R = G = B) unchanged; :func:`ranked_pairs` drops pairs that no 8-bit
display can tell apart, but :class:`SyntheticQualityDataset` does not look at pixels, so leave
``saturation`` out of ``names`` for grey sources.

Conventions:

- severity ``s`` is an integer, 0 for the pristine image and ``1..levels`` for the distorted ones;
- pseudo-MOS ``q = 5 - 4 s / levels`` (:func:`pseudo_mos`): 5 for the pristine image, 1 for the
  strongest level, on the 1..5 scale of absolute category rating (ITU-T P.910). It orders images only
  within one pristine image and one family: severities of different families are not calibrated
  against each other;
- ranked pairs ``(a, b, label)``: ``label = 1`` when ``a`` is better than ``b`` (lower severity),
  ``0`` when it is worse; pairs across families get no label unless asked for (:func:`pair_label`);
- seeds: the random draws of family ``f`` on pristine image ``g`` come from a generator seeded with
  :func:`derive_seed` ``(seed, g, f)``, the same for all severities of that family (one noise field,
  one motion direction, scaled by the level), so the severity is the only thing that changes along a
  ladder, and the same seed always gives the same images.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from perceptiq.data.distortions import DISTORTIONS, DistortionUnavailableError, resolve_name
from perceptiq.data.manifest import read_manifest
from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images import find_images, read_image

__all__ = [
    "MAX_LEVELS",
    "SEVERITIES",
    "PRISTINE",
    "INDISTINGUISHABLE",
    "CrossType",
    "pseudo_mos",
    "severity_indices",
    "derive_seed",
    "pair_label",
    "DistortedImage",
    "RankedPair",
    "DistortionGenerator",
    "ranked_pairs",
    "SyntheticQualityDataset",
    "GroupBatchSampler",
]

MAX_LEVELS = 5
INDISTINGUISHABLE = 0.5 / 255
"""Largest absolute difference (half an 8-bit level) below which two versions count as the same image."""
PRISTINE = "pristine"
CrossType = Literal["skip", "unlabelled", "pseudo_mos"]

SEVERITIES: dict[str, tuple[float, ...]] = {
    "gaussian_blur": (0.6, 1.2, 2.0, 3.2, 5.0),
    "motion_blur": (3, 5, 9, 15, 25),
    "defocus_blur": (1, 2, 3, 5, 8),
    "gaussian_noise": (0.01, 0.025, 0.05, 0.1, 0.2),
    "poisson_noise": (300, 100, 30, 10, 3),
    "color_noise": (0.01, 0.025, 0.05, 0.1, 0.2),
    "luminance_noise": (0.01, 0.025, 0.05, 0.1, 0.2),
    "jpeg": (75, 40, 20, 10, 5),
    "jpeg2000": (16, 32, 64, 128, 256),
    "contrast": (0.85, 0.7, 0.55, 0.4, 0.25),
    "brightness": (0.05, 0.1, 0.15, 0.25, 0.35),
    "saturation": (0.8, 0.6, 0.4, 0.2, 0.0),
    "quantize": (33, 17, 9, 5, 3),
    "pixelate": (2, 4, 8, 16, 32),
    "downup_bicubic": (2, 3, 4, 6, 8),
    "downup_bilinear": (2, 3, 4, 6, 8),
    "downup_nearest": (2, 3, 4, 6, 8),
    "downup_lanczos": (2, 3, 4, 6, 8),
    "oversharpen": (0.5, 1.0, 2.0, 3.0, 5.0),
    "ringing": (0.7, 0.5, 0.35, 0.25, 0.15),
    "hallucinated_texture": (0.02, 0.04, 0.07, 0.1, 0.15),
}
"""Five levels per family, mildest first; the parameter and its direction are those of ``DISTORTIONS``."""


def pseudo_mos(severity: int, levels: int = MAX_LEVELS) -> float:
    """Pseudo-MOS ``5 - 4 severity / levels`` in [1, 5]: 5 for the pristine image (severity 0).

    Example:
        >>> pseudo_mos(0), pseudo_mos(1), pseudo_mos(5), pseudo_mos(2, levels=4)
        (5.0, 4.2, 1.0, 3.0)
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise InputError(f"levels must be a positive integer, got {levels!r}")
    return 5.0 - 4.0 * _check_severity(severity, 0, levels) / levels


def _check_severity(severity: int, lowest: int, levels: int) -> int:
    if (
        isinstance(severity, bool)
        or not isinstance(severity, int | np.integer)
        or not lowest <= severity <= levels
    ):
        raise InputError(f"severity must be an integer in [{lowest}, {levels}], got {severity!r}")
    return int(severity)


def _check_cross_type(cross_type: str) -> None:
    if cross_type not in ("skip", "unlabelled", "pseudo_mos"):
        raise InputError(f"cross_type must be 'skip', 'unlabelled' or 'pseudo_mos', got {cross_type!r}")


def severity_indices(levels: int) -> tuple[int, ...]:
    """Which of the five ladder entries (0-based) severities ``1..levels`` use: ``ceil(5 s / levels) - 1``.

    Severity ``s`` of ``levels`` sits at the same fraction ``s / levels`` of the five-level ladder, and
    the strongest severity is always the strongest level.

    Example:
        >>> severity_indices(5), severity_indices(3), severity_indices(1)
        ((0, 1, 2, 3, 4), (1, 3, 4), (4,))
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
        raise InputError(f"levels must be an integer in [1, {MAX_LEVELS}], got {levels!r}")
    return tuple(-(-MAX_LEVELS * s // levels) - 1 for s in range(1, levels + 1))


def derive_seed(*keys: int | str) -> int:
    """A 63-bit seed from integers and strings (strings by CRC-32), mixed by ``numpy.random.SeedSequence``.

    Example:
        >>> derive_seed(0, 3, "gaussian_noise") == derive_seed(0, 3, "gaussian_noise")
        True
    """
    entropy = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    if any(e < 0 for e in entropy):
        raise InputError(f"seed keys must be non-negative integers or strings, got {keys!r}")
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def pair_label(
    a: tuple[str, int], b: tuple[str, int], cross_type: CrossType = "skip"
) -> tuple[bool, float | None]:
    """Whether the pair ``(a, b)`` of ``(family, severity)`` is emitted, and its label (1: ``a`` better).

    The pristine image (family :data:`PRISTINE`, severity 0) is better than every distortion of it.
    Within a family the lower severity is better. Across families ``cross_type`` decides: ``"skip"``
    drops the pair, ``"unlabelled"`` emits it with label ``None``, ``"pseudo_mos"`` labels it by
    pseudo-MOS (1, 0, or 0.5 for equal severities).

    Example:
        >>> pair_label(("jpeg", 1), ("jpeg", 4)), pair_label(("jpeg", 3), ("pristine", 0))
        ((True, 1.0), (True, 0.0))
        >>> pair_label(("jpeg", 1), ("ringing", 4)), pair_label(("jpeg", 2), ("ringing", 2), "pseudo_mos")
        ((False, None), (True, 0.5))
    """
    _check_cross_type(cross_type)
    (name_a, sev_a), (name_b, sev_b) = a, b
    comparable = name_a == name_b or PRISTINE in (name_a, name_b)
    if not comparable and cross_type == "skip":
        return False, None
    if not comparable and cross_type == "unlabelled":
        return True, None
    if sev_a == sev_b:
        return True, 0.5
    return True, 1.0 if sev_a < sev_b else 0.0


@dataclass(frozen=True)
class DistortedImage:
    """A version ``(1, C, H, W)`` of a pristine image: family, severity, parameter, group, pseudo-MOS."""

    image: torch.Tensor
    name: str
    severity: int
    level: float | None
    group: int
    mos: float


@dataclass(frozen=True)
class RankedPair:
    """Two versions of one pristine image; ``label`` is 1 if ``a`` is better, 0 if worse, None if unknown."""

    a: DistortedImage
    b: DistortedImage
    label: float | None


class DistortionGenerator:
    """Yields the graded distortions of a pristine image, seeded per (seed, group, family).

    Args:
        names: families of :data:`SEVERITIES` (aliases of ``DISTORTIONS`` accepted); default: all
            families available in this installation (JPEG 2000 only with OpenJPEG).
        levels: severities per family, 1..5, taken evenly from the five-level ladders
            (:func:`severity_indices`).
        seed: base seed.
        include_pristine: also yield the pristine image itself (severity 0, pseudo-MOS 5) first.

    Example:
        >>> gen = DistortionGenerator(names=["jpeg", "gaussian_noise"], levels=2, seed=1)
        >>> [(d.name, d.severity, d.level, d.mos) for d in gen(torch.rand(1, 3, 16, 16), group=0)][:3]
        [('jpeg', 1, 20.0, 3.0), ('jpeg', 2, 5.0, 1.0), ('gaussian_noise', 1, 0.05, 3.0)]
    """

    def __init__(
        self,
        names: Iterable[str] | None = None,
        levels: int = MAX_LEVELS,
        seed: int = 0,
        *,
        include_pristine: bool = False,
    ) -> None:
        if names is None:
            chosen = [n for n in SEVERITIES if DISTORTIONS[n].available()]
        else:
            chosen = [resolve_name(n) for n in names]
            for name in chosen:
                if name not in SEVERITIES:
                    raise InputError(
                        f"distortion {name!r} has no severity ladder; use one of {', '.join(SEVERITIES)}"
                    )
                if not DISTORTIONS[name].available():
                    raise DistortionUnavailableError(
                        f"distortion {name!r} is unavailable in this installation"
                    )
        if not chosen or len(set(chosen)) != len(chosen):
            raise InputError(f"names must be distinct families, at least one, got {chosen!r}")
        self.names = tuple(chosen)
        self.levels = levels
        self.seed = int(seed)
        self.include_pristine = include_pristine
        self._indices = severity_indices(levels)

    def variants(self) -> list[tuple[str, int, float | None]]:
        """``(family, severity, level)`` of every image yielded per pristine image, in order."""
        out: list[tuple[str, int, float | None]] = [(PRISTINE, 0, None)] if self.include_pristine else []
        for name in self.names:
            for severity, index in enumerate(self._indices, start=1):
                out.append((name, severity, float(SEVERITIES[name][index])))
        return out

    def distort(self, image: torch.Tensor, name: str, severity: int, group: int = 0) -> torch.Tensor:
        """``image`` with family ``name`` at ``severity`` (1..levels), seeded by ``(seed, group, name)``."""
        if name == PRISTINE:
            return image.clone()
        if name not in self.names:
            raise InputError(f"distortion {name!r} is not one of this generator's families {self.names}")
        level = float(SEVERITIES[name][self._indices[_check_severity(severity, 1, self.levels) - 1]])
        generator = torch.Generator().manual_seed(derive_seed(self.seed, group, name))
        return DISTORTIONS[name](image, level, generator)

    def __call__(self, image: torch.Tensor, group: int = 0) -> Iterator[DistortedImage]:
        """Yield the pristine image (if asked), then each family at each severity, as DistortedImage."""
        batch = image if image.ndim == 4 else image.unsqueeze(0)
        if batch.shape[0] != 1:
            raise InputError(f"DistortionGenerator takes one image (1, C, H, W), got {tuple(image.shape)}")
        for name, severity, level in self.variants():
            yield DistortedImage(
                image=self.distort(batch, name, severity, group),
                name=name,
                severity=severity,
                level=level,
                group=group,
                mos=pseudo_mos(severity, self.levels),
            )


def ranked_pairs(
    pristine_images: Iterable[torch.Tensor],
    names: Iterable[str] | None = None,
    levels: int = MAX_LEVELS,
    seed: int = 0,
    *,
    include_pristine: bool = True,
    cross_type: CrossType = "skip",
    shuffle: bool = True,
) -> Iterator[RankedPair]:
    """Pairs of versions of each pristine image with their preference label (:func:`pair_label`).

    Image ``g`` of ``pristine_images`` (each ``(1, C, H, W)`` or ``(C, H, W)``) is group ``g``; its
    versions come from ``DistortionGenerator(names, levels, seed, include_pristine=...)`` and every
    unordered pair of them that :func:`pair_label` keeps is yielded once, lazily, one group at a time.
    With ``shuffle`` each pair's order is swapped with probability 1/2 (seeded by
    ``derive_seed(seed, g, "pairs")``) so labels 1 and 0 are balanced; without it ``a`` comes first in
    generation order (the pristine image, then each family from mild to strong). Pairs whose images
    differ by less than half an 8-bit level everywhere (:data:`INDISTINGUISHABLE`; e.g. any saturation
    change of a grey image) carry no preference and are dropped.
    """
    generator = DistortionGenerator(names, levels, seed, include_pristine=include_pristine)
    _check_cross_type(cross_type)
    for group, image in enumerate(pristine_images):
        versions = list(generator(image, group))
        rng = np.random.default_rng(derive_seed(seed, group, "pairs"))
        for i, first in enumerate(versions):
            for second in versions[i + 1 :]:
                keep, label = pair_label(
                    (first.name, first.severity), (second.name, second.severity), cross_type
                )
                if not keep or _indistinguishable(first.image, second.image):
                    continue
                if shuffle and rng.random() < 0.5:
                    yield RankedPair(second, first, None if label is None else 1.0 - label)
                else:
                    yield RankedPair(first, second, label)


def _indistinguishable(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((a - b).abs().max() < INDISTINGUISHABLE)


_MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet", ".pq")


def _pristine_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(source, str | Path) and Path(source).suffix.lower() in _MANIFEST_SUFFIXES:
        files = [Path(v) for v in read_manifest(source)["image"]]
    else:
        files = find_images(source)
    if not files:
        raise DataFileError(source, "no pristine images found")
    return files


class SyntheticQualityDataset(Dataset):
    """Distorted crops of pristine images with pseudo-MOS and group id, made on the fly.

    Item ``i`` is version ``i % V`` of pristine image ``g = i // V`` (``V`` versions per image: the
    pristine crop if ``include_pristine``, then every family at every severity, as
    :meth:`DistortionGenerator.variants`). It returns ``(crop (C, h, w) float32, pseudo-MOS float32
    scalar, g)``. All versions of one image share the same crop window, so a ranking loss compares
    them on the same content; the crop is taken first and then distorted (borders of the crop are
    treated as image borders).

    Everything is seeded by ``(seed, epoch, g)`` (:func:`derive_seed`): an index gives the same item
    whenever it is read, in any worker; :meth:`set_epoch` moves to new crops and noise draws.

    Args:
        source: a folder of images (searched recursively), a manifest (``.csv``/``.jsonl``/
            ``.parquet`` with an ``image`` column, paths relative to the manifest), or image paths.
        names, levels, seed, include_pristine: as :class:`DistortionGenerator`.
        crop: crop size ``h = w`` or ``(h, w)``; ``None`` keeps whole images (batch them only when
            they share a size). Images smaller than the crop raise :class:`DataFileError`.
    """

    def __init__(
        self,
        source: str | Path | Sequence[str | Path],
        *,
        names: Iterable[str] | None = None,
        levels: int = MAX_LEVELS,
        crop: int | tuple[int, int] | None = 224,
        seed: int = 0,
        include_pristine: bool = True,
    ) -> None:
        self.files = _pristine_files(source)
        self.generator = DistortionGenerator(names, levels, seed, include_pristine=include_pristine)
        self.variants = self.generator.variants()
        if crop is not None:
            crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
            if len(crop) != 2 or min(crop) < 1:
                raise InputError(f"crop must be a positive size or (height, width), got {crop!r}")
        self.crop = crop
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the crops and random draws of ``epoch`` (0 at construction)."""
        if epoch < 0:
            raise InputError(f"epoch must be non-negative, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files) * len(self.variants)

    def group_indices(self, group: int) -> range:
        """Indices of all versions of pristine image ``group``."""
        v = len(self.variants)
        return range(group * v, (group + 1) * v)

    def _key(self, group: int) -> int:
        return self.epoch * len(self.files) + group

    def _crop(self, image: torch.Tensor, group: int) -> torch.Tensor:
        if self.crop is None:
            return image
        (h, w), (ch, cw) = image.shape[-2:], self.crop
        if h < ch or w < cw:
            raise DataFileError(self.files[group], f"image is {h}x{w}, smaller than the {ch}x{cw} crop")
        rng = np.random.default_rng(derive_seed(self.seed, self._key(group), "crop"))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return image[..., top : top + ch, left : left + cw]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        group, version = divmod(index % len(self), len(self.variants))
        name, severity, _ = self.variants[version]
        crop = self._crop(read_image(self.files[group]), group)
        image = self.generator.distort(crop, name, severity, self._key(group)) if severity else crop
        mos = pseudo_mos(severity, self.generator.levels)
        return image[0].float(), torch.tensor(mos, dtype=torch.float32), group


class GroupBatchSampler(Sampler[list[int]]):
    """Batches holding every version of ``groups_per_batch`` pristine images, for ranking losses.

    Groups are shuffled per epoch (seed ``derive_seed(seed, dataset.epoch, "batches")``) when
    ``shuffle``; the last, smaller batch is dropped with ``drop_last``.
    """

    def __init__(
        self,
        dataset: SyntheticQualityDataset,
        groups_per_batch: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if groups_per_batch < 1:
            raise InputError(f"groups_per_batch must be positive, got {groups_per_batch}")
        self.dataset = dataset
        self.groups_per_batch = groups_per_batch
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.dataset.files)
        return n // self.groups_per_batch if self.drop_last else -(-n // self.groups_per_batch)

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.dataset.files)
        order = np.arange(n)
        if self.shuffle:
            order = np.random.default_rng(derive_seed(self.seed, self.dataset.epoch, "batches")).permutation(
                n
            )
        for start in range(0, len(self) * self.groups_per_batch, self.groups_per_batch):
            groups = order[start : start + self.groups_per_batch]
            yield [i for g in groups for i in self.dataset.group_indices(int(g))]
