"""``perceptiq rank``: exit codes, table/JSON/plot output and one-line errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import optimize
from scipy.stats import norm
from typer.testing import CliRunner

import perceptiq.cli.rank  # noqa: F401  (registers the command)
from perceptiq.cli._app import app

REALSR = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "realsr_votes"
    / "sr_subjective_results.csv"
)
needs_realsr = pytest.mark.skipif(not REALSR.exists(), reason="../shared/data/realsr_votes not available")
runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["rank", *map(str, args)])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "votes.csv"
    path.write_text(text)
    return path


@pytest.mark.shared_data
@needs_realsr
def test_rank_realsr_table() -> None:
    result = _run(REALSR, "--raters", "23")
    assert result.exit_code == 0, result.output
    assert "Thurstone Case V ranking of 12 items, 24,288 votes" in result.output
    lines = [line for line in result.output.splitlines() if "SeeSR" in line or "RGT" in line]
    assert lines[0].split("│")[1].strip() == "1"
    assert lines[1].split("│")[1].strip() == "12"


@pytest.mark.shared_data
@needs_realsr
def test_rank_realsr_json_bt_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "ranking.png"
    result = _run(REALSR, "--n-votes-per-pair", "23", "--model", "bt", "--json", "--plot", png, "--stability")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = [row["item"] for row in payload["ranking"]]
    assert payload["model"] == "bt"
    assert payload["n_votes"] == 1056 * 23
    assert names[0] == "SeeSR"
    assert names[-1] == "RGT"
    assert all(r["ci_low"] < r["score"] < r["ci_high"] for r in payload["ranking"])
    assert payload["stability"]["k"] == list(range(1, 17))
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.width > 300


def test_rank_counts_file_matches_plain_likelihood(tmp_path: Path) -> None:
    votes = _write(tmp_path, "first,second,count_first,count_second\nA,B,8,2\nA,C,9,1\nB,C,7,3\n")
    result = _run(votes, "--json")
    assert result.exit_code == 0, result.output
    scores = {row["item"]: row["score"] for row in json.loads(result.stdout)["ranking"]}
    counts = np.array([[0, 8, 9], [2, 0, 7], [1, 3, 0]])

    def neg(theta: np.ndarray) -> float:
        mu = np.r_[0.0, theta]
        return -np.sum(counts * norm.logcdf(mu[:, None] - mu[None, :]))

    mu = np.r_[
        0.0,
        optimize.minimize(neg, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}).x,
    ]
    mu -= mu.mean()
    np.testing.assert_allclose([scores["A"], scores["B"], scores["C"]], mu, atol=1e-6)


def test_rank_bootstrap_and_ridge(tmp_path: Path) -> None:
    votes = _write(
        tmp_path, "first,second,winner\n" + "A,B,A\n" * 5 + "B,C,B\n" * 3 + "C,B,C\n" * 2 + "A,C,A\n" * 4
    )
    failed = _run(votes)
    assert failed.exit_code == 1
    assert str(votes) in failed.output
    assert "never beaten by the rest: {A}" in failed.output
    result = _run(votes, "--ridge", "0.1", "--ci", "bootstrap", "--n-boot", "200", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ridge_needed"] is True
    assert payload["ci_method"] == "bootstrap"
    assert payload["ranking"][0]["item"] == "A"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("first,second,count_first,count_second\nA,B,2,1\nC,D,1,2\n", "not connected (2 components"),
        ("x,y\n1,2\n", "unrecognised columns"),
    ],
)
def test_rank_errors_are_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    votes = _write(tmp_path, text)
    result = _run(votes)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {votes}")
    assert message in lines[0]


def test_rank_missing_file(tmp_path: Path) -> None:
    result = _run(tmp_path / "absent.csv")
    assert result.exit_code == 1
    assert "absent.csv: file not found" in result.output
