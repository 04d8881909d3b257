"""The typer application that every ``perceptiq`` sub-command registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="perceptiq",
    help=(
        "perceptiq: perceptual image quality assessment.\n\n"
        "Score images with classical metrics and learned models, evaluate quality predictions "
        "exactly as the IQA challenges do, and rank methods from paired comparisons. "
        "Run `perceptiq COMMAND --help` for the options of each command."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
