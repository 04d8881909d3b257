"""Typed training recipes: :class:`TrainConfig` and its sections, strict YAML, ``key.sub=value`` overrides.

A recipe is a YAML mapping whose keys mirror the dataclasses of :mod:`.sections`; every field has a
``help`` text in its metadata (``perceptiq train --help-config`` prints them). Loading is strict
(:mod:`.strict`): an unknown key, a duplicate key or a value of the wrong type is a :class:`ConfigError`
naming the file (or the ``--set`` option) and the key. Numbers written as ``1e-3`` (a string for YAML 1.1
parsers) are accepted for float fields. Relative paths in a recipe are taken relative to the current
working directory.

A recipe is data, not code: modules named in ``model.imports`` other than perceptiq's own are imported
only when the caller allows it (:func:`import_model_modules`), and never from the working directory.

Packaged recipes live in ``perceptiq/configs/*.yaml`` and are found by name (``face_distill``); any other
argument is a path (:mod:`.recipes`).
"""

from perceptiq.training.config.recipes import import_model_modules, list_recipes, load_config, resolve_recipe
from perceptiq.training.config.sections import (
    CheckpointSection,
    ConfigError,
    DataSection,
    DeQASection,
    DistillSection,
    EmaSection,
    EvalSection,
    GRPOSection,
    LogSection,
    LoraSection,
    LossTerm,
    ModelSection,
    OptimSection,
    ScheduleSection,
    SwaSection,
    TrainConfig,
)
from perceptiq.training.config.strict import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    describe_fields,
    dump_config,
    read_yaml,
)

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
