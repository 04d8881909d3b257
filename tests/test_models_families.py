"""Model families of issue 5: hybrid ViT+CNN (000 sec. 4.1), T2I structure (001 sec. 5.2), UltraR-IQA (000
sec. 4.4), ensembles, and the named input policies. Tiny random configs only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from conftest import load_case_file
from perceptiq.errors import InputError
from perceptiq.functional.patches import InputPolicy
from perceptiq.losses.functional import heatmap_loss, kl_divergence_loss, min_variance_histogram
from perceptiq.models import (
    MODELS,
    WeightsError,
    create_model,
    face_lite,  # noqa: F401  (registers face_lite)
    hybrid_vit_cnn,
    load_model,
    save_model,
    t2i_structure,
    ultra_fr,
)
from perceptiq.models import ensemble as ensemble_mod
from perceptiq.models.policies import POLICIES, get_policy
from tiny_models import FACE, HYBRID, STRUCTURE, TINY_CONVNEXT, ULTRA


def _ensemble_kwargs() -> dict:
    members = [
        MODELS.create("hybrid_vit_cnn_micv").replace(**HYBRID),
        MODELS.create("face_lite_mobilenetv3").replace(**FACE, input_policy=InputPolicy(mode="full")),
    ]
    return {"members": ensemble_mod.ensemble_config(members, [0.25, 0.75]).members}


FAMILIES = {
    "hybrid_vit_cnn_micv": lambda: HYBRID,
    "t2i_structure_convnext": lambda: STRUCTURE,
    "ultra_fr_convnext_tiny": lambda: ULTRA,
    "ensemble": _ensemble_kwargs,
}


def _build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **FAMILIES[name]())


def _inputs(seed: int = 1, shape: tuple[int, ...] = (2, 3, 48, 56)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


def _score(model: torch.nn.Module, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return model.score(x, ref if model.needs_reference else None)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_scores_are_deterministic_in_range_and_survive_save_load(name, tmp_path):
    model = _build(name)
    x, ref = _inputs()
    first = _score(model, x, ref)
    assert first.shape == (2,)
    assert torch.isfinite(first).all()
    if model.score_range is not None:
        low, high = model.score_range
        assert bool(((first >= low) & (first <= high)).all())
    assert torch.equal(first, _score(model, x.clone(), ref.clone()))
    save_model(model, tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert torch.equal(_score(loaded, x, ref), first)


def _loss(name: str, model: torch.nn.Module, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    if name == "ultra_fr_convnext_tiny":  # KL to the minimum-variance 21-rater histogram (000 sec. 4.4)
        target = min_variance_histogram([2.0, 4.0]).float()
        logits = model.logits(x, ref, generator=torch.Generator().manual_seed(5))
        return kl_divergence_loss(logits, target)
    if name == "t2i_structure_convnext":  # eq. 9 heatmap loss + score MSE
        scores, heatmaps = model.forward_all(x)
        target = (torch.arange(heatmaps[0].numel()) % 3 == 0).float().view_as(heatmaps[0]).expand_as(heatmaps)
        return heatmap_loss(heatmaps, target) + torch.mean((scores - torch.tensor([0.2, 0.9])) ** 2)
    return torch.mean((model(x, ref if model.needs_reference else None) - torch.tensor([0.2, 0.9])) ** 2)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_one_training_step_lowers_the_loss_on_a_repeated_batch(name):
    model = _build(name)
    x, ref = _inputs(shape=(2, 3, 64, 64))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=1e-3)
    before = _loss(name, model, x, ref)
    optimiser.zero_grad()
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = _loss(name, model, x, ref)
    assert after.item() < before.item()


def test_hybrid_cuts_the_papers_centre_crop():
    model = _build("hybrid_vit_cnn_micv").eval()
    x, _ = _inputs(shape=(1, 3, 50, 71))
    top, left = (50 - 32) // 2, (71 - 32) // 2
    with torch.no_grad():
        expected = model(x[..., top : top + 32, left : left + 32])
    assert torch.equal(model.score(x), expected)
    assert hybrid_vit_cnn.center_crop(x, 100).shape == x.shape


def test_structure_predict_shapes_and_prompt_fusion():
    model = _build("t2i_structure_convnext")
    x, _ = _inputs(shape=(2, 3, 70, 50))
    scores, heatmaps = model.predict(x)
    assert scores.shape == (2,)
    assert heatmaps.shape == (2, 1, 70, 50)
    assert float(heatmaps.min()) >= 0.0
    assert float(heatmaps.max()) <= 1.0
    assert torch.equal(scores, model.score(x))
    prompt = torch.rand(2, 3, 12, generator=torch.Generator().manual_seed(3))
    with_prompt, _ = model.predict(x, prompt=prompt)
    assert not torch.equal(with_prompt, scores)
    masked, _ = model.predict(x, prompt=prompt, prompt_mask=torch.tensor([[True, False, False]] * 2))
    first_token, _ = model.predict(x, prompt=prompt[:, :1])
    torch.testing.assert_close(masked, first_token)
    with pytest.raises(Exception, match="prompt must be"):
        model.predict(x, prompt=torch.rand(2, 5))


def test_structure_mask_threshold_boundary():
    # PROTOCOLS 3.3: round(255 h) > 40, so 40.4/255 -> 0 and 40.6/255 -> 1; the threshold is settable.
    h = torch.tensor([[[[40.4 / 255, 40.6 / 255, 0.0, 1.0]]]])
    assert t2i_structure.T2IStructureModel.mask(h).tolist() == [[[[0, 1, 0, 1]]]]
    assert t2i_structure.T2IStructureModel.mask(h, threshold=41).tolist() == [[[[0, 0, 0, 1]]]]
    case = load_case_file("ntire25_t2i_structure.json")["images"][0]
    mask = t2i_structure.T2IStructureModel.mask(np.array(case["pred_heatmap_0_1"]))
    assert mask.tolist() == case["expected_pred_mask"]


def test_ultra_fr_histogram_and_expected_level():
    model = _build("ultra_fr_convnext_tiny").eval()
    x, ref = _inputs()
    with torch.no_grad():
        hist = model.histogram(x, ref)
        one = model.histogram(x, ref, num_samplings=1)
    assert hist.shape == (2, 5)
    torch.testing.assert_close(hist.sum(-1), torch.ones(2))
    assert bool((hist >= 0).all())
    level = model.score(x, ref)
    assert bool(((level >= 1) & (level <= 5)).all())
    torch.testing.assert_close(level, (hist * torch.tensor([1.0, 2, 3, 4, 5])).sum(-1))
    assert not torch.equal(hist, one)
    # expected level of the min-variance histogram of a 21-rater MOS is that MOS (mean of the ratings)
    mos = torch.tensor([1.0, 3.0 + 4 / 21, 5.0], dtype=torch.float64)
    torch.testing.assert_close(ultra_fr.expected_level(min_variance_histogram(mos)), mos)
    with pytest.raises(Exception, match="full-reference"):
        model.score(x)


def test_ultra_fr_region_proposals():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 40, 60, generator=g) * 0.1
    image[:, 8:24, 30:46] = torch.rand(3, 16, 16, generator=g)  # one textured square
    boxes = ultra_fr.sliding_boxes(40, 60, (16, 32), (0.5, 1.0, 2.0))
    assert bool((boxes[:, :2] >= 0).all())
    assert bool((boxes[:, 2] <= 60).all())
    assert bool((boxes[:, 3] <= 40).all())
    gray = (image * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0).double()
    expected = [np.var(gray[int(b[1]) : int(b[3]), int(b[0]) : int(b[2])].numpy()) for b in boxes]
    np.testing.assert_allclose(ultra_fr.box_variances(gray, boxes).numpy(), expected, rtol=1e-9, atol=1e-12)
    candidates = ultra_fr.candidate_regions(image, sizes=(16, 32), max_candidates=5)
    assert candidates.shape[0] <= 5
    assert candidates[0].tolist() == boxes[int(np.argmax(expected))].tolist()  # the most textured box first
    variances = [expected[[b.tolist() for b in boxes].index(c.tolist())] for c in candidates.double()]
    assert variances == sorted(variances, reverse=True)
    for i in range(len(candidates)):  # non-maximum suppression at IoU 0.5, by hand
        for j in range(i):
            (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = candidates[i].tolist(), candidates[j].tolist()
            inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            assert inter / union <= 0.5
    assert torch.equal(
        candidates, ultra_fr.candidate_regions(image.clone(), sizes=(16, 32), max_candidates=5)
    )
    picks = ultra_fr.sample_regions(10, 6, torch.Generator().manual_seed(0))
    assert len(set(picks.tolist())) == 6
    enc = ultra_fr.box_encoding(torch.tensor([[0.0, 0.0, 60.0, 40.0]]), 40, 60, 2)
    torch.testing.assert_close(enc[0, :4], torch.tensor([0.5, 0.5, 1.0, 1.0]))
    torch.testing.assert_close(enc[0, 4:6], torch.sin(torch.tensor([np.pi / 2, np.pi])).float())


def test_ensemble_is_the_weighted_mean_of_its_members():
    torch.manual_seed(0)
    a = create_model("hybrid_vit_cnn_micv", **HYBRID)
    b = create_model("face_lite_mobilenetv3", **{**FACE, "input_policy": POLICIES["fiqa_20x224"]})
    ens = ensemble_mod.build_ensemble([a, b], weights=[0.25, 0.75])
    x, _ = _inputs(shape=(2, 3, 64, 80))
    sa, sb = a.score(x).double().numpy(), b.score(x).double().numpy()
    np.testing.assert_allclose(ens.score(x).double().numpy(), (0.25 * sa + 0.75 * sb) / 1.0, rtol=1e-6)
    ens.calibrate(torch.tensor([[0.1, 0.3, 0.5], [2.0, 4.0, 9.0]]))
    za = (sa - 0.3) / np.std([0.1, 0.3, 0.5])
    zb = (sb - 5.0) / np.std([2.0, 4.0, 9.0])
    np.testing.assert_allclose(ens.score(x).double().numpy(), 0.25 * za + 0.75 * zb, rtol=1e-5)
    with pytest.raises(Exception, match="at least one member"):
        create_model("ensemble")


def test_ensemble_save_load_keeps_members_and_standardisation(tmp_path):
    ens = _build("ensemble")
    x, _ = _inputs()
    ens.calibrate(torch.tensor([[0.1, 0.2, 0.6], [1.0, 2.0, 4.0]]))
    save_model(ens, tmp_path / "ens")
    loaded = load_model(tmp_path / "ens")
    assert [type(m) for m in loaded.members] == [type(m) for m in ens.members]
    assert loaded.config.standardise
    assert torch.equal(loaded.score(x), ens.score(x))


def test_named_policies_follow_the_papers():
    ydy, fiqa = get_policy("ydy_30x128"), get_policy("fiqa_20x224")
    assert (ydy.mode, ydy.num_patches, ydy.tile_size) == ("random_patches", 30, 128)
    assert (fiqa.mode, fiqa.num_patches, fiqa.tile_size) == ("random_patches", 20, 224)
    with pytest.raises(Exception, match="unknown input policy preset"):
        get_policy("ydy")
    assert dataclasses.replace(ydy, seed=3).seed == 3


def test_backbone_weights_load_from_a_timm_checkpoint(tmp_path):
    import timm

    reference = timm.create_model("convnext_atto", pretrained=False, **TINY_CONVNEXT)
    torch.save(reference.state_dict(), tmp_path / "backbone.pth")
    model = create_model(
        "t2i_structure_convnext", **STRUCTURE, backbone_weights=str(tmp_path / "backbone.pth")
    )
    plain = reference.state_dict()
    for key, tensor in model.encoder.state_dict().items():  # features_only renames stem.0 -> stem_0
        name = key.replace("stem_", "stem.").replace("stages_", "stages.")
        assert torch.equal(tensor, plain[name])
    torch.save({"nonsense": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="does not fit timm backbone"):
        create_model("t2i_structure_convnext", **STRUCTURE, backbone_weights=str(tmp_path / "bad.pth"))
    with pytest.raises(WeightsError, match="not found"):
        create_model("t2i_structure_convnext", **STRUCTURE, backbone_weights=str(tmp_path / "none.pth"))


def test_nss_mlp_test_views_average_the_head_over_mirror_image_and_crops():
    torch.manual_seed(0)
    single = create_model("nss_mlp", crop_fraction=0.8).eval()
    averaged = create_model("nss_mlp", crop_fraction=0.8, test_views=["full", "hflip", "crop_tl"]).eval()
    averaged.load_state_dict(single.state_dict())
    images = torch.rand(2, 3, 80, 90)
    with torch.no_grad():
        views = [images, images.flip(-1), images[..., :64, :72]]  # 0.8 x (80, 90)
        expected = torch.stack([single(v) for v in views]).mean(0)
        torch.testing.assert_close(averaged(images), expected)
        descriptors = torch.stack([single.features(v) for v in views], dim=1)  # (B, V, D)
        torch.testing.assert_close(single(descriptors), expected)
    with pytest.raises(InputError, match="test_views"):
        create_model("nss_mlp", test_views=["crop_middle"])
