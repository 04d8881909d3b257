"""Training data of the chat-VLM trainers (``trainer: grpo`` and ``trainer: deqa_sft``).

* :func:`vlm_training_rows`: the manifest rows of a split with the MOS rescaled per dataset to [1, 5],
  ``4 (mos - min) / (max - min) + 1`` over the dataset's rows of the whole manifest (Wu et al.,
  VisualQuality-R1, 2025, ``make_data.py``; You et al., DeQA-Score, 2025, ``gen_soft_label.py``), so
  datasets on different scales are never compared on one scale.
* :func:`grouped_generation_order`: the index stream of GRPO's sampler: every generation batch holds
  images of **one dataset** (multi-dataset training without scale realignment), each image repeated K
  times in a row (TRL's layout: the K completions of one prompt are consecutive), each batch repeated
  for TRL's reuse of one generation over several optimiser steps. :class:`GroupedRepeatSampler` wraps it.
* :func:`image_dataset`: a ``datasets.Dataset`` of the rows whose ``image`` column is decoded on access
  with perceptiq's own reader (the decoding of ``perceptiq score``), as an 8-bit RGB ``PIL`` image.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Sampler

from perceptiq.data.manifest import read_manifest
from perceptiq.data.sampling import group_positions
from perceptiq.errors import InputError
from perceptiq.losses.distribution import normalise_mos

__all__ = ["vlm_training_rows", "grouped_generation_order", "GroupedRepeatSampler", "image_dataset"]


def vlm_training_rows(path: str, split: str | None, *, std_default: float = 0.0) -> pd.DataFrame:
    """Rows of ``split`` (None: all) of the manifest at ``path`` with ``dataset``, ``mos_raw``, ``std_raw``
    (the manifest's ``mos_std``, else ``std_default``), ``mos`` and ``std`` (both rescaled to [1, 5] within
    each dataset), ``mos_min`` and ``mos_max`` (the dataset's raw range)."""
    frame = read_manifest(path)
    if "mos" not in frame.columns:
        raise InputError(f"{path}: the manifest needs a mos column to train a chat VLM")
    frame = frame.copy()
    frame["dataset"] = frame["dataset"].astype(str) if "dataset" in frame.columns else "default"
    mos = pd.to_numeric(frame["mos"], errors="coerce")
    if mos.isna().any():
        rows = np.flatnonzero(mos.isna().to_numpy())[:3].tolist()
        raise InputError(f"{path}: rows {rows} have no numeric MOS")
    raw_std = frame["mos_std"] if "mos_std" in frame.columns else pd.Series(std_default, index=frame.index)
    frame["mos_raw"] = mos.astype(float)
    frame["std_raw"] = pd.to_numeric(raw_std, errors="coerce").fillna(std_default).astype(float)
    for name, rows in frame.groupby("dataset").groups.items():
        low, high = float(mos[rows].min()), float(mos[rows].max())
        if not high > low:
            raise InputError(f"{path}: dataset {name!r} has one MOS value only; its scale cannot be rescaled")
        mu, sigma = normalise_mos(
            torch.tensor(mos[rows].to_numpy(dtype=np.float64)),
            torch.tensor(frame.loc[rows, "std_raw"].to_numpy(dtype=np.float64)),
            low,
            high,
        )
        frame.loc[rows, "mos"] = mu.numpy()
        frame.loc[rows, "std"] = sigma.numpy()
        frame.loc[rows, "mos_min"], frame.loc[rows, "mos_max"] = low, high
    if split is not None:
        if "split" not in frame.columns:
            raise InputError(f"{path}: the manifest has no split column (data.train_split: {split})")
        frame = frame[frame["split"].astype(str) == split]
        if frame.empty:
            raise InputError(f"{path}: no rows in split {split!r}")
    return frame.reset_index(drop=True)


def grouped_generation_order(
    datasets: list[str] | np.ndarray,
    *,
    images_per_batch: int,
    num_generations: int,
    repeat_count: int,
    seed: int,
    epoch: int = 0,
) -> list[int]:
    """Row indices in GRPO's sampling order; every run of ``images_per_batch * num_generations`` indices is
    one generation batch of one dataset (see the module docstring).

    Within each dataset the rows are shuffled (seeded by ``seed`` and ``epoch``) and cut into batches of
    ``images_per_batch`` (a dataset's last, incomplete batch is dropped); the batches of all datasets are
    shuffled together; each image is repeated ``num_generations`` times in a row, each batch
    ``repeat_count`` times.
    """
    if images_per_batch < 1 or num_generations < 1 or repeat_count < 1:
        raise InputError("images_per_batch, num_generations and repeat_count must be at least 1")
    rng = np.random.default_rng([seed, epoch])
    batches: list[np.ndarray] = []
    for members in group_positions(datasets).values():
        shuffled = rng.permutation(members)
        usable = len(shuffled) - len(shuffled) % images_per_batch
        batches.extend(shuffled[:usable].reshape(-1, images_per_batch))
    if not batches:
        raise InputError(f"no dataset has {images_per_batch} images for one generation batch")
    order: list[int] = []
    for b in rng.permutation(len(batches)):
        block = np.repeat(batches[b], num_generations).tolist()
        order.extend(block * repeat_count)
    return order


class GroupedRepeatSampler(Sampler[int]):
    """:func:`grouped_generation_order` as a sampler; the order of an epoch depends on (seed, epoch) only
    (the trainer calls :meth:`set_epoch`), so a resumed run draws the batches the interrupted one would."""

    def __init__(
        self,
        datasets: list[str],
        *,
        images_per_batch: int,
        num_generations: int,
        repeat_count: int,
        seed: int,
    ) -> None:
        self.datasets = list(datasets)
        self.options = {
            "images_per_batch": images_per_batch,
            "num_generations": num_generations,
            "repeat_count": repeat_count,
            "seed": seed,
        }
        self.epoch = 0
        self._length = len(grouped_generation_order(self.datasets, **self.options))

    def __len__(self) -> int:
        return self._length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(grouped_generation_order(self.datasets, epoch=self.epoch, **self.options))


def _pil_image(path: str) -> Any:
    from PIL import Image

    from perceptiq.io.images import read_image

    pixels = read_image(path)[0].clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


def image_dataset(
    rows: pd.DataFrame, columns: dict[str, Any], prompt: list[dict[str, Any]] | None = None
) -> Any:
    """A ``datasets.Dataset`` with the rows' ``image`` paths, ``mos``, ``dataset`` and ``columns`` (name ->
    one value per row, or one value for all); ``image`` is decoded when an item is read, and ``prompt`` (a
    chat conversation, the same for every row) is added to it then."""
    import datasets

    data: dict[str, list[Any]] = {
        "image_path": [str(p) for p in rows["image"]],
        "mos": rows["mos"].astype(float).tolist(),
        "dataset": rows["dataset"].astype(str).tolist(),
    }
    for name, value in columns.items():
        data[name] = list(value) if isinstance(value, list | np.ndarray | pd.Series) else [value] * len(rows)

    def decode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out = {**batch, "image": [_pil_image(p) for p in batch["image_path"]]}
        if prompt is not None:
            out["prompt"] = [prompt for _ in batch["image_path"]]
        return out

    dataset = datasets.Dataset.from_dict(data)
    dataset.set_transform(decode)
    return dataset
