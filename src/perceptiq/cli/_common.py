"""Helpers shared by CLI commands: error mapping, option parsing, number formatting."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from perceptiq.errors import PerceptiqError
from perceptiq.io.json_text import dumps

P = ParamSpec("P")
R = TypeVar("R")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`PerceptiqError` into a one-line ``error: ...`` on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PerceptiqError as err:
            err_console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)  # keeps [extra]
            raise typer.Exit(1) from None

    return wrapper


def parse_options(pairs: list[str] | None) -> dict[str, object]:
    """``["key=value", ...]`` into a dict, values parsed as JSON when possible (numbers, booleans)."""
    out: dict[str, object] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for a table: fixed digits, 'n/a' for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def print_json(payload: object) -> None:
    """Machine-readable output on stdout (no rich markup); NaN and infinities are written as ``null``."""
    sys.stdout.write(dumps(payload, indent=2) + "\n")
