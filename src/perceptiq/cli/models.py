"""``perceptiq models``: the learned model variants, whether trained weights ship, and their licence."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from perceptiq.cli._app import app
from perceptiq.cli._common import console, print_json


@app.command("models")
def models_command(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the learned model variants: family, whether trained weights ship with perceptiq, licence.

    A variant without shipped weights scores only with trained weights of your own
    (`perceptiq score --model NAME --weights DIR`); `--allow-random-weights` scores with random initial
    weights instead, which differ on every run.
    """
    from perceptiq.models import DEFAULT_MODEL
    from perceptiq.models._base import describe_models

    rows = [{**row, "default": row["name"] == DEFAULT_MODEL} for row in describe_models()]
    if json_output:
        print_json(rows)
        return
    table = Table(title="learned models")
    for col in ("name", "family", "weights", "licence"):
        table.add_column(col, no_wrap=True)  # names are what a user types: never cut them
    table.add_column("summary", ratio=1)
    for row in rows:
        weights = "shipped" if row["shipped_weights"] else "none (--weights)"
        name = f"{row['name']} (default)" if row["default"] else row["name"]
        table.add_row(name, row["family"], weights, row["licence"] or "-", row["summary"])
    console.print(table)
