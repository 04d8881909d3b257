"""Strict JSON text: NaN and infinities, which JSON cannot express, become ``null``.

Python's ``json`` writes ``NaN``/``Infinity`` by default, which other JSON readers reject; every
perceptiq JSON output (CLI ``--json``, JSON Lines score files) goes through :func:`dumps`, which
maps them to ``null`` and then writes with ``allow_nan=False``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["json_safe", "dumps"]


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None and numpy scalars/arrays made plain (recursively)."""
    if isinstance(value, np.generic | np.ndarray):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_safe` ``(value)`` with ``allow_nan=False`` (always valid JSON)."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)
