"""Strict reading of recipes: YAML without duplicate keys, values checked and converted to the field types,
the range checks of :class:`TrainConfig`, ``key.sub=value`` overrides, and the way back to plain data.

Every error is a :class:`ConfigError` naming the file (or the ``--set`` option) and the key. Numbers
written as ``1e-3`` (a string for YAML 1.1 parsers) are accepted for float fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from perceptiq.functional.patches import IMAGE_VIEWS
from perceptiq.training.config.sections import ConfigError, TrainConfig

__all__ = [
    "read_yaml",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "apply_overrides",
    "describe_fields",
    "build_section",
]


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
        return build_section(tp, value, source, key)
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


def build_section(cls: type, data: Any, source: str, prefix: str) -> Any:
    """The dataclass ``cls`` from a mapping, every key known and every value of its field's type.

    Only types are checked here; :func:`config_from_dict` adds the range checks of a whole recipe.
    """
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
    cfg = build_section(TrainConfig, data, str(source), "")
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
    if cfg.trainer == "supervised" and not cfg.loss:
        raise ConfigError(source, "loss: needs at least one term, e.g. [{name: mse}]")
    if cfg.trainer != "supervised":
        _check_chat_vlm(cfg, source)
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


def _check_chat_vlm(cfg: TrainConfig, source: str) -> None:
    """The fields of the chat-VLM trainers (grpo, deqa_sft), and the supervised fields they ignore."""
    if cfg.loss:
        raise ConfigError(source, f"loss: trainer {cfg.trainer} has its own objective; leave loss empty")
    ignored = {
        "ema.enabled": cfg.ema.enabled,
        "swa.enabled": cfg.swa.enabled,
        "data.group_by method": cfg.data.group_by == "method",
        "data.descriptor_cache": bool(cfg.data.descriptor_cache),
        "distill.teacher": bool(cfg.distill.teacher),
    }
    used = [key for key, value in ignored.items() if value]
    if used:
        raise ConfigError(source, f"{', '.join(used)}: not available with trainer {cfg.trainer}")
    g, lora = cfg.grpo, cfg.lora
    checks = {
        "grpo.num_generations": g.num_generations >= 2,
        "grpo.max_completion_length": g.max_completion_length >= 1,
        "grpo.beta": g.beta >= 0,
        "grpo.epsilon": g.epsilon > 0,
        "grpo.temperature": g.temperature > 0,
        "lora.r": lora.r >= 1,
        "lora.dropout": 0.0 <= lora.dropout < 1.0,
        "deqa.weight_softkl": cfg.deqa.weight_softkl >= 0,
        "deqa.default_std": cfg.deqa.default_std >= 0,
    }
    bad = [key for key, ok in checks.items() if not ok]
    if bad:
        raise ConfigError(source, f"{bad[0]}: out of range ({_value_at(cfg, bad[0])})")
    if "{level}" not in cfg.deqa.answer:
        raise ConfigError(source, f"deqa.answer must contain {{level}}, got {cfg.deqa.answer!r}")


def _value_at(cfg: Any, dotted: str) -> Any:
    """The value of a dotted recipe key (``grpo.beta``)."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


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
