"""Image-text model families: clip_prompt, rank_rectifier, t2i_alignment (tiny random configs).

References: LIQE/Q-Align/EvalMuse worked cases (../shared/docs/protocol_cases), numpy re-computations of
the published formulas from the backbone library's own outputs, transformers' Siglip2ImageProcessor,
and weights written by transformers ``save_pretrained`` and open_clip ``save_for_hf``.
"""

from __future__ import annotations

import importlib
import math
import shutil

import numpy as np
import pytest
import torch

from conftest import load_case_file
from perceptiq.errors import InputError
from perceptiq.functional.patches import Box
from perceptiq.models import WeightsError, create_model, load_model, save_model
from perceptiq.models._image_text import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    naflex_grid,
    patchify,
    word_vocabulary,
)
from perceptiq.models.clip_prompt import (
    LIQE_DISTORTIONS,
    LIQE_SCENES,
    PROMPT_TEMPLATE_DEMO,
    ClipPromptConfig,
    ClipPromptModel,
    expected_level,
    level_probabilities,
    liqe_joint_prompts,
    liqe_patch_boxes,
    liqe_resize_size,
    quality_prompts,
)
from perceptiq.models.rank_rectifier import RankRectifierConfig, RankRectifierModel, rectify
from perceptiq.models.t2i_alignment import (
    T2IAlignmentConfig,
    T2IAlignmentModel,
    binarize_elements,
    element_text,
)

pytest.importorskip("transformers")
pytest.importorskip("open_clip")

T2I_TEXTS = ["a red cat on a mat", "a dog", "red (color)", "cat (animal)", "mat", "a photo without of"]
VOCAB = word_vocabulary(quality_prompts() + quality_prompts(PROMPT_TEMPLATE_DEMO) + T2I_TEXTS)
N_TOKENS = len(VOCAB) + 4  # <pad> <unk> <bos> ... <eos>
TEXT = {
    "vocab_size": N_TOKENS,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 16,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": N_TOKENS - 1,
}
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
CLIP_TINY = {
    "projection_dim": 32,
    "text_config": TEXT,
    "vision_config": {**VISION, "image_size": 32, "patch_size": 8},
}
SIGLIP2_TINY = {"text_config": TEXT, "vision_config": {**VISION, "patch_size": 8, "num_patches": 16}}
OPEN_CLIP_TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": N_TOKENS, "width": 32, "heads": 2, "layers": 2},
}
WORDS = {"tokenizer": "words", "tokenizer_vocab": VOCAB}
LIQE_TINY = {
    "liqe_patches": True,
    "liqe_stride": 8,
    "liqe_large_stride": 12,
    "liqe_large_side": 1000,
    "liqe_resize": 0,
}


def tiny_clip(**options) -> ClipPromptModel:
    return ClipPromptModel(ClipPromptConfig(arch="clip", backbone_config=CLIP_TINY, **WORDS, **options))


def tiny_siglip2(**options) -> ClipPromptModel:
    cfg = ClipPromptConfig(
        arch="siglip2", backbone_config=SIGLIP2_TINY, max_num_patches=24, **WORDS, **options
    )
    return ClipPromptModel(cfg)


def tiny_open_clip(**options) -> ClipPromptModel:
    cfg = ClipPromptConfig(
        library="open_clip", arch="ViT-B-32", backbone_config=OPEN_CLIP_TINY, **WORDS, **options
    )
    return ClipPromptModel(cfg)


def tiny_rectifier(**options) -> RankRectifierModel:
    base = ClipPromptConfig(arch="clip", backbone_config=CLIP_TINY, **WORDS)
    extractor = {"extractor": "vit_tiny_patch16_224", "extractor_kwargs": {"img_size": 32, "depth": 2}}
    return RankRectifierModel(RankRectifierConfig(base_config=base.to_dict(), **{**extractor, **options}))


def tiny_t2i(**options) -> T2IAlignmentModel:
    return T2IAlignmentModel(T2IAlignmentConfig(arch="clip", backbone_config=CLIP_TINY, **WORDS, **options))


BUILDERS = {
    "clip": tiny_clip,
    "clip_liqe": lambda: tiny_clip(**LIQE_TINY),
    "clip_coop": lambda: tiny_clip(n_context=3),
    "siglip2_naflex": tiny_siglip2,
    "open_clip": tiny_open_clip,
    "rectifier_extractor": tiny_rectifier,
    "rectifier_base_features": lambda: tiny_rectifier(features="base"),
    "t2i_alignment": tiny_t2i,
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and on a loaded machine threads make them 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


# --- formulas -------------------------------------------------------------------------------------


def test_prompts_are_the_liqe_and_qa_veteran_strings():
    case = load_case_file("liqe.json")["prompts"]
    assert quality_prompts() == case["quality_only"]
    assert quality_prompts() == [
        f"a photo with {c} quality" for c in ("bad", "poor", "fair", "good", "perfect")
    ]
    assert quality_prompts(PROMPT_TEMPLATE_DEMO)[0] == "a photo of bad quality"  # SR-IQA demo.py
    assert list(LIQE_SCENES) == case["scenes"]
    assert list(LIQE_DISTORTIONS) == case["dists_map"]
    prompts, levels = liqe_joint_prompts()
    assert prompts == case["joint"]
    assert len(prompts) == 495
    assert levels == [i // 99 for i in range(495)]  # index = q*99 + s*11 + d


def test_expected_level_matches_qalign_cases_and_a_hand_computation():
    for case in load_case_file("qalign.json")["score_cases"]:
        order = ["excellent", "good", "fair", "poor", "bad"]
        logits = torch.tensor([[case["level_logits"][w] for w in order]], dtype=torch.float64)
        probs = level_probabilities(logits, torch.arange(5), 5)
        wa5 = expected_level(probs, torch.tensor([5.0, 4, 3, 2, 1], dtype=torch.float64))
        unit = expected_level(probs, torch.tensor([1.0, 0.75, 0.5, 0.25, 0], dtype=torch.float64))
        assert wa5.item() == pytest.approx(case["expected_score_1_to_5"], abs=1e-9)
        assert unit.item() == pytest.approx(case["expected_score_0_to_1"], abs=1e-9)
    logits = np.array([0.3, -1.2, 2.0, 0.0, 1.1])
    hand = sum((k + 1) * math.exp(v) for k, v in enumerate(logits)) / sum(math.exp(v) for v in logits)
    got = expected_level(
        level_probabilities(torch.tensor(logits), torch.arange(5), 5), torch.arange(1.0, 6.0)
    )
    assert got.item() == pytest.approx(hand, abs=1e-12)


def test_level_probabilities_marginalise_the_joint_prompts():
    logits = torch.randn(2, 495, dtype=torch.float64)
    _, levels = liqe_joint_prompts()
    got = level_probabilities(logits, torch.tensor(levels), 5)
    expected = softmax(logits.numpy()).reshape(2, 5, 99).sum(axis=2)  # LIQE: reshape (5, 9, 11), marginalise
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_liqe_patch_selection_and_resize_follow_the_worked_cases():
    data = load_case_file("liqe.json")
    for case in data["patch_sampling"]:
        boxes = liqe_patch_boxes(case["H"], case["W"])
        assert [[b.top, b.left] for b in boxes] == case["selected_top_left_yx"]
    for case in data["adaptive_resize_768"]:
        assert liqe_resize_size(case["h"], case["w"])[::-1] == tuple(case["expected_wh"])
    # hand cases of the rule: 224 grid, stride 32 (48 from a 1024 side), indices i * (N // 15)
    two_rows = liqe_patch_boxes(256, 704)  # 2 x 16 = 32 patches -> every 2nd patch
    assert two_rows[8] == Box(32, 0, 224, 224)
    assert two_rows[7] == Box(0, 14 * 32, 224, 224)
    large = liqe_patch_boxes(1024, 1024)  # 17 x 17 = 289 patches, stride 48 -> every 19th
    assert large[1] == Box(48, 2 * 48, 224, 224)
    spread = liqe_patch_boxes(256, 320, selection="spread")  # N = 8: floor(i * 8 / 15)
    assert [b.left // 32 + 4 * (b.top // 32) for b in spread] == [i * 8 // 15 for i in range(15)]
    with pytest.raises(InputError, match="smaller than"):
        liqe_patch_boxes(200, 400)


# --- clip_prompt ----------------------------------------------------------------------------------


def _library_embeddings(model: ClipPromptModel, pixels: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float]:
    """Image and prompt embeddings from transformers' CLIPModel itself, and exp(logit_scale)."""
    hf = model.backbone.model
    mean, std = (
        torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1),
        torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1),
    )
    with torch.no_grad():
        img = hf.get_image_features(pixel_values=(pixels - mean) / std).pooler_output
        txt = hf.get_text_features(input_ids=model.prompt_ids, attention_mask=model.prompt_mask).pooler_output
    return img.double().numpy(), txt.double().numpy(), float(hf.logit_scale.exp())


def test_score_is_the_expected_level_of_softmax_over_scaled_cosines():
    torch.manual_seed(0)
    model = tiny_clip().eval()
    x = torch.rand(3, 3, 32, 32)  # the tower's size: no resize
    img, txt, scale = _library_embeddings(model, x)
    expected = softmax(scale * cosine(img, txt)) @ np.arange(1, 6)
    np.testing.assert_allclose(model.score(x).numpy(), expected, atol=1e-5)
    assert model.prompts == quality_prompts()


def test_patch_logits_are_averaged_before_the_softmax():
    torch.manual_seed(1)
    model = tiny_clip(**LIQE_TINY).eval()
    with torch.no_grad():  # sharpen the logits so that the two aggregation rules differ clearly
        model.backbone.model.logit_scale.fill_(math.log(60.0))
    x = torch.rand(2, 3, 48, 64)  # 32-px patches, stride 8: 3 x 5 = 15 patches, all kept
    crops = torch.stack(
        [x[:, :, 8 * (k // 5) : 8 * (k // 5) + 32, 8 * (k % 5) : 8 * (k % 5) + 32] for k in range(15)]
    )
    img, txt, scale = _library_embeddings(model, crops.reshape(30, 3, 32, 32))
    logits = scale * cosine(img, txt).reshape(15, 2, 5)
    logits_first = softmax(logits.mean(axis=0)) @ np.arange(1, 6)
    probs_first = softmax(logits).mean(axis=0) @ np.arange(1, 6)
    np.testing.assert_allclose(model.score(x).numpy(), logits_first, atol=1e-5)
    assert np.abs(logits_first - probs_first).max() > 1e-3
    model.config = model.config.replace(patch_aggregation="probabilities")
    np.testing.assert_allclose(model.score(x).numpy(), probs_first, atol=1e-5)


def test_learnable_context_equals_inserting_those_token_embeddings():
    torch.manual_seed(2)
    model = tiny_clip(n_context=2).eval()
    hf = model.backbone.model
    extra = torch.tensor([VOCAB.index("red") + 3, VOCAB.index("cat") + 3])  # word ids start at 3
    with torch.no_grad():
        model.context.copy_(hf.text_model.embeddings.token_embedding(extra))
        inserted = torch.cat([model.prompt_ids[:, :1], extra.expand(5, 2), model.prompt_ids[:, 1:-2]], dim=1)
        mask = torch.cat(
            [model.prompt_mask[:, :1], torch.ones(5, 2, dtype=torch.long), model.prompt_mask[:, 1:-2]], 1
        )
        reference = hf.get_text_features(input_ids=inserted, attention_mask=mask).pooler_output
        torch.testing.assert_close(model.text_embeddings(), reference, atol=1e-5, rtol=1e-5)
    assert model.context.requires_grad
    assert any(p is model.context for p in model.parameters())


def test_naflex_grid_matches_the_siglip2_processor():
    from transformers.models.siglip2.image_processing_siglip2 import get_image_size_for_max_num_patches

    cases = [(1080, 1920, 16, 4624), (1152, 2040, 16, 4624), (37, 90, 8, 24), (4320, 7680, 16, 5776)]
    cases += [(500, 375, 16, 256), (20, 1000, 16, 64), (224, 224, 16, 196), (33, 33, 8, 5)]
    for h, w, p, n in cases:
        rows, cols = naflex_grid(h, w, p, n)
        assert (rows * p, cols * p) == get_image_size_for_max_num_patches(h, w, p, n)
        assert rows * cols <= n


def test_naflex_patches_match_the_siglip2_image_processor():
    from transformers import Siglip2ImageProcessor

    image = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)  # 3 x 5 patches of 8
    out = Siglip2ImageProcessor(patch_size=8, max_num_patches=16)(images=[image], return_tensors="pt")
    x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.5
    assert out["spatial_shapes"].tolist() == [[3, 5]]
    assert naflex_grid(24, 40, 8, 16) == (3, 5)
    torch.testing.assert_close(patchify(x, 8)[0], out["pixel_values"][0, :15], atol=1e-5, rtol=0)
    assert out["pixel_attention_mask"][0].tolist() == [1] * 15 + [0]


def test_siglip2_naflex_keeps_the_aspect_ratio_within_the_budget():
    torch.manual_seed(3)
    model = tiny_siglip2().eval()
    seen = []
    handle = model.backbone.model.vision_model.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(kwargs["spatial_shapes"].tolist()), with_kwargs=True
    )
    x = torch.rand(2, 3, 37, 90)
    wide = model.score(x)
    model(x, max_num_patches=40)
    handle.remove()
    assert seen == [[[3, 8], [3, 8]], [[4, 10], [4, 10]]]  # naflex_grid(37, 90, 8, 24) and (.., 40)
    assert wide.shape == (2,)
    assert bool(((wide >= 1) & (wide <= 5)).all())


# --- every family ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
def test_family_scores_a_batch_deterministically(name):
    torch.manual_seed(4)
    model = BUILDERS[name]()
    x = torch.rand(3, 3, 40, 56)
    scores = model.score(x)
    assert scores.shape == (3,)
    assert bool(torch.isfinite(scores).all())
    assert torch.equal(scores, model.score(x))
    if model.score_range is not None:
        low, high = model.score_range
        assert bool(((scores >= low) & (scores <= high)).all())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_save_load_round_trip_is_bit_exact(name, tmp_path):
    torch.manual_seed(5)
    model = BUILDERS[name]()
    x = torch.rand(2, 3, 48, 40)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert torch.equal(loaded.score(x), model.score(x))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_training_steps_lower_the_loss_on_a_repeated_batch(name):
    torch.manual_seed(6)
    model = BUILDERS[name]()
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([1.5, 2.5, 3.5, 4.5])
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=3e-3)
    model.train()
    losses = []
    for _ in range(4):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_create_model_takes_the_saved_config_of_a_weights_directory(tmp_path):
    torch.manual_seed(7)
    model = tiny_clip(n_context=2)
    save_model(model, tmp_path / "m")
    again = create_model("clip_prompt_vit_b32", weights=tmp_path / "m")
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(again.score(x), model.score(x))


# --- backbone weights -----------------------------------------------------------------------------


def test_loads_a_clip_saved_by_transformers_save_pretrained(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(8)
    reference = CLIPModel(CLIPConfig(**CLIP_TINY))
    reference.save_pretrained(tmp_path / "hf")
    model = ClipPromptModel(ClipPromptConfig(arch="clip", backbone_path=str(tmp_path / "hf"), **WORDS))
    state = model.backbone.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.state_dict().items())
    assert model.config.backbone_path is None
    assert model.config.backbone_config["projection_dim"] == 32
    save_model(model, tmp_path / "pq")
    shutil.rmtree(tmp_path / "hf")  # the perceptiq weights no longer need the library's directory
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(load_model(tmp_path / "pq").score(x), model.score(x))


def test_loads_an_open_clip_model_saved_by_open_clip(tmp_path):
    import open_clip

    from perceptiq.models._image_text import word_tokenizer

    save_for_hf = importlib.import_module("open_clip.push_to_hf_hub").save_for_hf
    torch.manual_seed(9)
    reference = open_clip.create_model("ViT-B-32", pretrained=None, **OPEN_CLIP_TINY)
    save_for_hf(reference, word_tokenizer(VOCAB), OPEN_CLIP_TINY, tmp_path / "oc")
    model = tiny_open_clip(backbone_path=str(tmp_path / "oc"))
    state = model.backbone.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.state_dict().items())
    with torch.no_grad():
        logits = (
            reference.logit_scale.exp()
            * torch.nn.functional.normalize(
                reference.encode_image(
                    (torch.full((1, 3, 32, 32), 0.5) - model.backbone.mean) / model.backbone.std
                ),
                dim=-1,
            )
            @ torch.nn.functional.normalize(reference.encode_text(model.prompt_ids), dim=-1).T
        )
    expected = (torch.softmax(logits, dim=-1) * torch.arange(1.0, 6.0)).sum()
    assert model.score(torch.full((1, 3, 32, 32), 0.5)).item() == pytest.approx(expected.item(), abs=1e-5)


def test_backbone_and_tokenizer_errors_are_clear(tmp_path):
    with pytest.raises(WeightsError, match="save_pretrained"):
        tiny_clip(backbone_path=str(tmp_path))
    with pytest.raises(InputError, match="arch must be one of"):
        ClipPromptModel(ClipPromptConfig(arch="blip", **WORDS))
    with pytest.raises(InputError, match="NaFlex"):
        tiny_siglip2(liqe_patches=True)
    siglip2 = ClipPromptModel(
        ClipPromptConfig(arch="siglip2", backbone_config=SIGLIP2_TINY)
    )  # no tokenizer files
    with pytest.raises(WeightsError, match="prompt token ids are unknown"):
        siglip2.score(torch.rand(1, 3, 16, 16))
    with pytest.raises(InputError, match="logit bias"):
        tiny_t2i(rule="sigmoid")


# --- rank_rectifier -------------------------------------------------------------------------------


def test_rectifier_residual_and_affine_forms_on_a_hand_case():
    q = torch.tensor([1.0, 2.5, 4.0])
    a, b = torch.full((3,), -0.5), torch.full((3,), 0.2)
    torch.testing.assert_close(rectify(q, a, b), 1.5 * q + 0.2)
    torch.testing.assert_close(rectify(q, a, b, "affine"), -0.5 * q + 0.2)
    torch.manual_seed(10)
    model = tiny_rectifier().eval()
    last = model.head.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-0.5, 0.2]))
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model.score(x), 1.5 * model.base.score(x) + 0.2)


def test_rectifier_keeps_the_base_frozen_unless_asked():
    torch.manual_seed(11)
    model = tiny_rectifier()
    assert not any(p.requires_grad for p in model.base.parameters())
    assert not any(p.requires_grad for p in model.extractor.parameters())
    before = {k: v.clone() for k, v in model.base.state_dict().items()}
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([2.0, 4.0])
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    assert not model.base.training
    torch.nn.functional.mse_loss(model(x), y).backward()
    optimiser.step()
    assert all(torch.equal(v, model.base.state_dict()[k]) for k, v in before.items())
    trained = tiny_rectifier(train_base=True)
    logit_scale = trained.base.backbone.logit_scale_parameter()
    assert all(p.requires_grad for p in trained.base.parameters() if p is not logit_scale)
    assert not logit_scale.requires_grad  # frozen as in LIQE / SR-IQA train.py


# --- t2i_alignment --------------------------------------------------------------------------------


def test_element_text_and_binarisation_follow_evalmuse():
    for case in load_case_file("ntire25_t2i_alignment.json")["element_name_parsing"]:
        assert element_text(case["element_key"]) == case["expected_text_before_paren"]
    assert element_text("mat") == "mat"
    assert binarize_elements(torch.tensor([0.5, 0.4999, 0.8373, 0.0])).tolist() == [1, 0, 1, 0]


def test_t2i_probabilities_follow_the_contrast_rule():
    torch.manual_seed(12)
    model = tiny_t2i().eval()
    x = torch.rand(2, 3, 32, 32)
    prompts, elements = ["a red cat on a mat", "a dog"], [["red (color)", "cat (animal)"], ["mat"]]
    with torch.no_grad():
        result = model.score_with_text(x, prompts, elements)
    tok = model.tokenizer
    hf = model.backbone.model
    mean, std = (
        torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1),
        torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1),
    )

    def probability(i: int, text: str) -> float:
        ids, mask = tok([f"a photo of {text}", f"a photo without {text}"])
        with torch.no_grad():
            img = (
                hf.get_image_features(pixel_values=(x[i : i + 1] - mean) / std).pooler_output.double().numpy()
            )
            txt = hf.get_text_features(input_ids=ids, attention_mask=mask).pooler_output.double().numpy()
        cos = cosine(img, txt)[0]
        return 1 / (1 + math.exp(-float(hf.logit_scale.exp()) * (cos[0] - cos[1])))

    for i, prompt in enumerate(prompts):
        assert result.overall[i].item() == pytest.approx(4 * probability(i, prompt) + 1, abs=1e-5)
    assert result.element_probs[0].tolist() == pytest.approx(
        [probability(0, "red"), probability(0, "cat")], abs=1e-5
    )
    assert result.element_probs[1].tolist() == pytest.approx([probability(1, "mat")], abs=1e-5)
    assert [r.tolist() for r in result.element_labels] == [
        (p >= 0.5).long().tolist() for p in result.element_probs
    ]
    shared = model.score_with_text(x, "a dog", ["mat"])
    assert [len(p) for p in shared.element_probs] == [1, 1]


def test_t2i_sigmoid_rule_is_siglips_pairwise_probability():
    torch.manual_seed(13)
    model = T2IAlignmentModel(
        T2IAlignmentConfig(arch="siglip2", backbone_config=SIGLIP2_TINY, rule="sigmoid", **WORDS)
    )
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        result = model.score_with_text(x, ["a dog"], [["cat (animal)"]])
        img = model.backbone.encode_image(x).double().numpy()
        ids, mask = model.tokenizer(["a dog", "cat"])
        txt = (
            model.backbone.model.get_text_features(input_ids=ids, attention_mask=mask)
            .pooler_output.double()
            .numpy()
        )
        scale, bias = model.backbone.model.logit_scale.exp().item(), model.backbone.model.logit_bias.item()
    p = 1 / (1 + np.exp(-(scale * cosine(img, txt)[0] + bias)))
    assert result.match_probability.item() == pytest.approx(p[0], abs=1e-5)
    assert result.element_probs[0].item() == pytest.approx(p[1], abs=1e-5)
