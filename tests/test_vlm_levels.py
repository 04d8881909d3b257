"""vlm_levels: level-token scoring of a chat VLM, checked against transformers itself on tiny random Qwen2-VL
and Qwen2.5-VL checkpoints, and the level helpers against the Q-Align / DeQA-Score worked cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from typer.testing import CliRunner  # noqa: E402

from conftest import load_case_file  # noqa: E402
from perceptiq.functional.levels import (  # noqa: E402
    LEVEL_NAMES,
    level_probs_from_logits,
    level_score,
    level_score_std,
    mos_to_level,
)
from perceptiq.models import create_model  # noqa: E402
from perceptiq.models._base import WeightsError  # noqa: E402
from tiny_vlm import build_tiny_vlm  # noqa: E402

SIZE = 56
QALIGN_W = np.array([1.0, 0.75, 0.5, 0.25, 0.0])
DEQA_W = np.array([5.0, 4.0, 3.0, 2.0, 1.0])


# -- level helpers (layer 1) ----------------------------------------------------------------------------
def test_qalign_score_cases():
    case = load_case_file("qalign.json")
    for c in case["score_cases"]:
        logits = torch.tensor([c["level_logits"][w] for w in LEVEL_NAMES], dtype=torch.float64)
        probs = level_probs_from_logits(logits)
        assert level_score(probs, "deqa").item() == pytest.approx(c["expected_score_1_to_5"], abs=1e-9)
        assert level_score(probs, "qalign").item() == pytest.approx(c["expected_score_0_to_1"], abs=1e-9)


def test_qalign_level_binning_cases():
    for c in load_case_file("qalign.json")["level_binning_cases"]:
        assert mos_to_level(c["mos"], c["min"], c["max"]) == [c["expected_level"]]


def test_deqa_cases_level_and_score_std():
    for c in load_case_file("deqa_score.json")["soft_label_cases"]:
        inp, exp = c["inputs"], c["expected"]
        assert mos_to_level(inp["mos"], inp["min_mos"], inp["max_mos"]) == [exp["level"]]
        p = np.array(exp["level_probs"], dtype=np.float64)  # excellent..bad, as DeQA stores them
        mu = float(p @ DEQA_W)
        std = float(np.sqrt((p * (DEQA_W - mu) ** 2).sum()))
        t = torch.tensor(p)
        assert level_score(t, "deqa").item() == pytest.approx(mu, abs=1e-12)
        assert level_score_std(t, "deqa").item() == pytest.approx(std, abs=1e-12)
        if not exp["binary_fallback"] and min(exp["level_probs"]) > 0:  # unclamped: the mean is the MOS
            assert mu == pytest.approx(exp["mos_norm"], abs=1e-6)


def test_mos_out_of_range_is_refused():
    from perceptiq.errors import InputError

    with pytest.raises(InputError, match="outside"):
        mos_to_level(5.5, 1.0, 5.0)


# -- the model on tiny checkpoints ----------------------------------------------------------------------
@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def checkpoint(request, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return build_tiny_vlm(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 3, SIZE, SIZE, generator=g)


def _reference(
    folder: Path, images: torch.Tensor, question: str, prefix: str, words: list[str]
) -> torch.Tensor:
    """Softmax of the answer-word logits at the last position, computed with transformers directly."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    proc = AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    tok = proc.tokenizer
    ids = [tok.convert_tokens_to_ids(w) for w in words]  # single tokens of the word-level vocabulary
    out = []
    for img in images:  # one image at a time: no padding involved
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False) + prefix
        inp = proc(text=[text], images=[img], do_rescale=False, return_tensors="pt")
        with torch.no_grad():
            logits = model.eval()(**inp).logits[0, -1]
        out.append(torch.softmax(logits[ids].double(), dim=-1))
    return torch.stack(out)


def test_quality_score_matches_transformers(checkpoint, images):
    model = create_model("vlm_levels", checkpoint=str(checkpoint))
    cfg = model.config
    ref = _reference(checkpoint, images, cfg.prompt, cfg.answer_prefix, list(LEVEL_NAMES))
    scores = model.score(images)
    torch.testing.assert_close(scores.double(), ref @ torch.tensor(QALIGN_W), rtol=0, atol=1e-5)
    probs = model.level_probabilities(images)
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(images)), rtol=0, atol=1e-6)
    torch.testing.assert_close(probs.double(), ref, rtol=0, atol=1e-5)


def test_deqa_weighting_is_the_affine_image_of_qalign(checkpoint, images):
    qalign = create_model("vlm_levels", checkpoint=str(checkpoint)).score(images)
    deqa = create_model("vlm_levels", checkpoint=str(checkpoint), weighting="deqa")
    assert deqa.score_range == (1.0, 5.0)
    torch.testing.assert_close(deqa.score(images), 4 * qalign + 1, rtol=0, atol=1e-5)


def test_batch_equals_one_by_one(checkpoint, images):
    model = create_model("vlm_levels", checkpoint=str(checkpoint))
    batch = model.score(images)
    single = torch.cat([model.score(images[i : i + 1]) for i in range(len(images))])
    torch.testing.assert_close(batch, single, rtol=0, atol=1e-5)


def test_alignment_mode_uses_each_prompt(checkpoint, images):
    model = create_model("vlm_levels", checkpoint=str(checkpoint), mode="alignment")
    cfg = model.config
    prompts = ["a red cat", "a blue dog tree", "a car"]  # different lengths: left padding in the batch
    result = model.score_with_text(images, prompts)
    for i, p in enumerate(prompts):
        question = cfg.alignment_prompt.replace("{prompt}", p)
        ref = _reference(
            checkpoint, images[i : i + 1], question, cfg.alignment_answer_prefix, list(LEVEL_NAMES)
        )
        torch.testing.assert_close(result.level_probs[i : i + 1].double(), ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(result.overall, level_score(result.level_probs, "qalign"))
    with pytest.raises(Exception, match="2 prompts for 3 images"):
        model.score_with_text(images, prompts[:2])


def test_elements_mode_gives_yes_probabilities(checkpoint, images):
    model = create_model("vlm_levels", checkpoint=str(checkpoint), mode="elements")
    cfg = model.config
    elements = [["cat (animal)", "red"], [], ["tree"]]
    result = model.score_with_text(images, ["a red cat", "a dog", "a tree"], elements)
    assert [len(p) for p in result.element_probs] == [2, 0, 1]
    for i, keys in enumerate([["cat", "red"], [], ["tree"]]):
        for j, key in enumerate(keys):
            q = cfg.element_prompt.replace("{element}", key)
            ref = _reference(checkpoint, images[i : i + 1], q, cfg.element_answer_prefix, ["Yes", "No"])
            assert result.element_probs[i][j].item() == pytest.approx(ref[0, 0].item(), abs=1e-5)
            assert result.element_labels[i][j].item() == int(ref[0, 0].item() >= 0.5)


def test_no_checkpoint_and_missing_hub_id_are_refused(checkpoint):
    with pytest.raises(WeightsError, match="needs a chat VLM checkpoint"):
        create_model("vlm_levels")
    with pytest.raises(WeightsError, match="no-such-user/no-such-vlm") as err:
        create_model("vlm_levels", checkpoint="no-such-user/no-such-vlm")
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="not a chat VLM folder"):
        create_model("vlm_levels", checkpoint=str(checkpoint / "no-such-folder"))


def test_cli_scores_a_folder(checkpoint, images, tmp_path):
    from PIL import Image

    from perceptiq.cli import app

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(images[:2]):
        arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(folder),
            "--model",
            "vlm_levels",
            "--option",
            f"checkpoint={checkpoint}",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    import pandas as pd

    table = pd.read_csv(out)
    assert len(table) == 2
    decoded = torch.stack(
        [
            torch.from_numpy(np.array(Image.open(folder / f"{i}.png"))).permute(2, 0, 1).float() / 255
            for i in (0, 1)
        ]
    )
    expected = create_model("vlm_levels", checkpoint=str(checkpoint)).score(decoded)
    got = table.sort_values(table.columns[0])["score"].to_numpy()
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)


def test_half_precision_is_for_the_gpu_only(checkpoint, images):
    fp32 = create_model("vlm_levels", checkpoint=str(checkpoint)).score(images)
    model = create_model("vlm_levels", checkpoint=str(checkpoint), dtype="bfloat16")
    torch.testing.assert_close(model.score(images), fp32, rtol=0, atol=0)  # on a CPU: float32 throughout
    assert next(model.vlm.parameters()).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_on_the_gpu_stays_close_to_float32(checkpoint, images, dtype):
    fp32 = create_model("vlm_levels", checkpoint=str(checkpoint)).score(images)
    model = create_model("vlm_levels", checkpoint=str(checkpoint), dtype=dtype).to("cuda")
    half = model.score(images)
    assert next(model.vlm.parameters()).dtype == getattr(torch, dtype)
    torch.testing.assert_close(half.cpu(), fp32, rtol=0, atol=2e-2)
