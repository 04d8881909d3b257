"""Compute budget (``perceptiq.models.budget``, ``perceptiq budget``) against the worked FIQA case
(PROTOCOLS 6), a hand count of the MAC convention, and fvcore's independent counter."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import perceptiq.cli.budget  # noqa: F401  (registers the command)
from conftest import load_case_file
from perceptiq.cli._app import app
from perceptiq.models import create_model
from perceptiq.models import ultra_fr as _ultra_fr  # noqa: F401  (registers ultra_fr)
from perceptiq.models.budget import count_macs, model_budget, parse_size, resolve_model

runner = CliRunner()


def test_reproduces_the_fiqa_mobilenetv2_case():
    cases = load_case_file("fiqa_budget.json")["cases"]
    model = resolve_model("torchvision:mobilenet_v2")
    for case in cases:
        budget = model_budget(model, tuple(case["input"][2:]))
        assert budget.params == case["params"]
        assert budget.macs == case["conv_linear_MACs"]
        assert budget.flops == round(case["GFLOPs_as_2xMACs"] * 1e9)
    small, large = (model_budget(model, tuple(c["input"][2:])) for c in cases)
    assert small.fits
    assert not large.fits_macs


def test_mac_convention_by_hand():
    # Conv2d: H_out W_out C_out (C_in / groups) k_h k_w; Linear: in * out (PROTOCOLS 6); bias/BN/ReLU free.
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    expected = 16 * 20 * 8 * 3 * 3 * 3 + 16 * 20 * 8 * (8 // 4) * 3 * 3 + 8 * 5
    assert count_macs(net, (32, 40)) == expected
    assert net.training  # state restored


@pytest.mark.parametrize("name", ["mobilenetv3_small_100", "regnety_004", "edgenext_xx_small"])
def test_agrees_with_fvcore_within_5_percent(name):
    fvcore_nn = pytest.importorskip("fvcore.nn", reason="fvcore is the independent FLOP counter")
    import timm

    model = timm.create_model(name, pretrained=False).eval()
    ours = model_budget(model, (224, 224)).macs
    with torch.no_grad():
        analysis = fvcore_nn.FlopCountAnalysis(model, torch.rand(1, 3, 224, 224))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        by_op = analysis.by_operator()
    # fvcore counts one MAC per multiply-add; restricted to the convolution/matrix operators of the
    # convention it must agree (its total also adds ~1 op per element of normalisation layers).
    theirs = sum(by_op.get(op, 0) for op in ("conv", "linear", "matmul", "addmm", "bmm", "einsum"))
    assert abs(ours - theirs) / theirs <= 0.05
    assert abs(ours - analysis.total()) / analysis.total() <= 0.05


def test_full_reference_models_get_a_reference():
    torch.manual_seed(0)
    model = create_model(
        "ultra_fr_convnext_tiny",
        backbone="convnext_atto",
        backbone_kwargs={"dims": [8, 16, 24, 32], "depths": [1, 1, 1, 1]},
        fpn_channels=8,
        diff_channels=8,
        d_model=16,
        heads=2,
        layers=1,
        ff_dim=32,
        num_regions=4,
        num_samplings=2,
        region_sizes=(16,),
    )
    budget = model_budget(model, (64, 64))
    assert budget.macs > 0
    assert budget.trainable_params < budget.params  # the backbone is frozen


def test_cli_json_and_table():
    result = runner.invoke(app, ["budget", "torchvision:mobilenet_v2", "--input", "224", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["params"], data["macs"], data["flops"]) == (2225153, 299495552, 2 * 299495552)
    assert data["fits"] is True
    result = runner.invoke(app, ["budget", "torchvision:mobilenet_v2", "--input", "352"])
    assert result.exit_code == 0, result.output
    assert "does NOT fit" in result.output


def test_cli_errors_are_one_line():
    result = runner.invoke(app, ["budget", "no_such_model"])
    assert result.exit_code == 1
    assert "unknown model 'no_such_model'" in result.output
    result = runner.invoke(app, ["budget", "timm:resnet18", "--input", "224x"])
    assert result.exit_code == 1
    assert "input size must be N or HxW" in result.output
    assert parse_size("1152x2040") == (1152, 2040)
