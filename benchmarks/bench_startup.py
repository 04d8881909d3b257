"""Start-up time of the ``perceptiq`` command line, beside ``python -c "import torch"``, in one run.

Each command runs in a fresh interpreter (``python -m perceptiq ...``), best of ``--repeat`` runs, so
the time is what a user waits for: interpreter start, imports, the command's own work.

* ``perceptiq --help`` and ``perceptiq score --help``: only typer and rich are loaded (target: under 1 s).
* ``perceptiq evaluate`` on the bundled example tables (isrg-q-2025): numpy, pandas and scipy, no torch.
* ``perceptiq rank`` on a simulated vote file (20 methods, 5,000 votes): numpy and scipy, no torch.
* ``python -c "import torch"``: the import every command avoided before, for scale.

Usage: python benchmarks/bench_startup.py [--repeat 5] [--out benchmarks/results/bench_startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]


def _votes_file(directory: Path) -> Path:
    """A 2AFC vote file: 20 methods with normal true scores, 5,000 votes under Thurstone Case V."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=20)
    first = rng.integers(0, 20, 5000)
    second = (first + rng.integers(1, 20, 5000)) % 20
    wins = rng.random(5000) < 0.5 * (1 + np.tanh((truth[first] - truth[second]) * 0.8))
    path = directory / "votes.csv"
    lines = ["first,second,winner"] + [
        f"m{a},m{b},m{a if w else b}" for a, b, w in zip(first, second, wins, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _best(argv: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_startup.json")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "perceptiq"]
    with tempfile.TemporaryDirectory() as tmp:
        votes = _votes_file(Path(tmp))
        cases = {
            "perceptiq --help": [*cli, "--help"],
            "perceptiq score --help": [*cli, "score", "--help"],
            "perceptiq evaluate (examples, isrg-q-2025)": [
                *cli, "evaluate", "examples/predictions.csv", "examples/mos.csv", "-p", "isrg-q-2025",
            ],
            "perceptiq rank (20 methods, 5,000 votes)": [*cli, "rank", str(votes)],
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            'python -c "pass" (interpreter alone)': [sys.executable, "-c", "pass"],
        }  # fmt: skip
        rows = [{"command": name, "seconds": _best(argv, args.repeat)} for name, argv in cases.items()]
    table = Table(title=f"perceptiq start-up, best of {args.repeat} fresh processes")
    table.add_column("command")
    table.add_column("seconds", justify="right")
    for row in rows:
        table.add_row(row["command"], f"{row['seconds']:.2f}")
    Console().print(table)
    env = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
