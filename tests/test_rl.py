"""Tests of perceptiq.training.rl against VisualQuality-R1's equations and the reference worked cases.

Rewards are recomputed here with plain Python loops and scipy.stats.norm from 003 eqs. 1-4 and 7, and
compared with the reference implementation's outputs in ../shared/docs/protocol_cases.
"""

from __future__ import annotations

import math
import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from conftest import load_case_file
from perceptiq.errors import InputError
from perceptiq.training import rl
from perceptiq.training.rl import ParseStatus


@pytest.fixture(scope="module")
def vq() -> dict:
    return load_case_file("visualquality_r1_reward.json")


def _reference_reward(
    scores: list[list[float]], mos: list[float], *, method: str = "mean", variance: float | None = None
) -> list[list[float]]:
    """Eq. 3 with eq. 1 (method 'mean') or eq. 7 ('average'), gamma = eps = 1e-6, by explicit loops."""
    b = len(scores)
    mean = [float(np.mean(s)) for s in scores]
    var = [float(np.var(s, ddof=1)) if variance is None else variance for s in scores]
    out = []
    for i in range(b):
        row = []
        for q in scores[i]:
            total = 0.0
            for j in range(b):
                if j == i:
                    continue
                den = math.sqrt(var[i] + var[j] + 1e-6)
                if method == "mean":
                    p = stats.norm.cdf((q - mean[j]) / den)
                else:
                    p = float(np.mean([stats.norm.cdf((q - qj) / den) for qj in scores[j]]))
                g = 1.0 if mos[i] > mos[j] else (0.5 if mos[i] == mos[j] else 0.0)
                total += math.sqrt(p * g + 1e-6) + math.sqrt((1 - p) * (1 - g) + 1e-6)
            row.append(total / (b - 1))
        out.append(row)
    return out


RANDOM_SCORES = [[1.5, 3.0, 3.4, 1.1], [1.6, 4.7, 1.3, 1.5], [4.8, 3.5, 2.5, 3.05], [2.2, 2.9, 2.0, 2.6]]
RANDOM_MOS = [2.1, 3.7, 4.4, 2.1]


# ------------------------------------------------------------------------------------------- parsing


def test_parse_cases(vq: dict) -> None:
    for case in vq["parse_cases"]:
        text = case["completion"]
        assert rl.parse_answer(text).value == pytest.approx(case["expected_train_parse"]), text
        readme = rl.parse_answer(text, pattern="readme").value
        assert readme == pytest.approx(case["expected_readme_inference_parse"]), text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("<answer>1e3</answer>", 1.0),
        ("<answer>4/5</answer>", 4.0),
        ("<answer>3,5</answer>", 3.0),
        ("<answer>Score: 10</answer>", 10.0),  # no clamping
        ("<ANSWER>3</ANSWER>", 3.0),  # tags are case-sensitive: the whole text is searched
        ("<think>2 reasons</think><answer>4.25</answer>", 4.25),
    ],
)
def test_parse_reference_conventions(text: str, value: float) -> None:
    result = rl.parse_answer(text)
    assert result.ok
    assert result.score == value


def test_parse_typed_failures() -> None:
    empty = rl.parse_answer("<answer>  </answer> 4")  # an empty tag does not fall back to the whole text
    assert empty.status is ParseStatus.EMPTY_ANSWER
    assert empty.score is None
    assert empty.tagged
    assert rl.parse_answer("   ").status is ParseStatus.EMPTY_ANSWER
    assert rl.parse_answer("<answer>excellent</answer>").status is ParseStatus.NON_NUMERIC
    missing = rl.parse_answer("I think 3.2", require_answer=True)
    assert missing.status is ParseStatus.MISSING_ANSWER
    assert missing.value is None
    unclosed = "<think>x</think><answer>3.5"  # malformed: an unclosed tag is no answer block
    assert rl.parse_answer(unclosed).value == 3.5  # reference: the whole text is searched
    assert rl.parse_answer(unclosed, require_answer=True).status is ParseStatus.MISSING_ANSWER
    untagged = rl.parse_answer("I think 3.2")
    assert untagged.ok
    assert not untagged.tagged
    high = rl.parse_answer("<answer>7.5</answer>", score_range=(1.0, 5.0))
    assert high.status is ParseStatus.OUT_OF_RANGE
    assert high.value == 7.5
    assert high.score is None
    assert rl.parse_answer("<answer>5</answer>", score_range=(1.0, 5.0)).ok
    with pytest.raises(InputError, match="pattern"):
        rl.parse_answer("3", pattern="strict")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="string"):
        rl.parse_answer(3.0)  # type: ignore[arg-type]


def test_random_fallback_reproduces_random_randint() -> None:
    fallback = rl.RandomIntegerFallback(seed=7)
    reference = random.Random(7)
    failed = rl.parse_answer("<answer>n/a</answer>")
    got = [rl.resolve_score(failed, fallback) for _ in range(20)]
    assert got == [float(reference.randint(1, 5)) for _ in range(20)]
    assert rl.resolve_score(failed, None) is None
    assert rl.resolve_score(failed, lambda r: 3.0) == 3.0
    assert rl.resolve_score(rl.parse_answer("<answer>2.5</answer>"), fallback) == 2.5
    with pytest.raises(InputError, match="low"):
        rl.RandomIntegerFallback(low=5, high=1)


def test_format_reward_cases(vq: dict) -> None:
    for case in vq["format_reward_cases"]:
        assert rl.format_reward(case["completion"]) == case["expected_format_reward"], case["completion"]


@pytest.mark.parametrize(
    ("text", "reward"),
    [
        ("<think></think><answer></answer>", 1.0),  # empty blocks
        ("<think>a</think><answer>1</answer><answer>2</answer>", 1.0),  # second block inside the lazy match
        ("<think>a</think><answer>3</answer>\n", 0.0),  # trailing whitespace
        ("<think>a</think> so <answer>3</answer>", 0.0),  # text between the blocks
        ("<answer>3</answer>", 0.0),
    ],
)
def test_format_reward_conventions(text: str, reward: float) -> None:
    assert rl.format_reward(text) == reward


# ------------------------------------------------------------------------------------------- rewards


def test_reward_cases(vq: dict) -> None:
    tol_r, tol_a = vq["tolerance"]["accuracy_reward"], vq["tolerance"]["advantage"]
    for case in vq["reward_cases"]:
        scores, mos, k = case["inputs"]["pred_scores"], case["inputs"]["mos"], case["inputs"]["K"]
        exp = case["expected"]
        mean, var = rl.group_statistics(scores)
        assert np.allclose(mean.numpy(), exp["group_mean"], atol=tol_r), case["name"]
        assert np.allclose(var.numpy(), exp["group_var_unbiased"], atol=tol_r), case["name"]
        acc = rl.fidelity_reward(scores, mos).reshape(-1)
        assert np.allclose(acc.numpy(), exp["accuracy_reward"], atol=tol_r), case["name"]
        texts = [f"<think>ok</think><answer>{q}</answer>" for row in scores for q in row]
        per_completion_mos = [m for m in mos for _ in range(k)]
        accuracy = rl.FidelityReward(k)(None, texts, mos=per_completion_mos)
        fmt = rl.FormatReward()(None, texts)
        assert np.allclose(fmt, exp["format_reward"])
        total = np.add(accuracy, fmt)
        assert np.allclose(total, exp["total_reward"], atol=tol_r), case["name"]
        adv = rl.group_advantages(exp["total_reward"], k)
        assert np.allclose(adv.numpy(), exp["advantage"], atol=tol_a), case["name"]


@pytest.mark.parametrize(
    ("method", "variance"), [("mean", None), ("average", None), ("average", 1.0), ("mean", 0.25)]
)
def test_fidelity_reward_matches_equations(method: str, variance: float | None) -> None:
    got = rl.fidelity_reward(RANDOM_SCORES, RANDOM_MOS, method=method, variance=variance)  # type: ignore[arg-type]
    expected = _reference_reward(RANDOM_SCORES, RANDOM_MOS, method=method, variance=variance)
    assert np.allclose(got.numpy(), expected, atol=1e-12)


def test_comparative_probabilities_eq1_and_gamma() -> None:
    p = rl.comparative_probabilities(RANDOM_SCORES, gamma=0.3)
    mean = [np.mean(s) for s in RANDOM_SCORES]
    var = [np.var(s, ddof=1) for s in RANDOM_SCORES]
    expected = stats.norm.cdf((RANDOM_SCORES[2][1] - mean[0]) / math.sqrt(var[2] + var[0] + 0.3))
    assert p[2, 1, 0].item() == pytest.approx(expected, abs=1e-14)
    assert torch.isnan(p[1, :, 1]).all()  # no self-comparison


def test_binary_reward_matches_hard_decisions() -> None:
    got = rl.binary_reward(RANDOM_SCORES, RANDOM_MOS).numpy()
    mean = [np.mean(s) for s in RANDOM_SCORES]
    for i, row in enumerate(RANDOM_SCORES):
        for k, q in enumerate(row):
            hits = []
            for j in range(4):
                if j != i:
                    decision = 1.0 if q > mean[j] else (0.0 if q < mean[j] else 0.5)
                    label = (
                        1.0
                        if RANDOM_MOS[i] > RANDOM_MOS[j]
                        else (0.5 if RANDOM_MOS[i] == RANDOM_MOS[j] else 0.0)
                    )
                    hits.append(decision == label)
            assert got[i, k] == pytest.approx(np.mean(hits)), (i, k)


def test_reward_edge_cases() -> None:
    eps = 1e-6
    half = [math.sqrt(0.5 * g + eps) + math.sqrt(0.5 * (1 - g) + eps) for g in (1.0, 0.0)]
    # K = 1: the variance is undefined and the reference falls back to p = 0.5.
    k1 = rl.fidelity_reward([[3.0], [2.0]], [4.0, 1.0])
    assert np.allclose(k1.numpy().ravel(), half)
    # Zero variances and equal means: p = Phi(0) = 0.5.
    zero = rl.fidelity_reward([[3.0, 3.0], [3.0, 3.0]], [4.0, 1.0])
    assert np.allclose(zero.numpy(), [[half[0]] * 2, [half[1]] * 2])
    # Zero variances, different means: p = Phi(+-1 / sqrt(1e-6)), i.e. 1 or 0.
    apart = rl.fidelity_reward([[4.0, 4.0], [3.0, 3.0]], [4.0, 1.0])
    assert np.allclose(apart.numpy(), math.sqrt(1 + eps) + math.sqrt(eps))
    # A batch of one image has no partner.
    assert torch.isnan(rl.fidelity_reward([[3.0, 2.0]], [4.0])).all()
    assert rl.FidelityReward(2)(None, ["<answer>3</answer>", "<answer>2</answer>"], mos=[4.0, 4.0]) == [
        None,
        None,
    ]


def test_reward_callables_signature_and_pickling() -> None:
    texts = [f"<think>x</think><answer>{q}</answer>" for row in RANDOM_SCORES for q in row]
    conversational = [[{"role": "assistant", "content": t}] for t in texts]
    mos = [m for m in RANDOM_MOS for _ in range(4)]
    reward = rl.FidelityReward(4, fallback=rl.RandomIntegerFallback(seed=0))
    expected = np.ravel(_reference_reward(RANDOM_SCORES, RANDOM_MOS))
    assert np.allclose(reward(["p"] * 16, texts, mos=mos, completion_ids=None, trainer_state=None), expected)
    assert np.allclose(reward(["p"] * 16, conversational, mos=mos), expected)
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": t}]}] for t in texts]
    assert np.allclose(reward(["p"] * 16, parts, mos=mos), expected)
    clone = pickle.loads(pickle.dumps(reward))
    assert np.allclose(clone(None, texts, mos=mos), expected)
    assert reward.__name__ == "fidelity_reward"
    assert rl.BinaryReward(4).__name__ == "binary_reward"
    assert rl.FormatReward().__name__ == "format_reward"
    assert pickle.loads(pickle.dumps(rl.FormatReward()))(None, texts) == [1.0] * 16
    binary = rl.BinaryReward(4)(None, texts, mos=mos)
    assert np.allclose(binary, rl.binary_reward(RANDOM_SCORES, RANDOM_MOS).numpy().ravel())


def test_failed_parse_without_fallback_gets_failure_reward_and_is_left_out() -> None:
    texts = ["<answer>3.0</answer>", "<answer>none</answer>", "<answer>4.0</answer>"]
    texts += ["<answer>2.0</answer>", "<answer>2.5</answer>", "<answer>1.5</answer>"]
    mos = [4.0] * 3 + [2.0] * 3
    got = rl.FidelityReward(3, fallback=None, failure_reward=-1.0)(None, texts, mos=mos)
    assert got[1] == -1.0
    expected = _reference_reward([[3.0, 4.0], [2.0, 2.5, 1.5]], [4.0, 2.0])
    assert np.allclose([got[0], got[2]], expected[0])
    assert np.allclose(got[3:], expected[1])


def test_reference_fallback_scores_failed_parses_randomly() -> None:
    reward = rl.FidelityReward(2, fallback=rl.RandomIntegerFallback(seed=3))
    texts = ["<answer>?</answer>", "<answer>4</answer>", "<answer>1</answer>", "<answer>?</answer>"]
    got = reward(None, texts, mos=[4.0, 4.0, 2.0, 2.0])
    draws = random.Random(3)
    scores = [[float(draws.randint(1, 5)), 4.0], [1.0, float(draws.randint(1, 5))]]
    assert np.allclose(got, np.ravel(_reference_reward(scores, [4.0, 2.0])))


def test_reward_callable_guards() -> None:
    reward = rl.FidelityReward(2)
    with pytest.raises(InputError, match="multiple of num_generations"):
        reward(None, ["<answer>1</answer>"] * 3, mos=[1.0] * 3)
    with pytest.raises(InputError, match="'mos' column"):
        reward(None, ["<answer>1</answer>"] * 2)
    with pytest.raises(InputError, match="equal within each group"):
        reward(None, ["<answer>1</answer>"] * 2, mos=[1.0, 2.0])
    with pytest.raises(InputError, match="num_generations"):
        rl.FidelityReward(0)
    with pytest.raises(InputError, match="cannot read a completion"):
        rl.completion_text(3)
    with pytest.raises(InputError, match="method"):
        rl.comparative_probabilities([[1.0, 2.0]], method="median")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="shape"):
        rl.fidelity_reward([1.0, 2.0], [1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="mos has"):
        rl.fidelity_reward([[1.0], [2.0]], [1.0])


# ----------------------------------------------------------------------------------------- advantages


def test_group_advantages_match_eq4() -> None:
    rewards = [0.2, 0.9, 0.4, 1.1, 1.0, 1.0, 0.3, 0.5, 0.8]
    groups = np.array(rewards).reshape(3, 3)
    expected = (groups - groups.mean(axis=1, keepdims=True)) / (
        groups.std(axis=1, ddof=1, keepdims=True) + 1e-4
    )
    got = rl.group_advantages(rewards, 3)
    assert np.allclose(got.numpy(), expected.ravel(), atol=1e-12)
    assert got[3:6].abs().max().item() == pytest.approx(
        2 / 3 * 0.1 / (np.std([1.1, 1.0, 1.0], ddof=1) + 1e-4)
    )
    assert torch.equal(rl.group_advantages(torch.ones(4), 2), torch.zeros(4))  # constant group -> 0
    assert torch.equal(rl.group_advantages([0.3, 0.7], 1), torch.zeros(2, dtype=torch.float64))
    reference = torch.tensor([0.3, 0.7], dtype=torch.float64)  # the reference trainer's formula, K = 1
    expected = (reference - reference) / (reference.reshape(-1, 1).std(dim=1) + 1e-4)
    got = rl.group_advantages([0.3, 0.7], 1, single="reference")
    assert torch.isnan(expected).all()
    assert torch.isnan(got).all()


def test_group_advantages_guards() -> None:
    with pytest.raises(InputError, match="groups of 2"):
        rl.group_advantages([1.0, 2.0, 3.0], 2)
    with pytest.raises(InputError, match="NaN"):
        rl.group_advantages([1.0, float("nan")], 2)


def test_rl_import_does_not_import_trl() -> None:
    code = "import sys, perceptiq.training.rl; print('trl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
