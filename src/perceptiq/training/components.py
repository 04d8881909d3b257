"""The parts a training run is built from (used by :func:`perceptiq.training.loop.train`).

The learning rate of a step (:func:`lr_at`), the recipe's model with its frozen parameters
(:func:`build_model`), the optimiser (:func:`build_optimizer`), train mode with frozen normalisation
(:func:`set_train_mode`), validation under the evaluation protocol (:func:`evaluate`) and the output
folder (:func:`output_dir`).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from perceptiq.errors import InputError
from perceptiq.evaluation.protocols import EvaluationResult, Protocol, ScoreData, create_protocol
from perceptiq.models import QualityModel, create_model
from perceptiq.training.config import ModelSection, OptimSection, TrainConfig, import_model_modules
from perceptiq.training.data import ManifestDataset
from perceptiq.training.runtime import DistInfo, gather_by_index, shard_indices

__all__ = [
    "lr_at",
    "build_model",
    "set_train_mode",
    "build_optimizer",
    "evaluate",
    "validation_protocol",
    "improves",
    "output_dir",
]


def lr_at(step: int, cfg: TrainConfig, *, total_steps: int, steps_per_epoch: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up, then constant / cosine / step.

    Time ``t`` is the step (``schedule.unit = "steps"``) or the epoch ``step // steps_per_epoch``
    (``"epochs"``: piecewise constant, as torch schedulers stepped once per epoch). With ``W`` =
    ``warmup``, ``s`` = ``warmup_start_factor`` and base rate ``lr``:

    * ``t < W``: ``lr * (s + (1 - s) t / W)`` (``torch.optim.lr_scheduler.LinearLR``);
    * then with ``u = t - W`` (``SequentialLR`` restarts the second schedule at the milestone):
      constant ``lr``; cosine ``min_lr + (lr - min_lr) (1 + cos(pi u / T)) / 2`` with ``T = period`` or,
      when 0, the rest of the run (``CosineAnnealingLR`` closed form, periodic beyond T); step
      ``lr * gamma ** floor(u / step_size)`` (``StepLR``).
    """
    sched, base = cfg.schedule, cfg.optim.lr
    if sched.unit == "epochs":
        t, total = step // max(steps_per_epoch, 1), math.ceil(total_steps / max(steps_per_epoch, 1))
    else:
        t, total = step, total_steps
    warm = sched.warmup
    if t < warm:
        return base * (sched.warmup_start_factor + (1.0 - sched.warmup_start_factor) * t / warm)
    u = t - warm
    if sched.name == "cosine":
        period = sched.period or max(total - warm, 1)
        return sched.min_lr + (base - sched.min_lr) * (1.0 + math.cos(math.pi * u / period)) / 2.0
    if sched.name == "step":
        return base * sched.gamma ** (u // sched.step_size)
    return base


def build_model(section: ModelSection, *, allow_imports: bool = False) -> QualityModel:
    """The recipe's model: registered variant + option overrides (+ initial weights), ``freeze`` applied.

    ``model.imports`` are imported only with ``allow_imports`` (:func:`~perceptiq.training.config.
    import_model_modules`).
    """
    import_model_modules(section.imports, allowed=allow_imports)
    options = dict(section.options)
    if isinstance(options.get("input_policy"), dict):
        from perceptiq.functional.patches import InputPolicy

        policy = {k: tuple(v) if isinstance(v, list) else v for k, v in options["input_policy"].items()}
        options["input_policy"] = InputPolicy(**policy)
    model = create_model(section.name, weights=section.weights, **options)
    for pattern in section.freeze:
        matched = [p for name, p in model.named_parameters() if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise InputError(f"model.freeze: {pattern!r} matches no parameter of {section.name}")
        for param in matched:
            param.requires_grad_(False)
    return model


def set_train_mode(model: torch.nn.Module, freeze_norm: bool) -> None:
    """``model.train()``, with BatchNorm layers kept in eval mode when ``freeze_norm``."""
    model.train()
    if freeze_norm:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def build_optimizer(model: torch.nn.Module, cfg: OptimSection) -> torch.optim.Optimizer:
    """AdamW or Adam over the trainable parameters; weight decay on 2+-dim tensors only (no biases/norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("the model has no trainable parameters")
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    opt_cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return opt_cls([g for g in groups if g["params"]], lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


@torch.no_grad()
def evaluate(
    model: QualityModel,
    dataset: ManifestDataset,
    cfg: TrainConfig,
    device: torch.device,
    autocast: Callable[[], Any],
    protocol: Protocol,
    env: DistInfo | None = None,
) -> EvaluationResult | None:
    """Scores of the validation images (centre crops, or the model's input policy) under the protocol.

    Under DDP (``env`` with several processes) every process scores its share of the images
    (:func:`~perceptiq.training.runtime.shard_indices`), the predictions are gathered in image order
    (:func:`~perceptiq.training.runtime.gather_by_index`), and the protocol is applied once to all of
    them on the main process (correlations are not averageable over shares); the others return None.
    Every process must call it.
    """
    env = env if env is not None else DistInfo(device=device)
    model.eval()
    share = shard_indices(len(dataset), env)
    if cfg.eval.input == "policy":
        from perceptiq.io.images import read_image

        mine = [float(model.score(read_image(dataset.paths[i], device=device))[0]) for i in share]
    else:
        loader = DataLoader(
            Subset(dataset, share.tolist()), batch_size=cfg.eval.batch_size, num_workers=cfg.data.num_workers
        )
        parts = [torch.zeros(0)]
        for batch in loader:
            with autocast():
                parts.append(model(batch["image"].to(device)).float().reshape(-1).cpu())
        mine = torch.cat(parts).tolist()
    pred = gather_by_index(share, np.asarray(mine, dtype=np.float64), len(dataset), env)
    if not env.is_main:
        return None
    return protocol.evaluate(ScoreData(np.asarray(dataset.paths), pred, dataset.mos))


def validation_protocol(cfg: TrainConfig) -> Protocol:
    """The evaluation protocol, checked up front to have ``eval.metric`` among its statistics."""
    protocol = create_protocol(cfg.eval.protocol, **cfg.eval.protocol_options)
    probe = ScoreData(np.arange(5), np.array([1.0, 2.0, 4.0, 3.0, 5.0]), np.array([1.0, 3.0, 2.0, 4.0, 5.0]))
    stats = protocol.evaluate(probe).statistics
    if cfg.eval.metric not in stats:
        known = ", ".join(stats)
        raise InputError(
            f"eval.metric {cfg.eval.metric!r} is not a statistic of {cfg.eval.protocol!r} ({known})"
        )
    return protocol


def improves(value: float, best: float | None, mode: str) -> bool:
    """Whether a finite validation ``value`` beats ``best`` (None: nothing yet) under ``mode`` max/min."""
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def output_dir(cfg: TrainConfig) -> Path:
    """The run's output folder (``{name}`` in ``output_dir`` replaced by the recipe name)."""
    return Path(cfg.output_dir.replace("{name}", cfg.name))
