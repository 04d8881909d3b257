"""No random weights by accident: scoring refuses untrained models; `perceptiq models` lists the variants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from perceptiq.cli import app
from perceptiq.functional.patches import InputPolicy
from perceptiq.metrics import create_metric
from perceptiq.models import WeightsError, create_model, list_models, load_model, save_model
from perceptiq.scoring import model_scorer

runner = CliRunner()
WEIGHTS = Path(__file__).resolve().parents[1] / "src/perceptiq/models/weights"
TINY_FACE = {"backbone": "mobilenetv3_small_050", "head_hidden": 16, "input_policy": InputPolicy(mode="full")}


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:112]
    base = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 8.0)
    image = np.clip(base[..., None] + rng.normal(0, 10, (96, 112, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(folder / "a.png")
    return folder


def _scores(result) -> list[float]:
    assert result.exit_code == 0, result.output
    return [row["score"] for row in json.loads(result.output)]


def test_cli_refuses_a_model_without_trained_weights(photos, tmp_path):
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", str(photos), "--model", "nss_mlp", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: model 'nss_mlp' has no trained weights")
    assert "--allow-random-weights" in lines[0]
    assert "--weights" in lines[0]
    assert not out.exists()


def test_cli_scores_with_random_weights_only_when_asked(photos):
    args = ["score", str(photos), "--model", "nss_mlp", "--allow-random-weights", "--json"]
    assert np.isfinite(_scores(runner.invoke(app, args))).all()
    # why it is refused by default: every build draws other random weights, so another run scores
    # differently (compared on the weights: the scores of a random head may all clip to the range's end)
    first, second = (create_model("nss_mlp").state_dict() for _ in range(2))
    assert any(not torch.equal(first[k], second[k]) for k in first)


def test_default_model_and_trained_weights_still_score(photos, tmp_path):
    default = _scores(runner.invoke(app, ["score", str(photos), "--json"]))
    assert _scores(runner.invoke(app, ["score", str(photos), "--json"])) == default
    assert np.isfinite(default).all()
    torch.manual_seed(0)
    save_model(create_model("nss_mlp", n_members=2), tmp_path / "mine")
    mine = runner.invoke(
        app, ["score", str(photos), "--model", "nss_mlp", "--weights", str(tmp_path / "mine")]
    )
    assert mine.exit_code == 0, mine.output
    assert runner.invoke(app, ["score", str(photos), "--weights", str(tmp_path / "mine")]).exit_code == 0


def test_python_api_refuses_untrained_models_where_they_score(tmp_path):
    fresh = create_model("nss_mlp")  # building a fresh model (for training) stays allowed
    assert not fresh.has_trained_weights
    with pytest.raises(WeightsError, match="model 'nss_mlp' has no trained weights"):
        model_scorer("nss_mlp")
    with pytest.raises(WeightsError, match="allow_random_weights=True"):
        create_metric("model", model="nss_mlp")
    x = torch.rand(1, 3, 96, 96)
    assert torch.isfinite(create_metric("model", model="nss_mlp", allow_random_weights=True)(x)).all()
    assert torch.isfinite(model_scorer("nss_mlp", allow_random_weights=True)(x)).all()
    assert create_model("perceptiq_nr").has_trained_weights
    save_model(fresh, tmp_path / "m")
    assert load_model(tmp_path / "m").has_trained_weights
    assert create_model("nss_mlp", weights=tmp_path / "m").has_trained_weights


def test_a_pretrained_backbone_under_a_random_head_is_refused(tmp_path):
    import timm

    backbone = timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=0)
    torch.save(backbone.state_dict(), tmp_path / "backbone.pth")
    options = {**TINY_FACE, "backbone_weights": str(tmp_path / "backbone.pth")}
    with pytest.raises(WeightsError, match="no trained weights"):
        model_scorer("face_lite_mobilenetv3", **options)


def test_models_command_lists_variants_weights_and_licence():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(rows) == set(list_models())
    default, v1 = rows["perceptiq_nr_v2"], rows["perceptiq_nr"]
    assert default["shipped_weights"]
    assert v1["shipped_weights"]
    assert default["default"]
    assert not v1["default"]
    assert (default["family"], v1["family"]) == ("backbone_stats_mlp", "nss_mlp")
    assert default["licence"] == v1["licence"] == "Apache-2.0"
    for name in ("perceptiq_nr_v2", "perceptiq_nr"):  # the cards state the same
        assert "Apache License 2.0" in (WEIGHTS / name / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert not rows["nss_mlp"]["shipped_weights"]
    assert rows["nss_mlp"]["licence"] is None
    assert rows["clip_prompt_vit_b32"]["family"] == "clip_prompt"
    table = runner.invoke(app, ["models"], env={"COLUMNS": "200"}).output
    assert "perceptiq_nr_v2 (default)" in table
    assert "Apache-2.0" in table
    assert "shipped" in table


def test_score_help_points_to_the_models_command():
    text = runner.invoke(app, ["score", "--help"], env={"COLUMNS": "200"}).output
    assert "perceptiq models" in text
    assert "list_models()" not in text
    assert "--allow-random-weights" in text
    assert "color=y" in text
    assert "color_space" not in text
