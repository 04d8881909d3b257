"""``perceptiq train CONFIG``: train a quality model from a YAML recipe (a file or a packaged recipe name).

Under torchrun the same command runs data-parallel (``torchrun --nproc-per-node 2 -m perceptiq train
CONFIG``); only rank 0 prints, logs and writes files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from perceptiq.cli._app import app
from perceptiq.cli._common import console, handle_errors

__all__ = ["train_command"]

ConfigArg = Annotated[
    str | None,
    typer.Argument(help="Recipe: a YAML file, or a packaged recipe name (see --list).", show_default=False),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue from the newest checkpoint in the output folder (if any).")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder (overrides output_dir).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a recipe key: KEY=VALUE, e.g. optim.lr=1e-3 (repeatable)."),
]
ListOpt = Annotated[bool, typer.Option("--list", help="List the packaged recipes and exit.")]
AllowImportsOpt = Annotated[
    bool,
    typer.Option(
        "--allow-imports",
        help="Let the recipe import the Python modules named in model.imports (this runs their code; "
        "the working directory is never searched).",
    ),
]
HelpConfigOpt = Annotated[
    bool, typer.Option("--help-config", help="List every recipe key and its help, then exit.")
]


def _print_keys() -> None:
    from rich.markup import escape

    from perceptiq.training.config import describe_fields

    for key, kind, default, text in describe_fields():
        console.print(
            f"[bold]{escape(key)}[/] ({escape(kind)}, default {escape(default)}): {escape(text)}",
            soft_wrap=True,
        )


@app.command("train")
@handle_errors
def train_command(
    config: ConfigArg = None,
    resume: ResumeOpt = False,
    out: OutOpt = None,
    overrides: SetOpt = None,
    list_recipes: ListOpt = False,
    help_config: HelpConfigOpt = False,
    allow_imports: AllowImportsOpt = False,
) -> None:
    """Train a quality model: AdamW/Adam, warm-up + cosine/step, AMP, accumulation, EMA/SWA, DDP, resume.

    Recipes with trainer: grpo (vq_r1_grpo: reinforcement learning to rank of a chat VLM on TRL) or
    trainer: deqa_sft (deqa_sft: level-token fine-tuning with DeQA-Score soft labels) train a chat VLM;
    they need the optional vlm-train dependencies (TRL, peft, accelerate, datasets).
    """
    from perceptiq.training import config as config_mod

    if list_recipes:
        for name in config_mod.list_recipes():
            console.print(name)
        return
    if help_config:
        _print_keys()
        return
    if config is None:
        raise typer.BadParameter("give a recipe (YAML file or packaged name); --list shows the packaged ones")
    cfg = config_mod.load_config(config, list(overrides or []))
    if out is not None:
        cfg = dataclasses.replace(cfg, output_dir=str(out))
    is_main = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if is_main else logging.WARNING, format="%(message)s")
    from perceptiq.training.loop import train

    result = train(cfg, resume=resume, allow_imports=allow_imports)
    if is_main:
        best = "n/a" if result.best_metric is None else f"{result.best_metric:.4f}"
        console.print(
            f"trained {result.step} steps ({result.epoch} epochs); best {cfg.eval.metric} {best}; "
            f"outputs in {result.output_dir}"
        )
