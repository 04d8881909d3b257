"""The ``perceptiq`` command line: ``main(argv) -> exit code``; commands live one per module."""

from __future__ import annotations

from perceptiq.cli import budget as _budget  # noqa: F401  (registers budget)
from perceptiq.cli import evaluate as _evaluate  # noqa: F401  (registers evaluate/compare/protocols)
from perceptiq.cli import mad as _mad  # noqa: F401  (registers mad)
from perceptiq.cli import models as _models  # noqa: F401  (registers models)
from perceptiq.cli import rank as _rank  # noqa: F401  (registers rank)
from perceptiq.cli import score as _score  # noqa: F401  (registers score/metrics/samples)
from perceptiq.cli import study as _study  # noqa: F401  (registers study create/serve/export/results)
from perceptiq.cli import train as _train  # noqa: F401  (registers train)
from perceptiq.cli._app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Usage errors print typer's usage message and give 2; perceptiq errors give 1.
    """
    try:
        app(args=argv, prog_name="perceptiq")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    return 0
