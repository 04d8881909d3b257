"""`perceptiq evaluate`, `compare` and `protocols` through the real CLI entry point."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from typer.testing import CliRunner

from perceptiq.cli import app, main

runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    n = 50
    ids = [f"img{i:03d}.png" for i in range(n)]
    mos = rng.uniform(1, 5, n)
    a = mos + rng.normal(0, 0.3, n)
    b = mos + rng.normal(0, 1.5, n)
    paths = {}
    for name, frame in {
        "gt": pd.DataFrame({"id": ids, "mos": mos}),
        "a": pd.DataFrame({"id": ids, "score": a}),
        "b": pd.DataFrame({"id": ids, "score": b}),
    }.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    paths["values"] = (a, b, mos)
    return paths


def test_evaluate_json_equals_the_challenge_formula(files):
    result = runner.invoke(
        app, ["evaluate", str(files["a"]), str(files["gt"]), "-p", "isrg-q-2025", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    a, _, mos = files["values"]
    expected = 0.6 * scipy.stats.spearmanr(a, mos).statistic + 0.4 * scipy.stats.pearsonr(a, mos).statistic
    assert payload["score"] == pytest.approx(expected, abs=1e-9)
    assert payload["n"] == 50


def test_evaluate_table_bootstrap_and_report(files, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(files["a"]),
            str(files["gt"]),
            "--protocol",
            "vquala25-fiqa",
            "--bootstrap",
            "200",
            "--report",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "95% CI" in result.stdout
    assert "main" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["intervals"]["main"]["low"] < summary["score"] < summary["intervals"]["main"]["high"]
    assert (out / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_detects_the_better_model(files, tmp_path):
    out = tmp_path / "cmp.json"
    result = runner.invoke(
        app,
        [
            "compare",
            str(files["a"]),
            str(files["b"]),
            str(files["gt"]),
            "-p",
            "vquala25-fiqa",
            "--bootstrap",
            "300",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    diff = payload["differences"]["main"]
    assert diff["difference"]["low"] > 0
    assert diff["p_value"] < 0.01
    assert payload["williams"]["plcc"]["p_value"] < 0.01


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.iloc[:45], "5 ground-truth id(s) have no prediction"),
        (lambda f: f.assign(score=2.0), "all 50 predictions equal 2: correlations are undefined"),
        (
            lambda f: f.rename(columns={"score": "banana", "id": "file"}).assign(other=1.0),
            "cannot tell which column",
        ),
        (lambda f: pd.concat([f, f.iloc[:2]]), "2 duplicate id(s)"),
        (lambda f: f.assign(score=f["score"].where(f.index != 3)), "1 missing, non-numeric or infinite"),
    ],
)
def test_bad_input_exits_1_with_one_line_naming_the_file(files, tmp_path, mutate, message):
    bad = tmp_path / "bad.csv"
    mutate(pd.read_csv(files["a"])).to_csv(bad, index=False)
    result = runner.invoke(app, ["evaluate", str(bad), str(files["gt"]), "-p", "isrg-q-2025"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.csv" in lines[0]
    assert message in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_too_few_items_for_the_logistic_fit(tmp_path):
    pd.DataFrame({"id": ["a", "b", "c"], "score": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"id": ["a", "b", "c"], "mos": [1.0, 3.0, 2.0]}).to_csv(tmp_path / "g.csv", index=False)
    args = [
        "evaluate",
        str(tmp_path / "p.csv"),
        str(tmp_path / "g.csv"),
        "-p",
        "isrg-q-2025",
        "--plcc-mapping",
        "logistic4",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "logistic4 fit of PLCC needs at least 4" in result.stderr


def test_main_returns_exit_codes_and_lists_protocols(files, capsys):
    assert main(["protocols", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert "ntire25-t2i-structure" in names
    assert main(["evaluate", str(files["a"]), str(files["gt"]), "-p", "nope"]) == 1
    assert "unknown protocol" in capsys.readouterr().err
    assert main(["evaluate", "--help"]) == 0


def _negated(files, tmp_path, name, scorer=None):
    frame = pd.read_csv(files[name])
    frame["score"] = -frame["score"]
    if scorer is not None:
        frame["scorer"] = scorer
    path = tmp_path / f"{name}_{scorer or 'lower'}.csv"
    frame.to_csv(path, index=False)
    return path


def test_lower_is_better_scores_are_oriented_by_flag_or_scorer_column(files, tmp_path):
    a, _, mos = files["values"]
    expected_srcc = scipy.stats.spearmanr(a, mos).statistic  # the higher-is-better original
    lower = _negated(files, tmp_path, "a")
    plain = runner.invoke(app, ["evaluate", str(lower), str(files["gt"]), "--json"])
    assert json.loads(plain.stdout)["statistics"]["srcc"] == pytest.approx(-expected_srcc)
    assert "higher is better (default" in json.loads(plain.stdout)["direction"]["note"]
    flagged = runner.invoke(app, ["evaluate", str(lower), str(files["gt"]), "--json", "--lower-is-better"])
    payload = json.loads(flagged.stdout)
    assert payload["statistics"]["srcc"] == pytest.approx(expected_srcc)
    assert payload["direction"] == {
        "lower_is_better": True,
        "source": "--lower-is-better",
        "negated": True,
        "note": "direction: lower is better (--lower-is-better); predictions negated",
    }
    niqe = _negated(files, tmp_path, "a", scorer="niqe")
    text = runner.invoke(app, ["evaluate", str(niqe), str(files["gt"]), "-p", "isrg-q-2025"])
    assert text.exit_code == 0, text.output
    assert "direction: lower is better (from scorer column 'niqe'); predictions negated" in text.stdout
    psnr = _negated(files, tmp_path, "a", scorer="psnr")
    clash = runner.invoke(app, ["evaluate", str(psnr), str(files["gt"]), "--lower-is-better"])
    assert clash.exit_code == 1
    assert "psnr" in clash.output
    assert "contradicts" in clash.output


def test_compare_orients_each_prediction_file_on_its_own(files, tmp_path):
    lower_b = _negated(files, tmp_path, "b")
    args = ["compare", str(files["a"]), str(lower_b), str(files["gt"]), "-p", "vquala25-fiqa", "--json"]
    args += ["--bootstrap", "200"]
    wrong = json.loads(runner.invoke(app, args).stdout)
    right = json.loads(runner.invoke(app, [*args, "--lower-is-better-b"]).stdout)
    a, b, mos = files["values"]
    assert wrong["b"]["statistics"]["srcc"] == pytest.approx(-scipy.stats.spearmanr(b, mos).statistic)
    assert right["b"]["statistics"]["srcc"] == pytest.approx(scipy.stats.spearmanr(b, mos).statistic)
    assert right["a"]["statistics"]["srcc"] == pytest.approx(scipy.stats.spearmanr(a, mos).statistic)
    assert right["direction"]["a"]["negated"] is False
    assert right["direction"]["b"]["negated"] is True


def test_bootstrap_on_too_few_items_warns(tmp_path):
    pd.DataFrame({"id": ["a", "b"], "score": [1.0, 2.0]}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"id": ["a", "b"], "mos": [3.0, 4.0]}).to_csv(tmp_path / "g.csv", index=False)
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "g.csv"), "--bootstrap", "100", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert any("only 2 items" in w for w in json.loads(result.stdout)["warnings"])
    assert "only 2 items (fewer than 10)" in result.stderr


def test_realsr_2afc_report_writes_the_promised_png(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(4)
    names = [f"{i:03d}_m.png" for i in range(12)]
    pd.DataFrame({"image": names, "score": rng.normal(size=12)}).to_csv(tmp_path / "p.csv", index=False)
    pairs = pd.DataFrame(
        {"name1_column": names[:-1], "name2_column": names[1:], "score1_column": rng.uniform(0, 1, 11)}
    )
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    out = tmp_path / "report"
    args = ["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "pairs.csv"), "-p", "realsr-2afc"]
    result = runner.invoke(app, [*args, "--report", str(out)])
    assert result.exit_code == 0, result.output
    png = out / "scatter.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    assert json.loads((out / "summary.json").read_text())["protocol"] == "realsr-2afc"


def test_raw_plcc_report_draws_the_least_squares_line_and_its_bootstrap_band():
    from perceptiq.evaluation.bootstrap import expand, iter_resample_counts
    from perceptiq.evaluation.protocols import ScoreData, create_protocol
    from perceptiq.evaluation.report import curve_band, plotted_curve

    rng = np.random.default_rng(5)
    pred = rng.uniform(0, 1, 40)
    mos = 1 + 4 * pred**2 + rng.normal(0, 0.3, 40)  # curved: a 4th-order polynomial would bend
    result = create_protocol("vquala25-fiqa").evaluate(ScoreData(np.arange(40), pred, mos))
    curve = plotted_curve(pred, mos, result)
    grid = np.linspace(pred.min(), pred.max(), 7)
    np.testing.assert_allclose(curve(grid), np.polyval(np.polyfit(pred, mos, 1), grid), atol=1e-10)
    low, high = curve_band(pred, mos, curve, grid, 300, 3, 0.9)
    lines = []
    for w in np.concatenate(list(iter_resample_counts(40, 300, 3))):
        i = expand(w)
        lines.append(np.polyval(np.polyfit(pred[i], mos[i], 1), grid))
    expected = np.quantile(np.array(lines), [0.05, 0.95], axis=0)
    np.testing.assert_allclose(low, expected[0], atol=1e-8)
    np.testing.assert_allclose(high, expected[1], atol=1e-8)
    assert np.all(low < curve(grid))
    assert np.all(curve(grid) < high)
