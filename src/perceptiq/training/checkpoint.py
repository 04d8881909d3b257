"""Resumable training checkpoints, written so that ``kill -9`` at any moment leaves a loadable one.

A checkpoint is one ``torch.save`` file ``step_<step>.pt`` holding plain data only (tensors, numbers,
strings, lists, dicts; loaded with ``weights_only=True``): model, optimiser, GradScaler, EMA and SWA
state dicts, the training position (step, epoch, next micro-batch of the epoch), the random states of
python, numpy and torch (CPU and CUDA) of every process, the best metric so far, the config and the
perceptiq version.

Writing is atomic: the file is written to a temporary name in the same folder, flushed and
``fsync``-ed, renamed over the final name with ``os.replace`` (atomic on POSIX and Windows), and the
folder is ``fsync``-ed so the rename itself is durable. A process killed while writing leaves only a
stray temporary file (removed by the next run) and the previous checkpoints intact. Older checkpoints
beyond ``keep_last`` are deleted only after the new one is in place; loading takes the newest
checkpoint that reads back, falling back to older ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceptiq.errors import DataFileError

__all__ = [
    "CheckpointError",
    "atomic_save",
    "save_checkpoint",
    "load_checkpoint",
    "load_latest_checkpoint",
    "list_checkpoints",
    "checkpoint_path",
    "rng_state",
    "set_rng_state",
]

_log = logging.getLogger("perceptiq.training")
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(DataFileError):
    """A checkpoint cannot be read or does not fit the run."""


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not supported for folders on some platforms (Windows)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` via a temporary file, fsync, ``os.replace`` (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def checkpoint_path(directory: str | Path, step: int) -> Path:
    """``directory / step_<step, 9 digits>.pt``."""
    return Path(directory) / f"step_{step:09d}.pt"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoints in ``directory``, oldest first (by step)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(directory: str | Path, step: int, state: dict[str, Any], *, keep_last: int = 2) -> Path:
    """Write ``state`` as the checkpoint of ``step`` atomically, then keep only the ``keep_last`` newest."""
    path = atomic_save(state, checkpoint_path(directory, step))
    for old in list_checkpoints(directory)[: -max(keep_last, 1)]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read one checkpoint (``weights_only=True``, on the CPU)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CheckpointError(path, f"cannot read checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(path, "not a perceptiq training checkpoint")
    return state


def load_latest_checkpoint(directory: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable checkpoint of ``directory`` (older ones are tried when it fails), or None.

    Stray temporary files of an interrupted write are removed.
    """
    directory = Path(directory)
    if directory.is_dir():
        for stray in directory.glob(".step_*.tmp"):
            stray.unlink(missing_ok=True)
    for path in reversed(list_checkpoints(directory)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            _log.warning("skipping unreadable checkpoint: %s", err)
    return None


def rng_state() -> dict[str, Any]:
    """Random states of python, numpy and torch (CPU, and every CUDA device when available) as plain data."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - saving the global state
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
