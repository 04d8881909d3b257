"""vlm_reasoning: K sampled reason-then-score answers of a chat VLM (VisualQuality-R1), checked against
transformers' own sampling on a tiny random Qwen2-VL checkpoint, and the parsing path on crafted answers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from perceptiq.errors import InputError  # noqa: E402
from perceptiq.models import create_model  # noqa: E402
from perceptiq.models._base import WeightsError  # noqa: E402
from tiny_vlm import build_tiny_vlm  # noqa: E402

SIZE = 56
TOKENS = 5


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return build_tiny_vlm(tmp_path_factory.mktemp("qwen2_vl"))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def _model(checkpoint: Path, **options):
    return create_model("vlm_reasoning", checkpoint=str(checkpoint), max_new_tokens=TOKENS, **options).eval()


def _reference_answers(folder: Path, image: torch.Tensor, text: str, k: int, seed: int) -> list[str]:
    """transformers itself: plain sampling at temperature 1 from the generator seeded with ``seed``."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    vlm = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    inputs = processor(text=[text], images=[image], do_rescale=False, return_tensors="pt")
    torch.manual_seed(seed)
    out = vlm.generate(
        **inputs, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=TOKENS,
        num_return_sequences=k, pad_token_id=processor.tokenizer.pad_token_id,
    )  # fmt: skip
    return processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_k_answers_per_image_match_transformers_sampling(checkpoint, images):
    model = _model(checkpoint, samples=3, seed=7)
    result = model.explain(images)
    assert [len(c) for c in result.completions] == [3, 3]
    assert [len(s) for s in result.scores] == [3, 3]
    assert [len(r) for r in result.rationales] == [3, 3]
    for image, answers in zip(images, result.completions, strict=True):
        assert answers == _reference_answers(checkpoint, image, model.prompt_text(), 3, seed=7)


def test_a_fixed_seed_is_reproducible_and_leaves_the_global_generator_alone(checkpoint, images):
    model = _model(checkpoint, samples=2, seed=3)
    state = torch.get_rng_state()
    first = model.explain(images).completions
    assert torch.equal(torch.get_rng_state(), state)
    assert _model(checkpoint, samples=2, seed=3).explain(images).completions == first
    assert model.explain(images[1:]).completions == first[1:]  # an image's answers ignore its batch


def test_prompt_templates_follow_the_thinking_option(checkpoint):
    thinking = _model(checkpoint).prompt_text()
    plain = _model(checkpoint, thinking=False).prompt_text()
    assert "Rate the overall image visual quality." in thinking
    assert "First output the thinking process in <think> </think> tags" in thinking
    assert "Please only output the final answer with only one score in <answer> </answer> tags." in plain
    assert "<think>" not in plain


CRAFTED = [
    ["<think>sharp</think><answer>4.5</answer>", "<answer>3</answer>", "no number here"],
    ["<answer></answer>", "<answer>good</answer>", "<think>blurry</think>"],  # all malformed
    ["Score: 10", "<think>a</think><answer>-1.5</answer>", "<answer>1</answer><answer>5</answer>"],
]


def _crafted(model, monkeypatch) -> None:
    answers = iter(CRAFTED)
    monkeypatch.setattr(model, "generate", lambda image: next(answers))


def test_crafted_answers_give_mean_std_scores_and_malformed_counts(checkpoint, images, monkeypatch):
    model = _model(checkpoint, samples=3)
    _crafted(model, monkeypatch)
    result = model.explain(torch.cat([images, images[:1]]))
    # by hand: [4.5, 3, -]; [-, -, -]; [10, -1.5, 5] (last answer block, minus sign kept, no clamping)
    assert result.malformed.tolist() == [1, 3, 0]
    assert result.scores[0][:2] == [4.5, 3.0]
    assert math.isnan(result.scores[0][2])
    assert all(math.isnan(s) for s in result.scores[1])
    assert result.scores[2] == [10.0, -1.5, 5.0]
    assert result.mean[0].item() == pytest.approx(3.75)
    assert result.std[0].item() == pytest.approx(math.sqrt((0.75**2 + 0.75**2) / 1))
    assert math.isnan(result.mean[1].item())
    assert math.isnan(result.std[1].item())
    assert result.mean[2].item() == pytest.approx(4.5)
    assert result.std[2].item() == pytest.approx(math.sqrt((5.5**2 + 6.0**2 + 0.5**2) / 2))
    assert result.rationales[0] == ["sharp", "<answer>3</answer>", "no number here"]
    assert result.rationales[2][1] == "a"


def test_forward_is_nan_for_an_image_without_a_well_formed_answer(checkpoint, images, monkeypatch):
    model = _model(checkpoint, samples=3)
    _crafted(model, monkeypatch)
    scores = model(torch.cat([images, images[:1]]))
    assert scores[0].item() == pytest.approx(3.75)
    assert math.isnan(scores[1].item())  # never a random fallback score
    assert scores[2].item() == pytest.approx(4.5)


def test_readme_pattern_drops_the_minus_sign(checkpoint, images, monkeypatch):
    model = _model(checkpoint, samples=3, pattern="readme")
    _crafted(model, monkeypatch)
    result = model.explain(torch.cat([images, images[:1]]))
    assert result.scores[2] == [10.0, 1.5, 5.0]


def test_one_line_errors(checkpoint):
    with pytest.raises(WeightsError, match="vlm_reasoning needs a chat VLM checkpoint") as err:
        create_model("vlm_reasoning")
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="no-such-user/no-such-vlm") as err:
        create_model("vlm_reasoning", checkpoint="no-such-user/no-such-vlm")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="samples must be 1"):
        create_model("vlm_reasoning", checkpoint=str(checkpoint), temperature=0.0, samples=2)


# --- perceptiq score --explain: the explanation columns, written in the scoring pass --------------------

EXPLAIN_COLUMNS = ["samples", "score_std", "malformed", "rationale"]


def _folder(root: Path, names: list[str]) -> Path:
    """Tiny images: ``dark*`` near black, any other name near white (the crafted answers key on it)."""
    from PIL import Image

    root.mkdir(exist_ok=True)
    for name in names:
        value = 20 if name.startswith("dark") else 230
        Image.new("RGB", (SIZE, SIZE), (value, value, value)).save(root / name)
    return root


@pytest.fixture
def crafted_cli(monkeypatch):
    """Every model's answers crafted: CRAFTED[0] for a dark image, CRAFTED[2] for a bright one."""
    from perceptiq.models.vlm_reasoning import VLMReasoningModel

    monkeypatch.setattr(
        VLMReasoningModel, "generate", lambda self, image: CRAFTED[0] if image.mean() < 0.5 else CRAFTED[2]
    )


def _explain_args(checkpoint: Path, *paths: object) -> list[str]:
    return [
        "score", *map(str, paths), "--model", "vlm_reasoning", "--option", f"checkpoint={checkpoint}",
        "--option", "samples=3", "--option", f"max_new_tokens={TOKENS}", "--explain",
    ]  # fmt: skip


def _expected() -> dict[str, dict[str, object]]:
    """By hand from CRAFTED (see test_crafted_answers_give_mean_std_scores_and_malformed_counts)."""
    return {
        "dark.png": {
            "score": 3.75,
            "samples": [4.5, 3.0, None],
            "score_std": math.sqrt(0.75**2 + 0.75**2),
            "malformed": 1,
            "rationale": ["sharp", "<answer>3</answer>", "no number here"],
        },
        "light.png": {
            "score": 4.5,
            "samples": [10.0, -1.5, 5.0],
            "score_std": math.sqrt((5.5**2 + 6.0**2 + 0.5**2) / 2),
            "malformed": 0,
            "rationale": ["Score: 10", "a", "<answer>1</answer><answer>5</answer>"],
        },
    }


def _check_rows(rows: list[dict]) -> None:
    import json

    expected = _expected()
    assert sorted(Path(str(r["image"])).name for r in rows) == sorted(expected)
    for row in rows:
        want = expected[Path(str(row["image"])).name]
        assert row["score"] == pytest.approx(want["score"])
        assert json.loads(row["samples"]) == want["samples"]
        assert row["score_std"] == pytest.approx(want["score_std"])
        assert int(row["malformed"]) == want["malformed"]
        assert json.loads(row["rationale"]) == want["rationale"]


def test_cli_explain_writes_the_k_scores_std_malformed_and_rationales(checkpoint, crafted_cli, tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from perceptiq.cli import app

    folder = _folder(tmp_path / "img", ["dark.png", "light.png"])
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(app, [*_explain_args(checkpoint, folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns)[-4:] == EXPLAIN_COLUMNS
    _check_rows(frame.to_dict(orient="records"))
    result = CliRunner().invoke(app, [*_explain_args(checkpoint, folder), "--json"])
    assert result.exit_code == 0, result.output
    _check_rows(json.loads(result.stdout))


@pytest.mark.parametrize("scorer", [["--metric", "psnr"], []], ids=["metric", "default-model"])
def test_cli_explain_without_an_explaining_scorer_is_a_one_line_error(scorer, tmp_path):
    from typer.testing import CliRunner

    from perceptiq.cli import app

    folder = _folder(tmp_path / "img", ["dark.png"])
    result = CliRunner().invoke(app, ["score", str(folder), *scorer, "--explain"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "cannot explain its scores" in lines[0]
    assert ("psnr" if scorer else "perceptiq_nr_v2") in lines[0]


def test_cli_explain_resume_appends_rows_with_the_same_columns(checkpoint, crafted_cli, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from perceptiq.cli import app

    folder = _folder(tmp_path / "img", ["dark.png"])
    out = tmp_path / "scores.csv"
    assert CliRunner().invoke(app, [*_explain_args(checkpoint, folder), "--out", str(out)]).exit_code == 0
    _folder(folder, ["light.png"])
    plain = CliRunner().invoke(
        app, [*_explain_args(checkpoint, folder)[:-1], "--out", str(out), "--resume"]
    )  # without --explain: other columns, refused
    assert plain.exit_code == 1
    assert "explain" in plain.output
    result = CliRunner().invoke(app, [*_explain_args(checkpoint, folder), "--out", str(out), "--resume"])
    assert result.exit_code == 0, result.output
    assert "1 skipped" in result.output
    frame = pd.read_csv(out)
    assert list(frame.columns)[-4:] == EXPLAIN_COLUMNS
    _check_rows(frame.to_dict(orient="records"))


def test_qwen2_5_vl_answers_match_transformers_sampling(tmp_path, images):
    folder = build_tiny_vlm(tmp_path / "qwen2_5_vl", family="qwen2_5_vl")
    model = _model(folder, samples=2, seed=3)
    result = model.explain(images[:1])
    expected = _reference_answers(folder, images[0], model.prompt_text(), 2, seed=3)
    assert result.completions[0] == expected
    assert result.malformed.tolist() == [sum(not model.parse(t).ok for t in expected)]
