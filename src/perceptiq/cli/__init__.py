"""The ``perceptiq`` command line: ``main(argv) -> exit code``; commands live one per module."""

from __future__ import annotations

import click
import typer

from perceptiq.cli import evaluate as _evaluate  # noqa: F401  (registers evaluate/compare/protocols)
from perceptiq.cli._app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="perceptiq", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return 1
    return int(result) if isinstance(result, int) else 0
