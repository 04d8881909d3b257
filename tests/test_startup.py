"""Start-up: ``perceptiq --help`` and the table-only commands import neither torch nor (for --help) scipy.

Heavy libraries are imported by the commands that use them, when they run. Timings are measured in
``benchmarks/bench_startup.py``; here only which modules a command loads is checked (a fresh interpreter
per case, since a module once imported stays in ``sys.modules``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, shared_data

_PROBE = """
import contextlib, io, json, sys
from perceptiq.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(sys.argv[1:])
heavy = ("torch", "torchvision", "scipy", "pandas", "matplotlib", "PIL", "timm", "transformers", "ray")
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def _loaded(*argv: str) -> tuple[int, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return report["code"], set(report["loaded"])


HELP_COMMANDS = [[], ["score"], ["evaluate"], ["rank"], ["metrics"], ["models"], ["train"], ["mad"]]
HELP_COMMANDS += [["study"]]
HELP_COMMANDS += [["study", c] for c in ("create", "serve", "export", "results")]


@pytest.mark.parametrize("argv", [[*command, "--help"] for command in HELP_COMMANDS])
def test_help_loads_no_heavy_library(argv):
    code, loaded = _loaded(*argv)
    assert code == 0
    assert loaded == set(), f"perceptiq {' '.join(argv)} imported {sorted(loaded)}"


def test_evaluate_runs_without_torch():
    code, loaded = _loaded(
        "evaluate", "examples/predictions.csv", "examples/mos.csv", "--protocol", "isrg-q-2025"
    )
    assert code == 0
    assert "torch" not in loaded
    assert "scipy" in loaded  # it did compute the statistics


def test_rank_runs_without_torch():
    votes = shared_data("realsr_votes", "sr_subjective_results.csv")
    code, loaded = _loaded("rank", str(votes), "--raters", "23")
    assert code == 0
    assert "torch" not in loaded
    assert "scipy" in loaded


def test_study_help_loads_no_web_stack():
    probe = (
        "import contextlib, io, sys\nfrom perceptiq.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['study', 'serve', '--help'])\n"
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'alembic', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
