"""Training data: an image dataset over a manifest, deterministic augmentations and resumable batch plans.

Every random choice of the data pipeline is a function of ``(seed, epoch, index)``, never of a
process-wide generator: the crop and flip of image ``index`` in ``epoch`` come from a generator seeded
with ``SeedSequence([seed, epoch, index])``, and the batches of an epoch are a list computed up front
from ``(seed, epoch)``. So a resumed run sees exactly the batches and crops of an uninterrupted one
(skip the batches already done), any number of loader workers gives the same data, and the batches of
``W`` processes together are the batches of one process with a ``W`` times larger batch.

Batch plans:

* :func:`shuffled_batches`: ``torch.utils.data.DistributedSampler`` order (seeded permutation, rank
  ``r`` of ``W`` takes positions ``r, r + W, ...``), cut into batches; incomplete batches are dropped.
* :func:`single_dataset_batches`: every batch from one dataset of a multi-dataset manifest, so ranking
  and correlation losses never compare MOS of different scales.
* :func:`grouped_batches`: batches made of whole groups of ``group_size`` images of one method each
  (Chen et al., Learning from Model Rankings, 2025, eq. 4: the mean quality of B images of method i against
  that of method j), optionally
  topped up with labelled images for the MOS term of eq. 6.

:func:`prepare_data` assembles a run's data from the recipe: training rows of the manifest (plus the
teacher's pseudo-labels of unlabelled images), validation rows with a MOS, method groups and the plan.
A row whose image file does not exist, or that lacks a finite MOS where one is needed (every validation
row; a training row unless a loss targets the teacher, or the method ranking and the row has a ranked
method), is an error naming the manifest and the rows, or with ``data.drop_invalid`` dropped with a note.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from perceptiq.data.manifest import read_manifest, screen_rows
from perceptiq.data.sampling import dataset_batches
from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images import read_image
from perceptiq.io.tables import read_table
from perceptiq.models import QualityModel
from perceptiq.training.config import TrainConfig
from perceptiq.training.descriptors import cached_descriptors
from perceptiq.training.distill import pseudo_label_folder
from perceptiq.training.runtime import DistInfo, barrier

__all__ = [
    "ManifestDataset",
    "augment_generator",
    "crop_and_flip",
    "shuffled_batches",
    "grouped_batches",
    "single_dataset_batches",
    "read_method_scores",
    "method_groups",
    "seed_worker",
    "TrainData",
    "prepare_data",
    "make_loader",
]

_log = logging.getLogger("perceptiq.training")


def augment_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A torch generator that depends only on ``(seed, epoch, index)`` (numpy ``SeedSequence`` mixing)."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _resize_short(image: torch.Tensor, short: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    scale = short / min(h, w)
    size = (max(short, round(h * scale)), max(short, round(w * scale)))
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)


def crop_and_flip(
    image: torch.Tensor,
    crop_size: int,
    *,
    resize_short: int = 0,
    generator: torch.Generator | None = None,
    hflip: bool = False,
) -> torch.Tensor:
    """Crop (1, 3, H, W) to ``crop_size`` squared: random with a generator, centred without; maybe flip.

    The shorter side is first resized to ``resize_short`` (if > 0) and enlarged to ``crop_size`` when
    smaller (bilinear). ``crop_size = 0`` keeps the whole image. Returns (3, h, w).
    """
    if resize_short > 0:
        image = _resize_short(image, resize_short)
    if crop_size > 0:
        if min(image.shape[-2:]) < crop_size:
            image = _resize_short(image, crop_size)
        h, w = image.shape[-2:]
        if generator is None:
            top, left = (h - crop_size) // 2, (w - crop_size) // 2
        else:
            top = int(torch.randint(0, h - crop_size + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - crop_size + 1, (1,), generator=generator))
        image = image[..., top : top + crop_size, left : left + crop_size]
    if generator is not None and hflip and bool(torch.rand((), generator=generator) < 0.5):
        image = image.flip(-1)
    return image[0].contiguous()


class ManifestDataset(Dataset):
    """Images of a manifest frame with their MOS, method group and row index.

    Items are dicts ``{"image": (3, h, w) float in [0, 1], "mos": float (NaN if missing), "group": int
    (-1 if none), "index": int}``; with ``descriptors`` (N, D), "image" is the row's descriptor instead,
    and with descriptors of several views (N, V, D) the descriptor of one view: in training mode a view
    drawn from ``(seed, epoch, index)``, otherwise view 0. In training mode (``train=True``) the crop
    and flip of an item depend on ``(seed, epoch, index)`` only (call :meth:`set_epoch` before each
    epoch); otherwise the centre crop.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        crop_size: int,
        resize_short: int = 0,
        train: bool = True,
        hflip: bool = True,
        seed: int = 0,
        groups: np.ndarray | None = None,
        descriptors: torch.Tensor | None = None,
    ) -> None:
        self.paths = [str(p) for p in frame["image"]]
        self.descriptors = descriptors
        mos = frame["mos"] if "mos" in frame.columns else pd.Series(np.nan, index=frame.index)
        self.mos = mos.to_numpy(dtype=np.float64)
        self.groups = np.full(len(frame), -1, dtype=np.int64) if groups is None else np.asarray(groups)
        self.crop_size, self.resize_short = crop_size, resize_short
        self.train, self.hflip, self.seed = train, hflip, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.descriptors is not None:
            image = self.descriptors[index]
            if image.ndim == 2:
                view = 0
                if self.train:
                    generator = augment_generator(self.seed, self.epoch, index)
                    view = int(torch.randint(0, image.shape[0], (1,), generator=generator))
                image = image[view]
        else:
            generator = augment_generator(self.seed, self.epoch, index) if self.train else None
            image = crop_and_flip(
                read_image(self.paths[index]), self.crop_size, resize_short=self.resize_short,
                generator=generator, hflip=self.hflip,
            )  # fmt: skip
        return {
            "image": image,
            "mos": torch.tensor(self.mos[index], dtype=torch.float32),
            "group": torch.tensor(int(self.groups[index]), dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed python and numpy of a loader worker from its torch seed (per-worker seeds)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - user code in workers draws from the legacy global generator


def shuffled_batches(
    n: int, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """This rank's batches of an epoch: ``DistributedSampler`` order cut into full batches.

    The permutation depends on ``(seed, epoch)`` only, so the batches of ranks ``0..W-1`` at step s
    together are the step-s batch of one process with batch ``W * batch_size``.
    """
    if n < world_size:
        raise InputError(f"{n} training images cannot be shared by {world_size} processes")
    sampler = DistributedSampler(
        range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    order = list(sampler)
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def grouped_batches(
    groups: np.ndarray,
    *,
    group_size: int,
    groups_per_batch: int,
    seed: int,
    epoch: int,
    labelled: np.ndarray | None = None,
    labelled_per_batch: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> list[list[int]]:
    """This rank's batches of whole method groups (Chen et al., Learning from Model Rankings, 2025, eqs. 4-6).

    Groups (ids >= 0) with at least ``group_size`` images take part. Each group's images are shuffled and
    cut into chunks of ``group_size`` (the remainder waits for the next reshuffle). A batch takes one chunk
    from each of ``groups_per_batch`` distinct groups, drawn with probability proportional to the chunks a
    group has left; a group whose chunks are used up is reshuffled. An epoch has ``floor(chunks /
    groups_per_batch)`` batches. ``labelled_per_batch`` indices of ``labelled`` (shuffled, cycled) are
    appended to each batch. Batches are dealt to ranks round-robin, the same number to each.
    """
    rng = np.random.default_rng([seed, epoch])
    groups = np.asarray(groups)
    members = {int(g): np.flatnonzero(groups == g) for g in np.unique(groups[groups >= 0])}
    members = {g: m for g, m in members.items() if len(m) >= group_size}
    if len(members) < groups_per_batch:
        raise InputError(
            f"grouped batches need {groups_per_batch} methods with at least {group_size} training images "
            f"each; only {len(members)} have that many"
        )

    def chunks_of(g: int) -> list[list[int]]:
        order = rng.permutation(members[g])
        return [order[i : i + group_size].tolist() for i in range(0, len(order) - group_size + 1, group_size)]

    names = sorted(members)
    queues = {g: chunks_of(g) for g in names}
    batches: list[list[int]] = []
    for _ in range(sum(len(q) for q in queues.values()) // groups_per_batch):
        for g in names:
            queues[g] = queues[g] or chunks_of(g)
        counts = np.array([len(queues[g]) for g in names], dtype=np.float64)
        picked = rng.choice(len(names), size=groups_per_batch, replace=False, p=counts / counts.sum())
        batches.append([i for k in sorted(picked) for i in queues[names[k]].pop()])
    if labelled_per_batch > 0:
        if labelled is None or len(labelled) == 0:
            raise InputError(
                "data.labelled_per_batch > 0 but no training image has a MOS and no ranked method"
            )
        extra = np.resize(rng.permutation(np.asarray(labelled)), labelled_per_batch * len(batches)).tolist()
        batches = [
            b + extra[i * labelled_per_batch : (i + 1) * labelled_per_batch] for i, b in enumerate(batches)
        ]
    per_rank = len(batches) // world_size
    return batches[: per_rank * world_size][rank::world_size]


def single_dataset_batches(
    members: dict[str, np.ndarray],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
) -> list[list[int]]:
    """This rank's batches of an epoch, each from one dataset.

    :func:`perceptiq.data.sampling.dataset_batches` in epoch mode, drawn from ``(seed, epoch)``; the
    batches are dealt to ranks round-robin, the same number to each.
    """
    batches = dataset_batches(members, batch_size, np.random.default_rng([seed, epoch]))
    per_rank = len(batches) // world_size
    return batches[: per_rank * world_size][rank::world_size]


def read_method_scores(path: str | Path) -> dict[str, float]:
    """Global method scores (higher = better) from ``perceptiq rank --json`` output or a table.

    A table needs a ``score`` column and a ``method`` (or ``item``) column.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DataFileError(path, f"cannot read method scores: {err}") from None
        if isinstance(payload, dict) and isinstance(payload.get("ranking"), list):
            return {str(r["item"]): float(r["score"]) for r in payload["ranking"]}
    frame = read_table(path)
    name_col = next((c for c in ("method", "item") if c in frame.columns), None)
    if name_col is None or "score" not in frame.columns:
        raise DataFileError(
            path, f"method scores need 'method' (or 'item') and 'score' columns; got {list(frame.columns)}"
        )
    scores = pd.to_numeric(frame["score"], errors="coerce")
    if scores.isna().any():
        raise DataFileError(path, "column 'score' has missing or non-numeric values")
    return dict(zip(frame[name_col].astype(str), scores.astype(float), strict=True))


def method_groups(
    frame: pd.DataFrame, scores: dict[str, float]
) -> tuple[np.ndarray, torch.Tensor, list[str]]:
    """Group id of each row (index into the ranked methods, -1 for rows without a ranked method),
    the ranked methods' scores (G,) and their names."""
    names = sorted(scores)
    if "method" not in frame.columns:
        raise InputError("grouping by method needs a 'method' column in the training manifest")
    lookup = {name: i for i, name in enumerate(names)}
    ids = np.array([lookup.get(str(m), -1) if pd.notna(m) else -1 for m in frame["method"]], dtype=np.int64)
    return ids, torch.tensor([scores[n] for n in names], dtype=torch.float64), names


# ------------------------------------------------------------------------------------- data of a run


@dataclass
class TrainData:
    """Datasets of one run and the function giving this process's micro-batches of an epoch."""

    train_set: ManifestDataset
    val_set: ManifestDataset | None
    group_scores: torch.Tensor | None
    plan: Callable[[int], list[list[int]]]


def _rows(frame: pd.DataFrame, split: str | None) -> pd.DataFrame:
    if split is None or "split" not in frame.columns:
        return frame
    return frame[frame["split"].astype(str) == split]


def _pseudo_labels(
    cfg: TrainConfig, env: DistInfo, out: Path, teacher: QualityModel | None, resume: bool
) -> pd.DataFrame:
    """Rows pseudo-labelled by the teacher (rank 0 scores; a resumed run reuses ``pseudo_labels.csv``)."""
    path = out / "pseudo_labels.csv"
    if teacher is None:
        raise InputError("distill.unlabelled needs distill.teacher (the model that pseudo-labels the images)")
    if env.is_main and not (resume and path.exists()):
        distill = cfg.distill
        frame = pseudo_label_folder(
            teacher, distill.unlabelled, dataset=distill.pseudo_dataset, device=env.device
        )
        tmp = path.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
        _log.info("pseudo-labelled %d images of %s -> %s", len(frame), distill.unlabelled, path)
    barrier(env)
    return read_manifest(path)


def _screen(
    rows: pd.DataFrame, source: str, cfg: TrainConfig, env: DistInfo, mos_needed: np.ndarray | None = None
) -> pd.DataFrame:
    """Manifest rows without a usable MOS or image: an error, or dropped with a note (data.drop_invalid)."""
    kept, notes = screen_rows(
        rows, source, mos_needed=mos_needed, drop=cfg.data.drop_invalid,
        hint="fix them, or set data.drop_invalid=true to drop them",
    )  # fmt: skip
    if env.is_main:
        for note in notes:
            _log.warning(note)
    return kept


def _mos_needed(rows: pd.DataFrame, cfg: TrainConfig, ranked: dict[str, float] | None) -> np.ndarray:
    """Training rows that only a MOS can teach: all, unless a loss targets the teacher (every row has a
    target) or the method ranking (rows of a ranked method have one)."""
    targets = {term.target for term in cfg.loss}
    if "teacher" in targets:
        return np.zeros(len(rows), dtype=bool)
    if "method" in targets and ranked is not None and "method" in rows.columns:
        return ~np.array([pd.notna(m) and str(m) in ranked for m in rows["method"]], dtype=bool)
    return np.ones(len(rows), dtype=bool)


def _validation_rows(
    frame: pd.DataFrame, cfg: TrainConfig, env: DistInfo, ranked: dict[str, float] | None
) -> pd.DataFrame:
    """Validation rows with a MOS (data.val, or the val_split rows of data.train), screened as training
    rows are; rows that may lack a MOS (see :func:`_mos_needed`) and do are left out with a note."""
    d = cfg.data
    if d.val:
        rows, source = _rows(read_manifest(d.val), d.val_split), d.val
    elif "split" in frame.columns:
        rows, source = frame[frame["split"].astype(str) == d.val_split], d.train
    else:
        return frame.iloc[:0]
    rows = _screen(rows, source, cfg, env, _mos_needed(rows, cfg, ranked))
    mos = rows["mos"].to_numpy(dtype=np.float64) if "mos" in rows.columns else np.full(len(rows), np.nan)
    scored = np.isfinite(mos)
    if not scored.all() and env.is_main:
        _log.info("%d validation rows of %s have no MOS (their target is not a MOS): not evaluated",
                  int((~scored).sum()), source)  # fmt: skip
    return rows[scored].reset_index(drop=True)


def _descriptors(
    model: QualityModel | None,
    frame: pd.DataFrame,
    cfg: TrainConfig,
    env: DistInfo,
    views: list[str] | None = None,
) -> torch.Tensor | None:
    """Cached descriptors of the frame's images, (N, D) or of ``views`` (N, V, D) (rank 0 computes the
    missing ones), or None without ``data.descriptor_cache``."""
    if not cfg.data.descriptor_cache:
        return None
    if model is None:
        raise InputError("data.descriptor_cache needs the model whose descriptor is cached")
    if cfg.distill.teacher:
        raise InputError("data.descriptor_cache cannot be combined with a teacher (it scores pixels)")
    paths, cache = [str(p) for p in frame["image"]], cfg.data.descriptor_cache
    values = None
    if env.is_main:
        values = cached_descriptors(
            model, paths, cache, device=env.device, progress=cfg.log.progress, views=views
        )
    barrier(env)  # the other processes read what rank 0 computed
    if values is None:
        values = cached_descriptors(model, paths, cache, progress=False, views=views)
    return values


def prepare_data(
    cfg: TrainConfig,
    env: DistInfo,
    out: Path,
    teacher: QualityModel | None,
    resume: bool,
    model: QualityModel | None = None,
) -> TrainData:
    """Training rows (plus pseudo-labelled ones), validation rows with a MOS, method groups, batch plan.

    With ``data.descriptor_cache`` the datasets carry ``model``'s cached descriptors instead of pixels.
    """
    d = cfg.data
    if not d.train:
        raise InputError("data.train: no training manifest given (set data.train=PATH)")
    frame = read_manifest(d.train)
    ranked = read_method_scores(d.method_scores) if d.method_scores else None
    train_rows = _rows(frame, d.train_split)
    train_rows = _screen(train_rows, d.train, cfg, env, _mos_needed(train_rows, cfg, ranked))
    if cfg.distill.unlabelled:
        train_rows = pd.concat(
            [train_rows, _pseudo_labels(cfg, env, out, teacher, resume)], ignore_index=True
        )
    train_rows = train_rows.reset_index(drop=True)
    if train_rows.empty:
        raise InputError(f"{d.train}: no training rows (split {d.train_split!r})")
    groups = scores = None
    if ranked is not None:
        groups, scores, _ = method_groups(train_rows, ranked)
    if d.group_by == "method" and groups is None:
        raise InputError("data.group_by: method needs data.method_scores (the methods' global ranking)")
    val_rows = _validation_rows(frame, cfg, env, ranked)
    common = {"crop_size": d.crop_size, "resize_short": d.resize_short}
    views = None if d.descriptor_views == ["full"] else d.descriptor_views
    train_set = ManifestDataset(
        train_rows, train=True, hflip=d.hflip, seed=cfg.seed, groups=groups,
        descriptors=_descriptors(model, train_rows, cfg, env, views), **common,
    )  # fmt: skip
    val_set = None
    if len(val_rows) >= 2:
        val_set = ManifestDataset(
            val_rows, train=False, descriptors=_descriptors(model, val_rows, cfg, env), **common
        )
    share = {"seed": cfg.seed, "rank": env.rank, "world_size": env.world_size}
    if d.group_by == "dataset":
        if "dataset" not in train_rows.columns:
            raise InputError(f"{d.train}: data.group_by: dataset needs a 'dataset' column in the manifest")
        names = train_rows["dataset"].astype(str).to_numpy()
        members = {name: np.flatnonzero(names == name) for name in sorted(set(names))}

        def plan(epoch: int) -> list[list[int]]:
            return single_dataset_batches(members, d.batch_size, epoch=epoch, **share)

    elif d.group_by == "method":
        labelled = np.flatnonzero(np.isfinite(train_set.mos) & (train_set.groups < 0))
        groups_per_batch = d.batch_size // d.group_size

        def plan(epoch: int) -> list[list[int]]:
            return grouped_batches(
                train_set.groups, group_size=d.group_size, groups_per_batch=groups_per_batch, epoch=epoch,
                labelled=labelled, labelled_per_batch=d.labelled_per_batch, **share,
            )  # fmt: skip
    else:

        def plan(epoch: int) -> list[list[int]]:
            return shuffled_batches(len(train_set), d.batch_size, epoch=epoch, **share)

    return TrainData(train_set, val_set, scores, plan)


def make_loader(
    dataset: ManifestDataset, batches: list[list[int]], cfg: TrainConfig, epoch: int
) -> DataLoader:
    """A loader over the given batches; worker seeds come from its own generator, not the global one."""
    workers = cfg.data.num_workers
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        worker_init_fn=seed_worker if workers else None,
        generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch),
        pin_memory=torch.cuda.is_available() and cfg.device != "cpu",
    )
