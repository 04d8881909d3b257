"""What the chat-VLM trainers share (``trainer: grpo`` on TRL, ``trainer: deqa_sft`` on transformers'
Trainer).

A recipe names a chat-VLM family (``model.name: vlm_reasoning`` or ``vlm_levels``) with
``model.options.checkpoint`` (a ``save_pretrained`` folder or a hub id in the local cache); the family
opens the checkpoint, so training starts from exactly what ``perceptiq score`` would score with. The
recipe's sections map onto the trainer's arguments (:func:`hf_arguments`): ``optim.lr`` ->
``learning_rate``, ``optim.grad_clip`` -> ``max_grad_norm``, ``optim.accumulation_steps`` ->
``gradient_accumulation_steps``, ``schedule`` (constant / cosine with linear warm-up in steps),
``checkpoint.every_steps`` / ``keep_last`` -> ``save_steps`` / ``save_total_limit``, ``amp`` -> bf16
on a GPU. Checkpoints are the trainer's own (``OUT/checkpoints/checkpoint-STEP``), so ``--resume``
continues from the newest one with the optimiser, scheduler and random states it saved.

Outputs: ``OUT/final/`` (the trained VLM, LoRA adapters merged, and its processor: a checkpoint the
``vlm_reasoning`` / ``vlm_levels`` families load), ``OUT/train_log.csv`` (the trainer's log rows),
``OUT/config.yaml`` and ``OUT/summary.json`` (with the validation statistics when there are validation
rows).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from perceptiq.errors import InputError
from perceptiq.evaluation.protocols import ScoreData
from perceptiq.training.components import output_dir, validation_protocol
from perceptiq.training.config import TrainConfig, dump_config
from perceptiq.training.vlm_data import vlm_training_rows

__all__ = [
    "TRAINER_FAMILIES",
    "open_chat_vlm",
    "training_rows",
    "hf_arguments",
    "lora_config",
    "newest_checkpoint",
    "finish_run",
    "prepare_output",
    "restore_weights",
]

_log = logging.getLogger("perceptiq.training")

TRAINER_FAMILIES = {"grpo": "vlm_reasoning", "deqa_sft": "vlm_levels"}
"""The model family each chat-VLM trainer trains and saves a checkpoint for."""


def open_chat_vlm(cfg: TrainConfig) -> Any:
    """The perceptiq chat-VLM model of the recipe (its ``vlm`` and ``processor`` are what is trained)."""
    from perceptiq.models import create_model

    family = TRAINER_FAMILIES[cfg.trainer]
    if cfg.model.name != family:
        raise InputError(
            f"trainer {cfg.trainer} trains a {family} model; the recipe's model.name is {cfg.model.name}"
        )
    if not cfg.model.options.get("checkpoint"):
        raise InputError(
            f"trainer {cfg.trainer} needs model.options.checkpoint (a chat VLM folder or hub id)"
        )
    if cfg.model.weights is not None or cfg.model.freeze or cfg.model.forward_choices:
        raise InputError(
            f"trainer {cfg.trainer} starts from model.options.checkpoint; model.weights, model.freeze and "
            "model.forward_choices do not apply (use lora.enabled to train adapters only)"
        )
    return create_model(family, **cfg.model.options)


def training_rows(cfg: TrainConfig, std_default: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Training rows and validation rows (None when there are none) with MOS rescaled per dataset."""
    d = cfg.data
    if not d.train:
        raise InputError("data.train must name a manifest (image, mos, optional dataset, mos_std and split)")
    train = vlm_training_rows(d.train, d.train_split, std_default=std_default)
    val_source, val_split = (d.val, None) if d.val else (d.train, d.val_split)
    try:
        val = vlm_training_rows(val_source, val_split, std_default=std_default)
    except InputError:
        if d.val:
            raise
        val = None  # the training manifest has no validation rows
    return train, val


def _device_flags(cfg: TrainConfig) -> dict[str, Any]:
    want = cfg.device
    cuda = torch.cuda.is_available() and (want == "auto" or want.startswith("cuda"))
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {want} requested but CUDA is not available")
    return {"use_cpu": not cuda, "bf16": bool(cfg.amp and cuda)}


def hf_arguments(cfg: TrainConfig, out: Path) -> dict[str, Any]:
    """Keyword arguments of ``transformers.TrainingArguments`` (and TRL's configs) from the recipe."""
    if cfg.schedule.name == "step" or cfg.schedule.unit != "steps":
        raise InputError("chat-VLM trainers take schedule.name constant or cosine with schedule.unit steps")
    report = []
    if cfg.log.tensorboard:
        try:
            import tensorboard  # noqa: F401

            report = ["tensorboard"]
        except ImportError:
            _log.info("tensorboard is not installed: logging to train_log.csv only")
    return {
        "output_dir": str(out / "checkpoints"),
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "learning_rate": cfg.optim.lr,
        "weight_decay": cfg.optim.weight_decay,
        "adam_beta1": cfg.optim.betas[0],
        "adam_beta2": cfg.optim.betas[1],
        "adam_epsilon": cfg.optim.eps,
        "optim": "adamw_torch",
        "max_grad_norm": cfg.optim.grad_clip,
        "gradient_accumulation_steps": cfg.optim.accumulation_steps,
        "num_train_epochs": cfg.epochs,
        "max_steps": cfg.max_steps if cfg.max_steps > 0 else -1,
        "lr_scheduler_type": "cosine" if cfg.schedule.name == "cosine" else "constant_with_warmup",
        "warmup_steps": cfg.schedule.warmup,
        "save_strategy": "steps",
        "save_steps": cfg.checkpoint.every_steps,
        "save_total_limit": cfg.checkpoint.keep_last,
        "logging_steps": 1,
        "report_to": report,
        "disable_tqdm": not cfg.log.progress,
        "remove_unused_columns": False,
        "dataloader_num_workers": cfg.data.num_workers,
        **_device_flags(cfg),
    }


def lora_config(cfg: TrainConfig) -> Any:
    """peft's ``LoraConfig`` of the recipe's ``lora`` section, or None when LoRA is off."""
    section = cfg.lora
    if not section.enabled:
        return None
    try:
        from peft import LoraConfig
    except ImportError as err:
        raise InputError("lora.enabled needs `pip install peft`") from err
    return LoraConfig(
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        target_modules=list(section.target_modules),
        task_type="CAUSAL_LM",
    )


def newest_checkpoint(out: Path, resume: bool) -> str | None:
    """The newest complete trainer checkpoint to resume from (``--resume``), or None to start afresh; a
    checkpoint a killed run was still writing (no ``trainer_state.json``, the trainer's last file) is
    skipped."""
    if not resume:
        return None
    folder = out / "checkpoints"
    steps = sorted(
        (int(p.name.split("-", 1)[1]), p)
        for p in (folder.glob("checkpoint-*") if folder.is_dir() else [])
        if p.name.split("-", 1)[1].isdigit()
    )
    for _, path in reversed(steps):
        if (path / "trainer_state.json").is_file():  # written last: the checkpoint is complete
            return str(path)
    _log.info("no complete checkpoint in %s: starting from the beginning", folder)
    return None


def restore_weights(model: Any, folder: str) -> bool:
    """Load the full VLM weights of a trainer checkpoint into ``model``; False for LoRA (the trainer restores
    adapters itself).

    ``save_pretrained`` may write a model's weights under its checkpoint names (Qwen2-VL: ``visual.*``,
    ``model.layers.*``) while the module names differ; the trainer's own loader reads the raw names and only
    warns about the mismatch, so a resumed run would go on from the initial weights. Reading the folder with
    ``from_pretrained`` applies the model's name conversion.
    """
    if hasattr(model, "peft_config"):
        return False
    from transformers import AutoModelForImageTextToText

    inner = getattr(model, "module", model)  # a DDP wrapper
    param = next(inner.parameters())
    saved = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True, dtype=param.dtype)
    inner.load_state_dict(saved.state_dict(), strict=True)
    return True


def _merged(model: Any) -> Any:
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def _validate(cfg: TrainConfig, folder: Path, rows: pd.DataFrame) -> dict[str, Any]:
    """Protocol statistics of the saved model on the validation rows (perceptiq's own scoring path), over the
    images it scored; ``unscored_images`` counts those without a score (no well-formed answer)."""
    from perceptiq.io.images import read_image
    from perceptiq.models import create_model

    options = {**cfg.model.options, "checkpoint": str(folder)}
    model = create_model(TRAINER_FAMILIES[cfg.trainer], **options)
    device = next(model.vlm.parameters()).device if _device_flags(cfg)["use_cpu"] else torch.device("cuda")
    model.to(device)
    with torch.no_grad():
        pred = np.array([float(model(read_image(p, device=device))[0]) for p in rows["image"]])
    scored = np.isfinite(pred)
    summary: dict[str, Any] = {"images": int(len(pred)), "unscored_images": int((~scored).sum())}
    if scored.sum() < 3:  # e.g. a reasoning model whose answers hold no number yet
        return summary
    result = validation_protocol(cfg).evaluate(
        ScoreData(
            rows["image"].to_numpy()[scored], pred[scored], rows["mos"].to_numpy(dtype=np.float64)[scored]
        )
    )
    return {**summary, **{k: float(v) if np.isfinite(v) else None for k, v in result.statistics.items()}}


def finish_run(cfg: TrainConfig, trainer: Any, processor: Any, out: Path, val: pd.DataFrame | None) -> dict:
    """Save the final VLM and processor, the log and the summary (main process only); returns the summary."""
    if not trainer.is_world_process_zero():
        return {}
    final = out / "final"
    _merged(trainer.model).save_pretrained(final)
    processor.save_pretrained(final)
    pd.DataFrame(trainer.state.log_history).to_csv(out / "train_log.csv", index=False)
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    summary: dict[str, Any] = {
        "trainer": cfg.trainer,
        "steps": int(trainer.state.global_step),
        "epoch": float(trainer.state.epoch or 0.0),
        "last_loss": float(losses[-1]) if losses else None,
        "final": str(final),
        "model": TRAINER_FAMILIES[cfg.trainer],
    }
    if val is not None and len(val):
        summary["validation"] = _validate(cfg, final, val)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def prepare_output(cfg: TrainConfig) -> Path:
    """The run's output folder with the recipe written into it."""
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    return out
