"""The one reader of weight files: a state dict from ``.safetensors`` or a ``torch.save`` file.

Every model-layer loader (a model's ``model.safetensors``, a timm backbone checkpoint, the VGG16-BN
``D2`` features of MAD) reads its file here, so all of them accept the same formats, never unpickle
arbitrary objects (``torch.load(weights_only=True)``) and fail with one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from perceptiq.errors import DataFileError, PerceptiqError

__all__ = ["STATE_DICT_KEYS", "read_state_dict"]

STATE_DICT_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")
"""Wrapper keys of training checkpoints, tried in this order (the EMA weights first, as timm does)."""


def _error(error: type[PerceptiqError], path: Path, problem: str) -> PerceptiqError:
    if issubclass(error, DataFileError):
        return error(path, problem)
    return error(f"{path}: {problem}")


def read_state_dict(
    path: str | Path, *, error: type[PerceptiqError] = DataFileError
) -> dict[str, torch.Tensor]:
    """The mapping of names to tensors stored in ``path``, on the CPU.

    ``.safetensors`` files are read with safetensors, anything else with ``torch.load(weights_only=True)``.
    A checkpoint that wraps its weights (``{"state_dict": {...}}``, ``{"model": {...}}`` or their EMA
    forms, :data:`STATE_DICT_KEYS`) is unwrapped, and a ``module.`` prefix on every key (a model saved
    inside ``DataParallel``) is removed.

    Args:
        path: the weights file.
        error: the exception raised, ``"<path>: <problem>"``; the caller's layer chooses it (e.g. a
            model's ``WeightsError``).

    Raises:
        DataFileError: (or ``error``) the file is missing, unreadable or holds no mapping of tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise _error(error, p, "weights file not found")
    try:
        if p.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p), device="cpu")
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any decoder failure becomes one line naming the file
        raise _error(error, p, f"cannot read weights ({type(err).__name__}: {err})") from None
    if isinstance(state, dict):
        key = next((k for k in STATE_DICT_KEYS if isinstance(state.get(k), dict)), None)
        state = state[key] if key is not None else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _error(error, p, "does not hold a state dict (a mapping of names to tensors)")
    if state and all(str(k).startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state
