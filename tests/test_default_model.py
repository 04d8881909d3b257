"""The shipped default model: loads from the package, scores through the CLI, and its model card's
numbers are reproduced by `perceptiq evaluate` from the saved predictions."""

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
from perceptiq.models.nss_mlp import NSSMLPModel

RESULTS = REPO / "benchmarks" / "results"
runner = CliRunner()


def _evaluate_json(pred: Path, gt: Path) -> dict:
    args = ["evaluate", str(pred), str(gt), "--id-col", "image", "-p", "vquala25-fiqa"]
    result = runner.invoke(app, [*args, "--bootstrap", "1000", "--seed", "0", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_model_card_numbers_are_reproduced_by_perceptiq_evaluate(tmp_path):
    gt = shared_data("clive", "manifest.csv")
    card = json.loads((RESULTS / "default_model.json").read_text())
    ours = _evaluate_json(RESULTS / "default_model_oof_predictions.csv", gt)
    baselines = pd.read_csv(RESULTS / "default_model_baselines.csv")
    for name in ("niqe", "brisque"):  # lower-is-better metrics: evaluated negated, as the card says
        baselines.assign(score=-baselines[name])[["image", "score"]].to_csv(
            tmp_path / f"{name}.csv", index=False
        )
    with_views = _evaluate_json(RESULTS / "default_model_oof_predictions_test_views.csv", gt)
    rows = {
        "cross_validation_out_of_fold": ours,
        "cross_validation_out_of_fold_test_views": with_views,
        "niqe_same_images": _evaluate_json(tmp_path / "niqe.csv", gt),
        "brisque_same_images": _evaluate_json(tmp_path / "brisque.csv", gt),
    }
    for key, payload in rows.items():
        for stat in ("srcc", "plcc"):
            assert payload["statistics"][stat] == pytest.approx(card[key][stat]["value"], abs=1e-6)
            interval = payload["intervals"][stat]
            assert [interval["low"], interval["high"]] == pytest.approx(card[key][stat]["ci95"], abs=1e-6)
    assert card["cross_validation_out_of_fold"]["srcc"]["value"] > card["niqe_same_images"]["srcc"]["ci95"][1]
    assert (
        card["cross_validation_out_of_fold"]["srcc"]["value"] > card["brisque_same_images"]["srcc"]["ci95"][1]
    )


def test_packaged_default_model_loads_and_fits_the_budget():
    model = create_model(DEFAULT_MODEL)
    assert isinstance(model, NSSMLPModel)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    assert float(model.target_std) > 1.0  # trained statistics were loaded, not the defaults
    x = torch.rand(2, 3, 200, 300)
    first = model.score(x)
    assert torch.equal(first, model.score(x))
    assert first.shape == (2,)
    assert torch.isfinite(first).all()


def test_default_model_orders_distortion_ladders():
    from perceptiq.data.distortions import LADDERS, distort
    from perceptiq.data.samples import _photo

    model = create_model(DEFAULT_MODEL)
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


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_default_model_scores_flat_images_inside_its_stated_range(level):
    """White, black and grey images drive the MLPs far off the scale; the scores stay in 0-100."""
    model = create_model(DEFAULT_MODEL).eval()
    low, high = model.score_range
    assert (low, high) == (0.0, 100.0)
    score = float(model.score(torch.full((1, 3, 96, 128), level)))
    assert low <= score <= high
    torch.manual_seed(0)
    model.train()  # training sees the unclipped output, so its loss keeps a gradient
    assert float(model(torch.full((1, 3, 96, 128), level))) < low
