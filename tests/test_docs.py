"""The documentation a user reads: no pointers into the project's private notes, and every example of
docs/protocols.md is accepted by ``perceptiq evaluate`` with the values worked out by hand below."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("../shared", "PROTOCOLS.md", "SEEDS.md", "seed 00")


def user_facing_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in (ROOT / "src", ROOT / "docs"):
        files += [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".yaml", ".txt")]
    return files


def test_user_facing_text_never_points_into_private_notes():
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {word}"
        for path in user_facing_files()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for word in FORBIDDEN
        if word in line or (word == "seed 00" and word in line.lower())  # docs/protocols.md is fine
    ]
    assert not hits, "\n".join(hits)


def test_readme_links_the_documentation():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/protocols.md", "docs/training-data.md"):
        assert f"({page})" in readme
        assert (ROOT / page).is_file()


def _evaluate(args: list[str], cwd: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "perceptiq", "evaluate", *args, "--json"], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_every_example_of_the_protocols_page_is_accepted(tmp_path):
    text = (ROOT / "docs" / "protocols.md").read_text(encoding="utf-8")
    files = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, re.S)
    runs = re.findall(r"<!-- run: (.*?) -->", text)
    assert len(files) == 7
    assert len(runs) == 6
    for name, body in files:
        (tmp_path / name).write_text(body, encoding="utf-8")
    subprocess.run([sys.executable, "make_structure.py"], cwd=tmp_path, check=True)
    results = {args: _evaluate(args.split(), tmp_path) for args in runs}

    def stats(protocol: str) -> dict:
        (payload,) = [v for k, v in results.items() if k.endswith(protocol)]
        return payload["statistics"]

    pred, mos = [0.91, 0.35, 0.62, 0.12, 0.77], [4.6, 2.1, 3.0, 1.4, 4.1]
    srcc, plcc = spearmanr(pred, mos)[0], pearsonr(pred, mos)[0]
    assert stats("isrg-q-2025")["main"] == pytest.approx(0.6 * srcc + 0.4 * plcc, abs=1e-9)
    assert stats("vquala25-fiqa")["main"] == pytest.approx((srcc + plcc) / 2, abs=1e-9)
    alignment = stats("ntire25-t2i-alignment")
    assert alignment["acc"] == pytest.approx(10 / 11)  # one of 11 elements (the dog) is missed
    structure = stats("ntire25-t2i-structure")
    assert structure["f1"] == pytest.approx(10 / 12)  # masks 12 columns wide, shifted by 2
    two_afc = np.mean([0.9, 1 - 0.2, 0.6])  # q = 1, 0, 1 against p = 0.9, 0.2, 0.6
    assert stats("realsr-2afc")["main"] == pytest.approx(two_afc)
