"""The training loop of perceptiq: :func:`train`, readable top to bottom (after nanoGPT's ``train.py``).

Order of work: join the process group when launched by torchrun (:mod:`~perceptiq.training.runtime`)
and seed; build the model (and a frozen teacher), the data (:func:`~perceptiq.training.data.prepare_data`),
the objective (a weighted sum of named losses) and the evaluation protocol; build the optimiser
(AdamW/Adam), the GradScaler and the weight averages (EMA, SWA); restore the newest checkpoint when
resuming; then for every epoch run optimiser steps (learning rate from
:func:`~perceptiq.training.components.lr_at`, autocast,
gradient accumulation, clipping, EMA update, loss all-reduced across processes for the log, a
checkpoint every N steps), and at the end of the epoch update SWA, evaluate the validation images
with the protocol, keep the best weights and write a checkpoint. The final, best, EMA and SWA weights
are saved with :func:`perceptiq.models.save_model`.

Output folder: ``config.yaml``, ``train_log.csv`` (a row per optimiser step), ``eval_log.csv`` (a row
per evaluation), ``tensorboard/``, ``checkpoints/step_*.pt``, ``final/``, ``best/``, ``ema/``, ``swa/``,
``pseudo_labels.csv`` (self-training) and ``summary.json``.

Exact resumption: the data order and augmentations are functions of (seed, epoch, index), the learning
rate a function of the step, and the checkpoint holds every other state (weights, optimiser, scaler,
averages, the random states of every process, the position in the epoch); on the same hardware and
software a resumed run repeats the uninterrupted one bit for bit. Log rows that a killed run wrote after
its last checkpoint are cut on resume.

Mixed precision (``amp``): float16 autocast with a GradScaler on CUDA, bfloat16 autocast on the CPU.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import perceptiq
from perceptiq.errors import InputError
from perceptiq.evaluation.protocols import Protocol
from perceptiq.models import QualityModel, save_model
from perceptiq.training import checkpoint as ckpt
from perceptiq.training.components import (
    build_model,
    build_optimizer,
    evaluate,
    improves,
    lr_at,
    output_dir,
    set_train_mode,
    validation_protocol,
)
from perceptiq.training.config import (
    TrainConfig,
    config_to_dict,
    dump_config,
    import_model_modules,
)
from perceptiq.training.data import TrainData, make_loader, prepare_data
from perceptiq.training.distill import load_teacher, teacher_scores
from perceptiq.training.objective import Objective, build_objective
from perceptiq.training.runtime import (
    CsvLog,
    DistInfo,
    barrier,
    open_tensorboard,
    progress_bar,
    seed_everything,
    setup_distributed,
)

__all__ = ["train", "TrainResult", "TrainState"]

_log = logging.getLogger("perceptiq.training")


# --------------------------------------------------------------------------------------------- the run


@dataclass
class TrainState:
    """Where the run is: optimiser steps done, current epoch, micro-batches of it done, best so far."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    last_eval_step: int = -1


@dataclass
class TrainResult:
    """What :func:`train` returns (evaluations: rank 0 only)."""

    output_dir: Path
    step: int
    epoch: int
    interrupted: bool
    last_loss: float | None
    best_metric: float | None
    best_epoch: int | None
    evaluations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Run:
    """Everything one run holds; built by :func:`_setup`."""

    cfg: TrainConfig
    env: DistInfo
    out: Path
    model: QualityModel
    net: torch.nn.Module  # the model, or its DDP wrapper
    teacher: QualityModel | None
    data: TrainData
    objective: Objective
    protocol: Protocol
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype
    ema: AveragedModel | None
    swa: AveragedModel | None
    state: TrainState
    total_steps: int
    steps_per_epoch: int
    train_log: CsvLog | None = None
    eval_log: CsvLog | None = None
    board: Any = None
    bar: Any = None
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def autocast(self) -> Any:
        return torch.autocast(self.env.device.type, dtype=self.amp_dtype, enabled=self.cfg.amp)


def train(
    cfg: TrainConfig, *, resume: bool = False, stop_after: int | None = None, allow_imports: bool = False
) -> TrainResult:
    """Train as the recipe says; with ``resume`` continue from the newest checkpoint of the output folder.

    ``allow_imports`` lets the recipe import the modules of ``model.imports`` (it runs their code); without
    it such a recipe is refused before anything is written.

    ``stop_after`` ends the run right after that optimiser step without writing anything more, as a
    kill would (for tests, and for time-limited jobs that are resumed later).
    """
    import_model_modules(cfg.model.imports, allowed=allow_imports)
    if cfg.trainer != "supervised":
        if stop_after is not None:
            raise InputError(f"stop_after applies to the supervised trainer, not to trainer {cfg.trainer}")
        return _train_chat_vlm(cfg, resume)
    env = setup_distributed(cfg.device)
    try:
        return _train(cfg, env, resume, stop_after, allow_imports)
    finally:
        if env.initialised:
            dist.destroy_process_group()


def _train_chat_vlm(cfg: TrainConfig, resume: bool) -> TrainResult:
    """The chat-VLM trainers (GRPO on TRL, DeQA level-token fine-tuning); they run their own process group."""
    if cfg.trainer == "grpo":
        from perceptiq.training.vlm_grpo import train_grpo as run
    else:
        from perceptiq.training.vlm_sft import train_deqa_sft as run
    summary = run(cfg, resume=resume)
    validation = summary.get("validation", {})
    return TrainResult(
        output_dir=output_dir(cfg),
        step=int(summary.get("steps", 0)),
        epoch=math.ceil(summary.get("epoch", 0.0)),
        interrupted=False,
        last_loss=summary.get("last_loss"),
        best_metric=validation.get(cfg.eval.metric),
        best_epoch=None,
        evaluations=[validation] if validation else [],
    )


def _train(
    cfg: TrainConfig, env: DistInfo, resume: bool, stop_after: int | None, allow_imports: bool
) -> TrainResult:
    run = _setup(cfg, env, resume, allow_imports)
    state, accum = run.state, cfg.optim.accumulation_steps
    interrupted, last_loss, t0 = False, None, time.perf_counter()
    while state.epoch < cfg.epochs and state.step < run.total_steps and not interrupted:
        plan = run.data.plan(state.epoch)[: run.steps_per_epoch * accum]
        run.data.train_set.set_epoch(state.epoch)
        micro = iter(make_loader(run.data.train_set, plan[state.batch_in_epoch :], cfg, state.epoch))
        while state.batch_in_epoch < len(plan) and state.step < run.total_steps:
            last_loss = _optimizer_step(run, micro, t0)
            if state.step % cfg.checkpoint.every_steps == 0:
                _save(run)
            if stop_after is not None and state.step >= stop_after:
                interrupted = True
                break
        if not interrupted and state.batch_in_epoch == len(plan):
            _end_epoch(run)
    if not interrupted:
        if state.last_eval_step != state.step:  # stopped by max_steps inside an epoch
            _evaluate(run)
        _finish(run, last_loss)
    for closable in (run.bar, run.board):
        if closable is not None:
            closable.close()
    return TrainResult(run.out, state.step, state.epoch, interrupted, last_loss, state.best_metric,
                       state.best_epoch, run.evaluations)  # fmt: skip


def _setup(cfg: TrainConfig, env: DistInfo, resume: bool, allow_imports: bool) -> _Run:
    """Model, teacher, data, objective, optimiser, averages, logs; the checkpoint restored when resuming."""
    out = output_dir(cfg)
    found = ckpt.load_latest_checkpoint(out / "checkpoints") if resume else None
    if not resume and ckpt.list_checkpoints(out / "checkpoints"):
        raise InputError(
            f"{out} already holds checkpoints: pass --resume to continue, or choose another --out"
        )
    if resume and found is None:
        _log.info("no checkpoint in %s: starting from the beginning", out / "checkpoints")
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
    seed_everything(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)

    model = build_model(cfg.model, allow_imports=allow_imports).to(env.device)
    teacher = load_teacher(cfg.distill.teacher, env.device) if cfg.distill.teacher else None
    data = prepare_data(cfg, env, out, teacher, found is not None, model)
    if data.train_set.descriptors is not None and hasattr(model, "fit_standardisation"):
        labelled = np.isfinite(data.train_set.mos)
        described = data.train_set.descriptors[labelled]  # (n, D) or (n, V, D): every view counts
        mos = torch.from_numpy(data.train_set.mos[labelled])
        if described.ndim == 3:
            mos = mos.repeat_interleave(described.shape[1])
        model.fit_standardisation(
            described.reshape(-1, described.shape[-1]), mos
        )  # deterministic: a resumed run recomputes the same statistics (and restores them anyway)
    objective = build_objective(cfg.loss, data.group_scores)
    if objective.needs_teacher and teacher is None:
        raise InputError("a loss with target 'teacher' needs distill.teacher")
    protocol = validation_protocol(cfg)
    seed_everything(cfg.seed + env.rank)  # each process draws its own dropout masks from here on

    amp_dtype = torch.float16 if env.device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(env.device.type, enabled=cfg.amp and amp_dtype == torch.float16)
    ema = swa = None
    if cfg.ema.enabled:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema.decay), use_buffers=True)
    if cfg.swa.enabled:
        swa = AveragedModel(model, use_buffers=True)  # buffers averaged too: no BatchNorm pass needed
    net: torch.nn.Module = model
    if env.world_size > 1:
        ids = [env.device.index] if env.device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    optimizer = build_optimizer(model, cfg.optim)
    state = _restore(found, cfg, env, model, optimizer, scaler, ema, swa) if found else TrainState()

    steps_per_epoch = len(data.plan(0)) // cfg.optim.accumulation_steps
    if steps_per_epoch == 0:
        raise InputError(
            f"{len(data.train_set)} training images are too few for one step of batch {cfg.data.batch_size} "
            f"x {cfg.optim.accumulation_steps} accumulation x {env.world_size} processes"
        )
    total = steps_per_epoch * cfg.epochs
    total = min(total, cfg.max_steps) if cfg.max_steps else total
    run = _Run(cfg, env, out, model, net, teacher, data, objective, protocol, optimizer, scaler, amp_dtype,
               ema, swa, state, total, steps_per_epoch)  # fmt: skip
    keep = eval_keep = purge = None
    if found is not None:  # log rows written after the checkpoint are redone by this run
        keep, purge = state.step, state.step + 1
        eval_keep = state.step if state.last_eval_step == state.step else state.step - 1
    run.train_log = CsvLog(out / "train_log.csv", env.is_main, keep)
    run.eval_log = CsvLog(out / "eval_log.csv", env.is_main, eval_keep)
    run.board = open_tensorboard(out / "tensorboard", env.is_main and cfg.log.tensorboard, purge)
    run.bar = progress_bar(env.is_main and cfg.log.progress, total, state.step, cfg.name)
    if env.is_main:
        n_val = 0 if data.val_set is None else len(data.val_set)
        _log.info(
            "%s: %d training / %d validation images, %d steps (%d per epoch), effective batch %d, %s x %d",
            cfg.name, len(data.train_set), n_val, total, steps_per_epoch,
            cfg.data.batch_size * cfg.optim.accumulation_steps * env.world_size, env.device, env.world_size,
        )  # fmt: skip
    return run


def _forward_kwargs(cfg: TrainConfig, step: int) -> dict[str, Any]:
    """Per-step draws of ``model.forward_choices`` (the same on every process: a function of seed, step)."""
    rng = np.random.default_rng([cfg.seed, step])
    return {k: v[int(rng.integers(len(v)))] for k, v in sorted(cfg.model.forward_choices.items())}


def _optimizer_step(run: _Run, micro: Iterator[dict[str, torch.Tensor]], t0: float) -> float:
    """One optimiser step over ``accumulation_steps`` micro-batches; returns the loss (process mean)."""
    cfg, state, env = run.cfg, run.state, run.env
    accum = cfg.optim.accumulation_steps
    lr = lr_at(state.step, cfg, total_steps=run.total_steps, steps_per_epoch=run.steps_per_epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    kwargs = _forward_kwargs(cfg, state.step)
    set_train_mode(run.model, cfg.model.freeze_norm)
    total = torch.zeros(1 + len(run.objective.labels), dtype=torch.float64)
    for k in range(accum):
        batch = next(micro)
        images = batch["image"].to(env.device, non_blocking=True)
        sync = k == accum - 1 or env.world_size == 1  # DDP all-reduces gradients on the last micro-batch only
        with contextlib.nullcontext() if sync else run.net.no_sync():
            with run.autocast():
                pred = run.net(images, **kwargs)
                target = teacher_scores(run.teacher, images) if run.objective.needs_teacher else None
            loss, parts = run.objective(pred, batch, target)
            run.scaler.scale(loss / accum).backward()
        total += torch.tensor([loss.item(), *(v.item() for v in parts.values())], dtype=torch.float64) / accum
        state.batch_in_epoch += 1
    if cfg.optim.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.optim.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    state.step += 1
    if env.world_size > 1:  # for the log only: the mean over processes
        dist.all_reduce(total)
        total /= env.world_size
    values = total.tolist()
    row = {"step": state.step, "epoch": state.epoch, "lr": lr, "loss": values[0]}
    row.update(zip(run.objective.labels, values[1:], strict=True))
    run.train_log.write({**row, "time": round(time.perf_counter() - t0, 3)})
    if run.board is not None:
        for key in ("loss", "lr", *run.objective.labels):
            run.board.add_scalar(f"train/{key}", row[key], state.step)
    if run.bar is not None:
        run.bar.update(1)
        run.bar.set_postfix(loss=f"{values[0]:.4f}", lr=f"{lr:.2e}")
    return values[0]


def _evaluate(run: _Run) -> None:
    """Evaluate (each process its share, EMA weights when enabled); rank 0 logs and keeps the best."""
    cfg, state = run.cfg, run.state
    state.last_eval_step = state.step
    if run.data.val_set is None:
        _log.info("no validation images with a MOS: evaluation skipped")
        return
    model = run.ema.module if run.ema is not None and cfg.eval.use_ema else run.model
    result = evaluate(model, run.data.val_set, cfg, run.env.device, run.autocast, run.protocol, run.env)
    if result is not None:
        stats = result.statistics
        row = {"step": state.step, "epoch": state.epoch, **stats}
        run.eval_log.write(row)
        run.evaluations.append(row)
        if run.board is not None:
            for key, value in stats.items():
                run.board.add_scalar(f"val/{key}", value, state.step)
        value = float(stats[cfg.eval.metric])
        if improves(value, state.best_metric, cfg.eval.mode):
            state.best_metric, state.best_epoch = value, state.epoch
            save_model(model, run.out / "best")
        best = float("nan") if state.best_metric is None else state.best_metric
        _log.info(
            "epoch %d step %d: %s %.4f (best %.4f)", state.epoch, state.step, cfg.eval.metric, value, best
        )
    barrier(run.env)


def _end_epoch(run: _Run) -> None:
    """SWA update, evaluation when due, then a checkpoint at the start of the next epoch."""
    cfg, state = run.cfg, run.state
    if run.swa is not None and state.epoch >= cfg.swa.start_epoch:
        run.swa.update_parameters(run.model)
    if (state.epoch + 1) % cfg.eval.every_epochs == 0 or state.epoch + 1 == cfg.epochs:
        _evaluate(run)
    state.epoch += 1
    state.batch_in_epoch = 0
    _save(run)


def _save(run: _Run) -> None:
    """Write the checkpoint of the current step (rank 0; every process contributes its random state)."""
    env = run.env
    rng: list[Any] = [ckpt.rng_state()]
    if env.world_size > 1:
        rng = [None] * env.world_size
        dist.all_gather_object(rng, ckpt.rng_state())
    if env.is_main:
        payload = {
            "format": 1,
            "version": perceptiq.__version__,
            "step": run.state.step,
            "state": dataclasses.asdict(run.state),
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict(),
            "ema": None if run.ema is None else run.ema.state_dict(),
            "swa": None if run.swa is None else run.swa.state_dict(),
            "rng": rng,
            "world_size": env.world_size,
            "config": config_to_dict(run.cfg),
        }
        keep = run.cfg.checkpoint.keep_last
        ckpt.save_checkpoint(run.out / "checkpoints", run.state.step, payload, keep_last=keep)
    barrier(env)


def _restore(
    found: tuple[Path, dict[str, Any]],
    cfg: TrainConfig,
    env: DistInfo,
    model: QualityModel,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    ema: AveragedModel | None,
    swa: AveragedModel | None,
) -> TrainState:
    """Load a checkpoint into the run's objects; returns the saved position."""
    path, saved = found
    changed = _config_changes(saved.get("config", {}), config_to_dict(cfg))
    if changed:
        _log.warning("resuming %s with a changed config: %s", path, "; ".join(changed))
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        problem = str(err).splitlines()[0]
        raise ckpt.CheckpointError(path, f"does not fit this model/optimiser: {problem}") from None
    if saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    for name, average in (("ema", ema), ("swa", swa)):
        if average is not None and saved.get(name) is not None:
            average.load_state_dict(saved[name])
        elif average is not None:
            _log.warning("%s has no %s state: the average starts afresh", path, name.upper())
    if saved.get("world_size") == env.world_size:
        ckpt.set_rng_state(saved["rng"][env.rank])
    else:
        written = saved.get("world_size")
        _log.warning(
            "%s was written by %s processes, not %d: random states reseeded", path, written, env.world_size
        )
        seed_everything(cfg.seed + env.rank + int(saved["step"]))
    state = TrainState(**saved["state"])
    if env.is_main:
        _log.info("resumed from %s (step %d, epoch %d)", path, state.step, state.epoch)
    return state


def _config_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _config_changes(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def _finish(run: _Run, last_loss: float | None) -> None:
    """Save the final (and EMA/SWA) weights and ``summary.json`` (rank 0)."""
    if not run.env.is_main:
        return
    save_model(run.model, run.out / "final")
    if run.ema is not None:
        save_model(run.ema.module, run.out / "ema")
    if run.swa is not None and int(run.swa.n_averaged) > 0:
        save_model(run.swa.module, run.out / "swa")
    evaluations = _read_rows(run.out / "eval_log.csv")  # all of them, also those before a resume
    summary = {
        "name": run.cfg.name,
        "steps": run.state.step,
        "epochs": run.state.epoch,
        "last_loss": last_loss if last_loss is not None and math.isfinite(last_loss) else None,
        "best": {
            "metric": run.cfg.eval.metric,
            "value": run.state.best_metric,
            "epoch": run.state.best_epoch,
        },
        "evaluations": evaluations,
        "world_size": run.env.world_size,
        "perceptiq": perceptiq.__version__,
    }
    text = json.dumps(summary, indent=2, allow_nan=False, default=str)
    (run.out / "summary.json").write_text(text + "\n", encoding="utf-8")


def _read_rows(path: Path) -> list[dict[str, float | None]]:
    """Rows of a CSV log with numbers parsed (NaN and empty cells as None)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))

    def number(text: str) -> float | None:
        value = float(text) if text else math.nan
        return value if math.isfinite(value) else None

    return [{k: (int(v) if k in ("step", "epoch") else number(v)) for k, v in r.items()} for r in rows]
