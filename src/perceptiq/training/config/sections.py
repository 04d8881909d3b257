"""The typed training recipe: :class:`TrainConfig` and its sections, each field with a ``help`` text.

The dataclasses only hold values; reading, checking and overriding them is in
:mod:`perceptiq.training.config.strict` and :mod:`perceptiq.training.config.recipes`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from perceptiq.errors import DataFileError

__all__ = [
    "ConfigError",
    "ModelSection",
    "DataSection",
    "OptimSection",
    "ScheduleSection",
    "LossTerm",
    "EvalSection",
    "CheckpointSection",
    "EmaSection",
    "SwaSection",
    "DistillSection",
    "LogSection",
    "GRPOSection",
    "DeQASection",
    "LoraSection",
    "TrainConfig",
]


class ConfigError(DataFileError):
    """A recipe is malformed; the message names the file (or ``--set``) and the key."""


def _f(default: Any, help: str) -> Any:  # noqa: A002 - "help" is the metadata key of the convention
    """A dataclass field with ``metadata={"help": help}`` (mutable defaults become factories)."""
    if dataclasses.is_dataclass(default):
        return field(default_factory=type(default), metadata={"help": help})
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelSection:
    """The model to train."""

    name: str = _f("face_lite_mobilenetv3", "registered model variant (perceptiq.models.list_models())")
    options: dict[str, Any] = _f({}, "overrides of the variant's config fields (e.g. backbone, input_size)")
    weights: str | None = _f(
        None, "initial perceptiq weights (directory with config.json + model.safetensors)"
    )
    freeze_norm: bool = _f(
        False,
        "keep BatchNorm layers in eval mode (running statistics frozen; their affine weights still train); "
        "makes a DDP run equal to a one-process run, whose batch statistics would otherwise differ",
    )
    forward_choices: dict[str, list[Any]] = _f(
        {},
        "keyword arguments of forward drawn uniformly at every training step, "
        "e.g. {max_num_patches: [4624, 5184, 5776]} (QA-Veteran, Li et al., ISRG-Q report, 2025)",
    )
    freeze: list[str] = _f([], "parameters kept fixed: fnmatch patterns of their names (e.g. backbone.*)")
    imports: list[str] = _f(
        [],
        "modules imported before the model is built (to register custom families); modules other than "
        "perceptiq's own are refused unless allowed (perceptiq train --allow-imports, Python: "
        "train(..., allow_imports=True)); the working directory is never searched",
    )


@dataclass
class DataSection:
    """Training and validation images (manifest tables, see perceptiq.data.manifest)."""

    train: str = _f("", "manifest of the training images (CSV/JSONL/Parquet)")
    val: str | None = _f(None, "manifest of the validation images (default: rows of `train` in val_split)")
    train_split: str | None = _f("train", "value of the split column used for training (null: all rows)")
    val_split: str = _f("val", "value of the split column used for validation")
    drop_invalid: bool = _f(
        False,
        "drop manifest rows whose image file does not exist or that lack a finite MOS where one is needed "
        "(logged with their count); by default such rows are an error naming the manifest and the rows",
    )
    crop_size: int = _f(224, "side of the square training crop and of the centre crop at evaluation")
    resize_short: int = _f(0, "resize the shorter side to this first (0: keep the size)")
    hflip: bool = _f(True, "random horizontal flips during training")
    batch_size: int = _f(
        16, "images per process per micro-batch (effective batch = this x processes x accum)"
    )
    num_workers: int = _f(2, "data-loader worker processes (0: load in the training process)")
    group_by: Literal["method", "dataset"] | None = _f(
        None,
        "'method': every batch holds whole groups of images of one method (calibration from model rankings, "
        "Chen et al., Learning from Model Rankings, 2025); "
        "'dataset': every batch holds rows of one dataset (manifest column dataset), so correlation and "
        "ranking losses compare images of one MOS scale only (multi-dataset training, no realignment)",
    )
    group_size: int = _f(
        8,
        "images per method in a grouped batch (B of eq. 4 in Chen et al., Learning from Model Rankings, "
        "2025)",
    )
    method_scores: str | None = _f(
        None,
        "global ranking of the methods: JSON of `perceptiq rank --json`, or a table with method and "
        "score columns (higher = better)",
    )
    labelled_per_batch: int = _f(
        0,
        "grouped batches: extra images with a MOS and no ranked method per batch (Chen et al., Learning "
        "from Model Rankings, 2025, eq. 6)",
    )
    descriptor_cache: str | None = _f(
        None,
        "train the head of a model with a fixed descriptor (e.g. nss_mlp) on model.features of whole "
        "images, computed once and cached in this folder (shared between runs); random crops and flips are "
        "off (see descriptor_views)",
    )
    descriptor_views: list[str] = _f(
        ["full"],
        "with data.descriptor_cache: views of each training image whose descriptors are cached (full, "
        "hflip, crop_tl, crop_tr, crop_bl, crop_br); each epoch draws every training image as one of them "
        "(seeded by seed, epoch and row); the standardisation sees all views, validation the full image",
    )


@dataclass
class OptimSection:
    """Optimiser and gradient handling."""

    name: Literal["adamw", "adam"] = _f("adamw", "adamw (decoupled weight decay) or adam (L2 penalty)")
    lr: float = _f(1e-4, "peak learning rate")
    weight_decay: float = _f(1e-2, "weight decay")
    betas: tuple[float, float] = _f((0.9, 0.999), "Adam betas")
    eps: float = _f(1e-8, "Adam epsilon")
    grad_clip: float = _f(0.0, "clip the global gradient norm to this (0: no clipping)")
    accumulation_steps: int = _f(1, "micro-batches per optimiser step (gradient accumulation)")


@dataclass
class ScheduleSection:
    """Learning-rate schedule: linear warm-up, then constant, cosine or step decay (see lr_at)."""

    name: Literal["constant", "cosine", "step"] = _f("cosine", "schedule after the warm-up")
    unit: Literal["steps", "epochs"] = _f(
        "steps", "time unit of warmup/period/step_size: optimiser steps, or whole epochs (piecewise constant)"
    )
    warmup: int = _f(0, "length of the linear warm-up (torch LinearLR)")
    warmup_start_factor: float = _f(0.1, "learning-rate factor at the start of the warm-up")
    period: int = _f(0, "cosine T_max after the warm-up (0: until the end of training)")
    min_lr: float = _f(0.0, "cosine floor (eta_min)")
    step_size: int = _f(1, "step decay: multiply by gamma every step_size units")
    gamma: float = _f(0.1, "step decay factor")


@dataclass
class LossTerm:
    """One named loss of the weighted sum."""

    name: str = _f("mse", "loss name (perceptiq.training.objective.LOSSES)")
    weight: float = _f(1.0, "weight in the sum")
    target: Literal["mos", "teacher", "method"] = _f(
        "mos", "what the prediction is compared with: MOS, the teacher's score, or the method ranking"
    )
    options: dict[str, Any] = _f({}, "keyword options of the loss (e.g. sigma, alpha)")


@dataclass
class EvalSection:
    """Validation after every epoch."""

    protocol: str = _f("generic", "evaluation protocol (perceptiq.list_protocols())")
    protocol_options: dict[str, Any] = _f({}, "options of the protocol (e.g. mappings: [])")
    metric: str = _f("srcc", "statistic used to keep the best model")
    mode: Literal["max", "min"] = _f("max", "whether a larger or a smaller metric is better")
    every_epochs: int = _f(1, "evaluate every this many epochs (and after the last one)")
    batch_size: int = _f(16, "images per evaluation batch")
    input: Literal["center_crop", "policy"] = _f(
        "center_crop", "centre crop of data.crop_size, or the model's own input policy (model.score)"
    )
    use_ema: bool = _f(True, "evaluate (and keep as best) the EMA weights when EMA is enabled")


@dataclass
class CheckpointSection:
    """Resumable checkpoints (written atomically)."""

    every_steps: int = _f(500, "write a checkpoint every this many optimiser steps (and at each epoch end)")
    keep_last: int = _f(2, "number of most recent checkpoints kept")


@dataclass
class EmaSection:
    """Exponential moving average of the weights (torch.optim.swa_utils.AveragedModel)."""

    enabled: bool = _f(False, "keep an EMA of the weights (buffers included), updated every step")
    decay: float = _f(0.999, "EMA decay per optimiser step")


@dataclass
class SwaSection:
    """Stochastic weight averaging (equal-weight average of the end-of-epoch weights, Ma et al., VQualA 2025
    FIQA report)."""

    enabled: bool = _f(False, "average the weights at the end of every epoch from start_epoch on")
    start_epoch: int = _f(0, "first epoch (0-based) whose weights enter the average")


@dataclass
class DistillSection:
    """Teacher -> student distillation and self-training on pseudo-labels (Ma et al., VQualA 2025 FIQA
    report)."""

    teacher: str | None = _f(
        None, "perceptiq weights of the teacher (needed by target: teacher and unlabelled)"
    )
    unlabelled: str | None = _f(
        None, "folder of unlabelled images, pseudo-labelled by the teacher before training"
    )
    pseudo_dataset: str = _f("pseudo", "dataset name of the pseudo-labelled rows")


@dataclass
class LogSection:
    """Logs: CSV always, TensorBoard when installed, a progress bar."""

    tensorboard: bool = _f(True, "write TensorBoard events (skipped with a note when tensorboard is missing)")
    progress: bool = _f(True, "show a tqdm progress bar")


@dataclass
class GRPOSection:
    """Reinforcement learning to rank with GRPO on TRL (trainer: grpo; Wu et al., VisualQuality-R1, 2025)."""

    num_generations: int = _f(6, "K: answers sampled per image (the paper's KADID-10K script: 6)")
    beta: float = _f(
        0.04, "weight of the k3 KL penalty to the frozen reference model (0: no reference model)"
    )
    epsilon: float = _f(0.2, "PPO clipping range of the probability ratio")
    temperature: float = _f(1.0, "sampling temperature of the answers")
    max_completion_length: int = _f(256, "the most new tokens of one answer")
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = _f(
        "grpo",
        "token aggregation of TRL's loss; grpo: mean over each answer's tokens, then over answers "
        "(the paper)",
    )
    reward: Literal["fidelity", "binary"] = _f(
        "fidelity", "ranking reward: the continuous fidelity of eq. 3, or the binary ablation (Table 4)"
    )
    method: Literal["mean", "average"] = _f(
        "mean", "comparative probability: against the partner's mean score (eq. 1) or all its scores (eq. 7)"
    )
    variance: float | None = _f(
        None, "fix every image's score variance to this (1: Thurstone Case V ablation)"
    )
    format_weight: float = _f(1.0, "weight of the format reward (1: the reference's unweighted sum)")
    malformed: Literal["reference", "failure_reward"] = _f(
        "reference",
        "score of an answer without a number: a random integer in 1..5 (the reference code), or none "
        "(the answer gets failure_reward and is left out of the group statistics)",
    )
    failure_reward: float = _f(0.0, "ranking reward of a malformed answer when malformed: failure_reward")


@dataclass
class DeQASection:
    """Level-token fine-tuning with DeQA-Score soft labels (trainer: deqa_sft; You et al., 2025)."""

    density: Literal["pdf", "cdf"] = _f(
        "pdf", "level masses of the soft label: Gaussian density at 5..1 (KonIQ, KADID) or bin masses (SPAQ)"
    )
    weight_softkl: float = _f(
        1.0, "weight of the soft-label KL at the level token, relative to the answer CE"
    )
    answer: str = _f(
        "The quality of the image is {level}.",
        "the answer the model is trained to give ({level}: a level word)",
    )
    default_std: float = _f(
        0.0,
        "rating std used when the manifest has no mos_std column (below 0.2 the soft label is the DeQA "
        "two-level split of the MOS)",
    )


@dataclass
class LoraSection:
    """Low-rank adapters through peft (trainers grpo and deqa_sft); merged into the saved model."""

    enabled: bool = _f(False, "train LoRA adapters instead of all weights")
    r: int = _f(16, "adapter rank")
    alpha: int = _f(32, "adapter scaling numerator (lora_alpha)")
    dropout: float = _f(0.05, "dropout on the adapter input")
    target_modules: list[str] = _f(
        ["q_proj", "k_proj", "v_proj", "o_proj"], "names of the linear layers that get adapters"
    )


@dataclass
class TrainConfig:
    """A training recipe."""

    name: str = _f("run", "recipe name (used in the default output directory)")
    trainer: Literal["supervised", "grpo", "deqa_sft"] = _f(
        "supervised",
        "supervised: perceptiq's own loop (losses on predicted scores); grpo: reinforcement learning to rank "
        "of a chat VLM on TRL's GRPOTrainer; deqa_sft: level-token fine-tuning of a chat VLM (DeQA-Score)",
    )
    seed: int = _f(0, "seed of python, numpy and torch, of the data order and of the augmentations")
    epochs: int = _f(1, "number of passes over the training data")
    max_steps: int = _f(0, "stop after this many optimiser steps (0: run all epochs)")
    device: str = _f("auto", "auto (cuda when available), cpu, cuda, cuda:1, ...")
    amp: bool = _f(False, "automatic mixed precision: float16 + GradScaler on CUDA, bfloat16 on CPU")
    deterministic: bool = _f(False, "torch.use_deterministic_algorithms(True)")
    output_dir: str = _f("runs/{name}", "where logs, checkpoints and weights go ({name} is replaced)")
    model: ModelSection = _f(ModelSection(), "the model")
    data: DataSection = _f(DataSection(), "the data")
    optim: OptimSection = _f(OptimSection(), "the optimiser")
    schedule: ScheduleSection = _f(ScheduleSection(), "the learning-rate schedule")
    loss: list[LossTerm] = _f([], "weighted sum of named losses")
    eval: EvalSection = _f(EvalSection(), "the evaluation")
    checkpoint: CheckpointSection = _f(CheckpointSection(), "the checkpoints")
    ema: EmaSection = _f(EmaSection(), "EMA of the weights")
    swa: SwaSection = _f(SwaSection(), "SWA of the weights")
    distill: DistillSection = _f(DistillSection(), "distillation and self-training")
    log: LogSection = _f(LogSection(), "logging")
    grpo: GRPOSection = _f(GRPOSection(), "GRPO settings (trainer: grpo)")
    deqa: DeQASection = _f(DeQASection(), "DeQA soft-label fine-tuning settings (trainer: deqa_sft)")
    lora: LoraSection = _f(LoraSection(), "LoRA adapters (trainers grpo and deqa_sft)")
