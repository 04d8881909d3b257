"""Contracts every registered metric, model variant and protocol keeps, parametrised over the registries so a
new entry is tested the moment it is registered.

Metrics and models: one score per image, finite, the same in a batch as one by one; metrics agree in
float32 and float64 and move the declared way (``lower_is_better``) along a Gaussian-blur ladder of a
natural photograph (scipy's ``gaussian_filter`` makes the ladder, independently of perceptiq); the
shipped default model moves the same way; models survive save/load; a bogus option is one line naming
it. Model variants without shipped weights are random: they are built from each family's tiny test
configuration (below) and held to shape, finiteness (except ``NAN_ALLOWED``, with its reason), batch
consistency and the round trip only.
Protocols: the main score is finite, does not depend on the order of the items, and lies in its own
bootstrap interval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata

import perceptiq
from perceptiq.errors import OptionError, PerceptiqError
from perceptiq.evaluation.protocols import AlignmentData, PairData, ScoreData, StructureData
from perceptiq.models import DEFAULT_MODEL, MODELS, create_model, load_model, save_model
from perceptiq.models._base import packaged_weights_dir
from perceptiq.models.pretrained import get_pretrained_backbone
from tiny_models import HYBRID, STRUCTURE, ULTRA
from tiny_vlm import shared_tiny_vlm

BLUR_SIGMAS = (0.6, 1.2, 2.4)  # pixels; a ladder from barely to clearly blurred


def _photo(size: int) -> np.ndarray:
    """skimage's astronaut photograph, centre square, resized to ``size`` (float64 HxWx3 in [0, 1])."""
    img = skdata.astronaut()[32:480, 32:480].astype(np.float64) / 255.0
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="area")[0].permute(1, 2, 0).numpy()


def _ladder(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(reference (1, 3, s, s), blurred (len(BLUR_SIGMAS), 3, s, s)), float64, blur increasing."""
    ref = _photo(size)
    blurred = [np.clip(gaussian_filter(ref, sigma=(s, s, 0), mode="reflect"), 0, 1) for s in BLUR_SIGMAS]
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)  # noqa: E731
    return as_t(ref)[None], torch.stack([as_t(b) for b in blurred])


def _one_by_one(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(x[i : i + 1]) for i in range(len(x))])


def _assert_one_line_option_error(make: Callable[[], Any], key: str) -> None:
    with pytest.raises(OptionError) as info:
        make()
    assert isinstance(info.value, PerceptiqError)
    message = str(info.value)
    assert key in message
    assert "\n" not in message


# ------------------------------------------------------------------------------------------ metrics

METRIC_OPTIONS: dict[str, dict[str, Any]] = {"model": {"model": DEFAULT_MODEL}}  # required options
METRIC_SIZE = {"niqe": 192, "ms_ssim": 176}  # two 96-pixel NIQE patches per side; five MS-SSIM scales


@pytest.fixture(scope="module")
def metric_ladders() -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    return {size: _ladder(size) for size in {96, *METRIC_SIZE.values()}}


def _metric(name: str):
    return perceptiq.create_metric(name, **METRIC_OPTIONS.get(name, {}))


def _metric_scores(metric, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return metric(x, ref.expand_as(x) if metric.needs_reference else None)


@pytest.mark.parametrize("name", perceptiq.list_metrics())
def test_metric_scores_one_finite_value_per_image_in_float32_and_float64(name, metric_ladders):
    ref, x = metric_ladders[METRIC_SIZE.get(name, 96)]
    metric = _metric(name)
    scores64 = _metric_scores(metric, x, ref)
    scores32 = _metric_scores(metric, x.float(), ref.float())
    assert scores32.shape == scores64.shape == (len(x),)
    assert torch.isfinite(scores32).all()
    assert torch.isfinite(scores64).all()
    torch.testing.assert_close(scores32.double(), scores64.double(), rtol=1e-3, atol=1e-4)
    single = _one_by_one(lambda one: _metric_scores(metric, one, ref.float()), x.float())
    torch.testing.assert_close(single, scores32, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", perceptiq.list_metrics())
def test_metric_moves_the_declared_way_along_a_blur_ladder(name, metric_ladders):
    ref, x = metric_ladders[METRIC_SIZE.get(name, 96)]
    metric = _metric(name)
    scores = _metric_scores(metric, x.float(), ref.float()).double()
    worse = torch.diff(scores) if metric.lower_is_better else -torch.diff(scores)
    assert bool((worse > 0).all()), f"{name} (lower_is_better={metric.lower_is_better}): {scores.tolist()}"


@pytest.mark.parametrize("name", perceptiq.list_metrics())
def test_metric_refuses_an_unknown_option_in_one_line(name):
    _assert_one_line_option_error(
        lambda: perceptiq.create_metric(name, **METRIC_OPTIONS.get(name, {}), bogus_option=1), "bogus_option"
    )


# ------------------------------------------------------------------------------------------- models
# Tiny configurations per family (the architectures of tests/test_models_families.py and
# tests/test_models_clip.py), derived from each variant's own config so every variant keeps its mode.

TEXT_WORDS = 64  # word vocabulary size of the tiny towers (unknown words map to <unk>)
TEXT = {
    "vocab_size": TEXT_WORDS + 4,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "max_position_embeddings": 32,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": TEXT_WORDS + 3,
}
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
SQUARE = {**VISION, "image_size": 32, "patch_size": 8}
TOWERS = {
    "clip": {"projection_dim": 32, "text_config": TEXT, "vision_config": SQUARE},
    "siglip": {"text_config": TEXT, "vision_config": SQUARE},
    "siglip2": {"text_config": TEXT, "vision_config": {**VISION, "patch_size": 8, "num_patches": 16}},
    "open_clip": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
        "text_cfg": {"context_length": 32, "vocab_size": TEXT_WORDS + 4, "width": 32, "heads": 2, "layers": 1},  # noqa: E501
    },
}  # fmt: skip
LIQE = {"liqe_stride": 8, "liqe_large_stride": 12, "liqe_large_side": 1000, "liqe_resize": 0}


def _words() -> dict[str, Any]:
    from perceptiq.models._image_text import word_vocabulary
    from perceptiq.models.clip_prompt import liqe_joint_prompts, quality_prompts

    joint, _ = liqe_joint_prompts()
    vocab = word_vocabulary([*quality_prompts(), *joint, "a photo"])[:TEXT_WORDS]
    return {"tokenizer": "words", "tokenizer_vocab": vocab}


def _tiny_towers(cfg) -> dict[str, Any]:
    tower = "open_clip" if cfg.library == "open_clip" else cfg.arch
    out = {"backbone_config": TOWERS[tower], **_words()}
    if cfg.arch == "siglip2":
        out["max_num_patches"] = 24
        out["input_policy"] = dataclasses.replace(cfg.input_policy, patch_size=8, max_patches=24)
    if getattr(cfg, "liqe_patches", False):
        out.update(LIQE)
    return out


def _tiny_rectifier(cfg) -> dict[str, Any]:
    base = MODELS.create(cfg.base)
    base_cfg = base.replace(**_tiny_towers(base))
    extractor = {"extractor": "vit_tiny_patch16_224", "extractor_kwargs": {"img_size": 32, "depth": 1}}
    return {"base_config": base_cfg.to_dict(), **extractor}


def _tiny_face(cfg) -> dict[str, Any]:
    policy = dataclasses.replace(cfg.input_policy, tile_size=32, num_patches=3)
    out = {"input_size": 32, "head_hidden": 8, "input_policy": policy}
    entry = getattr(cfg, "pretrained_backbone", None)  # an ensemble's config passes here too
    if entry and find_spec(get_pretrained_backbone(entry).module) is None:
        out["pretrained_backbone"] = None  # without its weights package: the same network, random weights
    return out


def _tiny_ensemble(cfg) -> dict[str, Any]:
    from perceptiq.models.ensemble import ensemble_config

    members = [
        MODELS.create("face_lite_mobilenetv3").replace(backbone="mobilenetv3_small_050", **_tiny_face(cfg)),
        MODELS.create("nss_mlp").replace(short_side=64, n_members=2, hidden=8),
    ]
    return {"members": ensemble_config(members, [0.25, 0.75]).members}


TINY: dict[str, Callable[[Any], dict[str, Any]]] = {
    "clip_prompt": _tiny_towers,
    "t2i_alignment": _tiny_towers,
    "rank_rectifier": _tiny_rectifier,
    "face_lite": _tiny_face,
    "ensemble": _tiny_ensemble,
    "nss_mlp": lambda cfg: {"short_side": 64, "n_members": 2, "hidden": 8},
    "backbone_stats_mlp": lambda cfg: {"stages": ("blocks.0.0", "blocks.2.1"), "n_members": 2, "hidden": 8},
    "hybrid_vit_cnn": lambda cfg: HYBRID,
    "t2i_structure": lambda cfg: {**STRUCTURE, "prompt_dim": 12 if cfg.prompt_dim else 0},
    "ultra_fr": lambda cfg: ULTRA,
    "vlm_levels": lambda cfg: {"checkpoint": str(shared_tiny_vlm())},  # a tiny chat VLM in a temp folder
    "vlm_reasoning": lambda cfg: {"checkpoint": str(shared_tiny_vlm()), "samples": 2, "max_new_tokens": 4},
}
MODEL_SIZE = 64
# Families whose random tiny model may score NaN, with the reason; they keep every other contract.
NAN_ALLOWED = {
    "vlm_reasoning": "a random tiny VLM writes no number (its vocabulary has no digits), so it scores NaN: "
    "the family never substitutes a random score",
}


def _shipped(name: str) -> bool:
    return packaged_weights_dir(name) is not None


def _build(name: str):
    """The variant itself when its weights ship (the real model), else its tiny random configuration."""
    torch.manual_seed(0)
    if _shipped(name):
        return create_model(name).eval()
    cfg = MODELS.create(name)
    return create_model(name, **TINY.get(cfg.family, lambda c: {})(cfg)).eval()


def _model_scores(model, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return model.score(x, ref.expand_as(x) if model.needs_reference else None)


@pytest.fixture(scope="module")
def model_ladder() -> tuple[torch.Tensor, torch.Tensor]:
    ref, x = _ladder(MODEL_SIZE)
    return ref.float(), x.float()


@pytest.mark.parametrize("name", perceptiq.models.list_models())
def test_model_scores_are_finite_batch_consistent_and_survive_save_load(name, model_ladder, tmp_path):
    ref, x = model_ladder
    model = _build(name)
    scores = _model_scores(model, x, ref)
    assert scores.shape == (len(x),)
    if model.config.family not in NAN_ALLOWED:
        assert torch.isfinite(scores).all()
    single = _one_by_one(lambda one: _model_scores(model, one, ref), x)
    torch.testing.assert_close(single, scores, rtol=1e-4, atol=1e-5, equal_nan=True)
    loaded = load_model(save_model(model, tmp_path / name))
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    torch.testing.assert_close(_model_scores(loaded, x, ref), scores, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", [n for n in perceptiq.models.list_models() if _shipped(n)])
def test_shipped_model_scores_blurrier_photos_lower(name):
    ref, x = _ladder(256)
    scores = _model_scores(_build(name), x.float(), ref.float()).double()
    assert bool((torch.diff(scores) < 0).all()), f"{name}: {scores.tolist()}"


@pytest.mark.parametrize("name", perceptiq.models.list_models())
def test_model_refuses_an_unknown_option_in_one_line(name):
    _assert_one_line_option_error(lambda: create_model(name, bogus_option=1), "bogus_option")


def test_the_default_model_ships_with_weights():
    assert _shipped(DEFAULT_MODEL)


# ---------------------------------------------------------------------------------------- protocols

N_ITEMS = 40


def _protocol_data(kind: type, seed: int = 0):
    """Synthetic data of ``kind``: predictions correlated with the ground truth, with some noise."""
    rng = np.random.default_rng(seed)
    mos = rng.uniform(1, 5, N_ITEMS)
    pred = mos + rng.normal(0, 0.8, N_ITEMS)
    ids = np.array([f"img{i:02d}" for i in range(N_ITEMS)])
    if kind is PairData:
        first, second = rng.uniform(0, 1, (2, N_ITEMS))
        p = np.clip(0.5 + (first - second) + rng.normal(0, 0.2, N_ITEMS), 0, 1)
        return PairData(ids, p, first, second)
    if kind is AlignmentData:
        gt = tuple(rng.integers(0, 2, rng.integers(1, 4)).astype(float) for _ in range(N_ITEMS))
        element_pred = tuple(np.clip(g + rng.normal(0, 0.4, g.size), 0, 1) for g in gt)
        return AlignmentData(ids, pred, mos, element_pred=element_pred, element_gt=gt)
    if kind is StructureData:
        gt_masks = tuple(rng.random((8, 8)) < 0.3 for _ in range(N_ITEMS))
        pred_masks = tuple(m ^ (rng.random((8, 8)) < 0.1) for m in gt_masks)
        return StructureData(ids, pred, mos, pred_masks=pred_masks, gt_masks=gt_masks)
    assert kind is ScoreData, f"no synthetic data for {kind.__name__}: add it here"
    return ScoreData(ids, pred, mos)


def _permuted(data, order: np.ndarray):
    fields = {}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if isinstance(value, np.ndarray) and value.shape[:1] == (len(order),):
            value = value[order]
        elif isinstance(value, tuple) and len(value) == len(order):
            value = tuple(value[i] for i in order)
        fields[f.name] = value
    return type(data)(**fields)


def _main(result) -> float:
    return result.statistics["main"] if "main" in result.statistics else result.statistics["srcc"]


@pytest.mark.parametrize("name", perceptiq.list_protocols())
def test_protocol_main_score_is_finite_and_independent_of_item_order(name):
    protocol = perceptiq.create_protocol(name)
    data = _protocol_data(protocol.data_kind)
    value = _main(protocol.evaluate(data))
    assert np.isfinite(value)
    order = np.random.default_rng(1).permutation(N_ITEMS)
    assert _main(protocol.evaluate(_permuted(data, order))) == pytest.approx(value, abs=1e-9)


@pytest.mark.parametrize("name", perceptiq.list_protocols())
def test_protocol_bootstrap_interval_holds_the_point_estimate(name):
    protocol = perceptiq.create_protocol(name)
    result = protocol.evaluate(_protocol_data(protocol.data_kind), bootstrap=50, seed=3)
    key = "main" if "main" in result.statistics else "srcc"
    interval = result.intervals[key]
    assert interval.low <= result.statistics[key] <= interval.high


@pytest.mark.parametrize("name", perceptiq.list_protocols())
def test_protocol_refuses_an_unknown_option_in_one_line(name):
    _assert_one_line_option_error(lambda: perceptiq.create_protocol(name, bogus_option=1), "bogus_option")
