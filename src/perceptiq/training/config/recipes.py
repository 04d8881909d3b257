"""Recipes by name or path, and the safe import of the modules a recipe names.

Packaged recipes live in ``perceptiq/configs/*.yaml`` and are found by name (``face_distill``); any other
argument is a path. Relative paths inside a recipe are taken relative to the current working directory.

A recipe is data, not code: modules named in ``model.imports`` other than perceptiq's own are imported
only when the caller allows it (:func:`import_model_modules`), and never from the working directory.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from perceptiq.training.config.sections import ConfigError, TrainConfig
from perceptiq.training.config.strict import apply_overrides, build_section, config_from_dict, read_yaml

__all__ = ["list_recipes", "resolve_recipe", "load_config", "import_model_modules"]


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
        build_section(TrainConfig, data, source, "")  # report the file's own errors under its name first
        data = apply_overrides(data, overrides)
        source = f"{source} with --set {' '.join(overrides)}"
    return config_from_dict(data, source)


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
