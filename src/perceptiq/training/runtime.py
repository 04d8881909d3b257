"""The run's surroundings: processes and devices (DDP under torchrun), seeds, CSV/TensorBoard logs, progress.

DDP: when ``WORLD_SIZE`` > 1 (set by ``torchrun``, with ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) the process joins the group with the NCCL backend on CUDA and gloo on the CPU; each
process uses the GPU of its local rank. Only rank 0 writes logs and files.
"""

from __future__ import annotations

import csv
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from perceptiq.functional._checks import usable_device

__all__ = [
    "DistInfo",
    "setup_distributed",
    "barrier",
    "shard_indices",
    "gather_by_index",
    "seed_everything",
    "CsvLog",
    "open_tensorboard",
    "progress_bar",
]

_log = logging.getLogger("perceptiq.training")


@dataclass
class DistInfo:
    """This process's place in the run: rank, number of processes, device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialised: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = usable_device(name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1): NCCL on CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local if world > 1 else 0)
    initialised = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        initialised = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank, world, local, dev, initialised)


def barrier(env: DistInfo) -> None:
    """Wait for every process (no-op with one process)."""
    if env.world_size > 1:
        dist.barrier()


def shard_indices(n: int, env: DistInfo) -> np.ndarray:
    """This process's share of ``n`` items: ``rank, rank + world, ...`` (``DistributedSampler`` order).

    Unlike ``DistributedSampler`` nothing is padded: every item is in exactly one share, so no item
    is counted twice when the shares are gathered (:func:`gather_by_index`).
    """
    return np.arange(env.rank, n, env.world_size, dtype=np.int64)


def gather_by_index(indices: np.ndarray, values: np.ndarray, n: int, env: DistInfo) -> np.ndarray:
    """All processes' ``values`` (each given at its ``indices``) as one array of ``n``; every process gets it.

    Statistics such as rank correlations are not averageable over shares, so the shares are put back
    in item order before any is computed. Raises ``RuntimeError`` unless every item came exactly once.
    """
    shares = [(np.asarray(indices, np.int64), np.asarray(values, np.float64))]
    if env.world_size > 1:
        gathered: list[Any] = [None] * env.world_size
        dist.all_gather_object(gathered, shares[0])
        shares = gathered
    out = np.full(n, np.nan)
    seen = np.zeros(n, dtype=np.int64)
    for idx, vals in shares:
        out[idx] = vals
        np.add.at(seen, idx, 1)
    if not (seen == 1).all():
        raise RuntimeError(
            f"gathered shares cover {int((seen > 0).sum())} of {n} items, {int((seen > 1).sum())} twice"
        )
    return out


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator (for user code that uses it) and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global generator is what other code draws from
    torch.manual_seed(seed)


class CsvLog:
    """Append-only CSV (one flushed write per row) whose rows after ``keep_until_step`` are dropped on resume.

    Without ``keep_until_step`` (a fresh run) an existing file is replaced. The header: the first row's keys.
    Rows cut short by a kill are dropped too.
    """

    def __init__(self, path: Path, enabled: bool, keep_until_step: int | None) -> None:
        self.path, self.enabled = path, enabled
        self.fields: list[str] | None = None
        if not enabled:
            return
        if keep_until_step is None or not path.exists():
            path.unlink(missing_ok=True)
            return
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            self.fields = list(reader.fieldnames or [])
            rows = [r for r in reader if _complete(r) and int(r["step"]) <= keep_until_step]
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        new = self.fields is None
        self.fields = self.fields or list(row)
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore", restval="")
            if new:
                writer.writeheader()
            writer.writerow(row)


def _complete(row: dict[str, str | None]) -> bool:
    """False for a row cut short by a kill (missing cells) or with a step that is not a number."""
    return None not in row.values() and None not in row and str(row.get("step", "")).isdigit()


def open_tensorboard(folder: Path, enabled: bool, purge_step: int | None) -> Any:
    """A ``SummaryWriter`` (events after ``purge_step`` are dropped on resume), or None with a note."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        _log.info("tensorboard is not installed: TensorBoard logs skipped (pip install tensorboard)")
        return None
    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)


def progress_bar(enabled: bool, total: int, initial: int, name: str) -> Any:
    """A tqdm bar over optimiser steps, or None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name, dynamic_ncols=True)
