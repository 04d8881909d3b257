"""Typed training recipes: :class:`TrainConfig` and its sections, strict YAML, ``key.sub=value`` overrides.

A recipe is a YAML mapping whose keys mirror the dataclasses below; every field has a ``help`` text in
its metadata (``perceptiq train --help-config`` prints them). Loading is strict: an unknown key, a
duplicate key or a value of the wrong type is a :class:`ConfigError` naming the file (or the ``--set``
option) and the key. Numbers written as ``1e-3`` (a string for YAML 1.1 parsers) are accepted for
float fields. Relative paths in a recipe are taken relative to the current working directory.

A recipe is data, not code: modules named in ``model.imports`` other than perceptiq's own are imported
only when the caller allows it (:func:`import_model_modules`), and never from the working directory.

Packaged recipes live in ``perceptiq/configs/*.yaml`` and are found by name (``face_distill``); any other
argument is a path.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from perceptiq.errors import DataFileError
from perceptiq.functional.patches import IMAGE_VIEWS

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
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "apply_overrides",
    "resolve_recipe",
    "list_recipes",
    "read_yaml",
    "describe_fields",
    "import_model_modules",
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
class TrainConfig:
    """A training recipe."""

    name: str = _f("run", "recipe name (used in the default output directory)")
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


# ------------------------------------------------------------------------------------------ strict YAML


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys in a mapping."""

    source = "<yaml>"


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(
                loader.source, f"line {line}: duplicate key {key!r} (first on line {seen[key]})"
            )
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str, source: str | Path = "<yaml>") -> Any:
    """Parse YAML with the safe loader, refusing duplicate keys; errors name ``source``."""
    loader_cls = type("_Loader", (_StrictLoader,), {"source": str(source)})
    try:
        return yaml.load(text, Loader=loader_cls)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(source, f"not valid YAML: {str(err).splitlines()[0]}") from None


# ---------------------------------------------------------------------------------- typed conversion


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_name(a) for a in get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(tp) if a is not Ellipsis)}]"
    return "section" if dataclasses.is_dataclass(tp) else getattr(tp, "__name__", str(tp))


def _scalar(value: Any, tp: type, source: str, key: str) -> Any:
    bad = ConfigError(source, f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if isinstance(value, bool):
        raise bad
    if tp is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float | str):
            try:
                number = float(value)
            except ValueError:
                raise bad from None
            if number.is_integer():
                return int(number)
        raise bad
    if tp is float:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise ConfigError(source, f"{key}: unsupported field type {tp!r}")


def _coerce(value: Any, tp: Any, source: str, key: str) -> Any:
    """``value`` checked and converted to the annotation ``tp``; errors name ``source`` and ``key``."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, source, key)
            except ConfigError:
                continue
        raise ConfigError(source, f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(source, f"{key}: must be one of {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, source, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(source, f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], source, f"{key}.{i}") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(source, f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(
            _coerce(v, a, source, f"{key}.{i}") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(source, f"{key}: expected a mapping with string keys, got {value!r}")
        return {k: _coerce(v, args[1], source, f"{key}.{k}") for k, v in value.items()}
    return _scalar(value, tp, source, key)


def _unknown_key(cls: type, name: object, source: str, key: str) -> ConfigError:
    known = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(source, f"{key}: unknown key{hint} (known: {', '.join(known)})")


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    where = prefix or "top level"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(source, f"{where}: expected a mapping of {cls.__name__} keys, got {data!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in names:
            raise _unknown_key(cls, name, source, key)
        kwargs[name] = _coerce(value, hints[name], source, key)
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any], source: str | Path = "<dict>") -> TrainConfig:
    """Build a :class:`TrainConfig` from a plain mapping (strict: unknown keys and wrong types raise)."""
    cfg = _build(TrainConfig, data, str(source), "")
    _check(cfg, str(source))
    return cfg


def _check(cfg: TrainConfig, source: str) -> None:
    positive = {
        "epochs": cfg.epochs,
        "data.batch_size": cfg.data.batch_size,
        "data.group_size": cfg.data.group_size,
        "optim.accumulation_steps": cfg.optim.accumulation_steps,
        "checkpoint.every_steps": cfg.checkpoint.every_steps,
        "checkpoint.keep_last": cfg.checkpoint.keep_last,
        "eval.every_epochs": cfg.eval.every_epochs,
        "eval.batch_size": cfg.eval.batch_size,
        "schedule.step_size": cfg.schedule.step_size,
    }
    non_negative = {
        "max_steps": cfg.max_steps,
        "data.crop_size": cfg.data.crop_size,
        "data.resize_short": cfg.data.resize_short,
        "data.num_workers": cfg.data.num_workers,
        "data.labelled_per_batch": cfg.data.labelled_per_batch,
        "schedule.warmup": cfg.schedule.warmup,
        "schedule.period": cfg.schedule.period,
        "optim.lr": cfg.optim.lr,
        "optim.grad_clip": cfg.optim.grad_clip,
        "swa.start_epoch": cfg.swa.start_epoch,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(source, f"{key}: must be > 0, got {value}")
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(source, f"{key}: must be >= 0, got {value}")
    if not 0.0 < cfg.ema.decay < 1.0:
        raise ConfigError(source, f"ema.decay: must lie in (0, 1), got {cfg.ema.decay}")
    if not 0.0 <= cfg.schedule.warmup_start_factor <= 1.0:
        raise ConfigError(
            source,
            f"schedule.warmup_start_factor: must lie in [0, 1], got {cfg.schedule.warmup_start_factor}",
        )
    if not cfg.loss:
        raise ConfigError(source, "loss: needs at least one term, e.g. [{name: mse}]")
    d = cfg.data
    unknown = [v for v in d.descriptor_views if v not in IMAGE_VIEWS]
    if unknown or not d.descriptor_views or len(set(d.descriptor_views)) < len(d.descriptor_views):
        raise ConfigError(
            source,
            f"data.descriptor_views: distinct names among {', '.join(IMAGE_VIEWS)}, got {d.descriptor_views}",
        )
    if d.descriptor_views != ["full"] and not d.descriptor_cache:
        raise ConfigError(source, "data.descriptor_views needs data.descriptor_cache")
    if d.group_by == "method" and (d.batch_size % d.group_size or d.batch_size < 2 * d.group_size):
        raise ConfigError(
            source,
            f"data.batch_size ({d.batch_size}) must be a multiple of data.group_size ({d.group_size}) "
            "and hold at least two groups when data.group_by is method",
        )


def config_to_dict(cfg: Any) -> Any:
    """A plain, YAML/JSON-ready mapping of a config (tuples become lists)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, list | tuple):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    return cfg


def dump_config(cfg: TrainConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML (loadable again with :func:`load_config`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------- overrides


def _field_type(tp: Any, name: str, source: str, key: str) -> Any:
    """The annotation of child ``name`` of a value annotated ``tp`` (dataclass, dict or list)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        tp, origin, args = non_none[0], get_origin(non_none[0]), get_args(non_none[0])
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        if name not in hints:
            raise _unknown_key(tp, name, source, key)
        return hints[name]
    if origin is dict:
        return args[1]
    if origin is list:
        if not name.isdigit():
            raise ConfigError(source, f"{key}: list items are addressed by index, got {name!r}")
        return args[0]
    raise ConfigError(source, f"{key}: {_type_name(tp)} has no sub-keys")


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a raw recipe mapping (values parsed as YAML, type-checked).

    List items are addressed by index (``loss.0.weight=2``); a whole list or mapping can be given in YAML
    flow style (``loss=[{name: mse}]``). Returns a new mapping; ``data`` is not changed.
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        source = f"--set {item}"
        if "=" not in item:
            raise ConfigError(source, "expected KEY=VALUE, e.g. optim.lr=1e-3")
        path_text, raw = item.split("=", 1)
        parts = [p.strip() for p in path_text.strip().split(".")]
        if not all(parts):
            raise ConfigError(source, f"malformed key {path_text!r}")
        tp: Any = TrainConfig
        node: Any = out
        for depth, name in enumerate(parts):
            key = ".".join(parts[: depth + 1])
            tp = _field_type(tp, name, source, key)
            last = depth == len(parts) - 1
            if isinstance(node, list):
                index = int(name)
                if index >= len(node):
                    raise ConfigError(source, f"{key}: index {index} out of range (list of {len(node)})")
                if last:
                    node[index] = _coerce(read_yaml(raw, source), tp, source, key)
                else:
                    node = node[index]
                continue
            if last:
                node[name] = config_to_dict(_coerce(read_yaml(raw, source), tp, source, key))
            else:
                if not isinstance(node.get(name), dict | list):
                    node[name] = {} if node.get(name) is None else node[name]
                node = node[name]
    return out


# ------------------------------------------------------------------------------------------- recipes


def _recipe_dir() -> Any:
    return resources.files("perceptiq").joinpath("configs")


def list_recipes() -> list[str]:
    """Names of the packaged recipes (``perceptiq/configs/*.yaml``)."""
    folder = _recipe_dir()
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_recipe(name_or_path: str | Path) -> tuple[str, str]:
    """``(text, source)`` of a recipe given as a file path or a packaged recipe name."""
    path = Path(name_or_path)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    text = str(name_or_path)
    stem = text[: -len(".yaml")] if text.endswith(".yaml") else text
    if "/" not in stem and "\\" not in stem:
        packaged = _recipe_dir().joinpath(f"{stem}.yaml")
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8"), f"recipe {stem} ({packaged})"
    names = list_recipes()
    close = difflib.get_close_matches(stem, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        text, f"no such file and no packaged recipe of that name{hint} (recipes: {', '.join(names)})"
    )


def load_config(name_or_path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Load a recipe (file path or packaged name), apply ``key=value`` overrides and validate it."""
    text, source = resolve_recipe(name_or_path)
    data = read_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, "a recipe must be a YAML mapping at the top level")
    if overrides:
        _build(TrainConfig, data, source, "")  # report the file's own errors under its name first
        data = apply_overrides(data, overrides)
        source = f"{source} with --set {' '.join(overrides)}"
    return config_from_dict(data, source)


def describe_fields(cls: type = TrainConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(key, type, default, help)`` of every field, sections flattened (for ``--help-config``)."""
    rows = []
    hints = get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(describe_fields(tp, f"{key}."))
            continue
        default = config_to_dict(getattr(instance, f.name))
        rows.append(
            (
                key,
                _type_name(tp),
                yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip(),
                f.metadata.get("help", ""),
            )
        )
        if get_origin(tp) is list and dataclasses.is_dataclass(get_args(tp)[0]):
            rows.extend(describe_fields(get_args(tp)[0], f"{key}.N."))
    return rows


# ------------------------------------------------------------------------------------------- imports


def _is_working_dir(entry: str, cwd: str) -> bool:
    """Whether a ``sys.path`` entry names the working directory ('' and '.' do)."""
    return entry in ("", ".") or os.path.abspath(entry) == cwd


def import_model_modules(modules: Sequence[str], *, allowed: bool) -> None:
    """Import the modules of ``model.imports`` (to register custom model families).

    perceptiq's own modules (``perceptiq.*``) are always imported. Any other module is refused unless
    ``allowed`` (the caller's explicit consent: ``perceptiq train --allow-imports``), since importing runs
    its code. The working directory is taken off ``sys.path`` during the imports, so a file lying there is
    never run; a module that cannot be imported is a :class:`ConfigError`.
    """
    foreign = [m for m in modules if m != "perceptiq" and not m.startswith("perceptiq.")]
    if foreign and not allowed:
        raise ConfigError(
            "model.imports",
            f"the recipe asks to import {', '.join(foreign)}, which runs their code; pass --allow-imports "
            "(Python: allow_imports=True) if you trust them",
        )
    if not modules:
        return
    cwd = os.path.abspath(os.getcwd())
    saved = list(sys.path)
    sys.path[:] = [entry for entry in saved if not _is_working_dir(entry, cwd)]
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError as err:
                raise ConfigError(
                    "model.imports",
                    f"cannot import {name!r}: {err} (install it or put its folder on PYTHONPATH; the working "
                    "directory is not searched)",
                ) from None
    finally:
        sys.path[:] = saved
