"""``perceptiq budget``: parameters, MACs and FLOPs of a model, and the face IQA challenge limit check."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from perceptiq.cli._app import app
from perceptiq.cli._common import console, handle_errors, print_json


@app.command("budget")
@handle_errors
def budget_command(
    model: Annotated[
        str,
        typer.Argument(
            help="A registered model name, a weights directory, timm:NAME or torchvision:NAME (one output)."
        ),
    ],
    input_size: Annotated[str, typer.Option("--input", "-i", help="Forward input size: N or HxW.")] = "224",
    max_gmacs: Annotated[
        float | None, typer.Option(help="MAC limit in G \\[default: the face IQA challenge's 0.5].")
    ] = None,
    max_params_m: Annotated[
        float | None, typer.Option(help="Parameter limit in M \\[default: the face IQA challenge's 5].")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the budget as JSON.")] = False,
) -> None:
    """Count parameters and multiply-accumulates of one forward pass at batch 1.

    FLOPs = 2 x MACs. The face IQA challenge's "0.5 GFLOPs" limit is counted in MACs (MobileNetV2 baseline
    count).

    Example: perceptiq budget face_lite_mobilenetv3 --input 224
    """
    from perceptiq.models.budget import (
        FIQA_MAX_MACS,
        FIQA_MAX_PARAMS,
        model_budget,
        parse_size,
        resolve_model,
    )

    size = parse_size(input_size)
    max_macs = FIQA_MAX_MACS if max_gmacs is None else max_gmacs * 1e9
    max_params = FIQA_MAX_PARAMS if max_params_m is None else max_params_m * 1e6
    budget = model_budget(resolve_model(model), size, name=model, max_macs=max_macs, max_params=max_params)
    if json_output:
        print_json(budget.to_dict())
        return
    table = Table(title=f"budget of {model} at {size[0]}x{size[1]}, batch 1")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("limit", justify="right")
    table.add_column("fits")
    table.add_row(
        "parameters", f"{budget.params:,}", f"{budget.max_params:,.0f}", "yes" if budget.fits_params else "NO"
    )
    table.add_row("trainable parameters", f"{budget.trainable_params:,}", "", "")
    table.add_row(
        "MACs", f"{budget.gmacs:.4f} G", f"{budget.max_macs / 1e9:g} G", "yes" if budget.fits_macs else "NO"
    )
    table.add_row("FLOPs (2 x MACs)", f"{budget.gflops:.4f} G", "", "")
    if budget.crops_per_image is not None and budget.crops_per_image > 1:
        per_image = budget.gmacs * budget.crops_per_image
        table.add_row(f"MACs per image ({budget.crops_per_image} crops)", f"{per_image:.4f} G", "", "")
    console.print(table)
    verdict = "fits" if budget.fits else "does NOT fit"
    console.print(
        f"{model} {verdict} the limits (<= {budget.max_macs / 1e9:g} G MACs and "
        f"<= {budget.max_params:,.0f} params)"
    )
