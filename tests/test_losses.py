"""Tests of perceptiq.losses against the papers' equations, scipy, and the reference worked cases.

Expected values are computed here from the formulas with numpy/scipy (independent of the torch code)
or read from the reference worked cases in ../shared/docs/protocol_cases.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import stats

from conftest import load_case_file
from perceptiq import losses
from perceptiq.errors import InputError
from perceptiq.losses import functional as F

D = torch.float64


def _case(name: str) -> dict:
    return load_case_file(name)


def _t(x: object) -> torch.Tensor:
    return torch.tensor(x, dtype=D)


def _np_fidelity(p: np.ndarray, g: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    return 1 - np.sqrt(p * g + eps) - np.sqrt((1 - p) * (1 - g) + eps)


def _np_pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def _votes(t: torch.Tensor) -> torch.Tensor:
    """Three pseudo-label 'models' derived from a target vector (distinct orderings, some disagreement)."""
    return torch.stack([t, t.flip(0) * 0.1 + t, torch.sin(3 * t)], dim=1)


# Losses of a prediction vector and a target vector; each must be finite on B = 1, ties, constants.
VECTOR_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "fidelity": lambda p, t: F.fidelity_loss(p, t),
    "fidelity_var": lambda p, t: F.fidelity_loss(p, t, pred_var=0.5 + p * p),
    "majority_voting": lambda p, t: F.fidelity_loss_majority_voting(p, _votes(t)),
    "grouped": lambda p, t: F.grouped_fidelity_loss(p, t, [len(p) // 2, len(p) - len(p) // 2]),
    "group_mean": lambda p, t: F.group_mean_fidelity_loss(
        p, torch.arange(len(p)) % 3, torch.tensor([0.3, 2.0, 1.0], dtype=p.dtype)
    ),
    "logistic_rank": lambda p, t: F.pairwise_logistic_rank_loss(p, t),
    "l1_rank": lambda p, t: F.l1_rank_loss(p, t),
    "l1_rank_margin": lambda p, t: F.l1_rank_loss(p, t, use_margin=True),
    "plcc": lambda p, t: F.plcc_loss(p, t),
    "srcc": lambda p, t: F.srcc_loss(p, t),
    "mse_plcc": lambda p, t: F.mse_plcc_loss(p, t),
    "plcc_rank": lambda p, t: F.plcc_rank_loss(p, t),
    "focal": lambda p, t: F.focal_label_smoothing_loss(p, t, smoothing=0.1, noise=torch.cos(7 * t)),
    "correlation_focal": lambda p, t: F.correlation_focal_loss(p, t, smoothing=0.1, noise=torch.cos(7 * t)),
}


def _other_losses() -> dict[str, tuple[Callable[..., torch.Tensor], tuple[torch.Tensor, ...]]]:
    """Losses with other signatures, with float64 inputs for gradcheck (all inputs that carry gradients)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, generator=g, dtype=D), torch.randn(5, generator=g, dtype=D)
    va, vb = torch.rand(5, generator=g, dtype=D) + 0.2, torch.rand(5, generator=g, dtype=D) + 0.2
    target = torch.rand(5, generator=g, dtype=D)
    logits = torch.randn(3, 8, generator=g, dtype=D)
    level = F.deqa_soft_label([3.2, 4.9, 1.7], [0.8, 0.5, 0.6], min_mos=1.0, max_mos=5.0)
    probs = torch.rand(4, 6, generator=g, dtype=D)
    heat = torch.rand(2, 1, 4, 5, generator=g, dtype=D)
    heat_t = (torch.rand(2, 1, 4, 5, generator=g, dtype=D) > 0.5).to(D)
    mos_a, mos_b = torch.rand(5, generator=g, dtype=D) * 4 + 1, torch.rand(5, generator=g, dtype=D) * 4 + 1
    std = torch.rand(5, generator=g, dtype=D) + 0.3
    return {
        "pairwise_fidelity": (lambda x, y: F.pairwise_fidelity_loss(x, y, target), (a, b)),
        "pairwise_fidelity_var": (
            lambda x, y, u, v: F.pairwise_fidelity_loss(x, y, target, var_a=u, var_b=v),
            (a, b, va, vb),
        ),
        "fidelity_var_wrt_var": (lambda v: F.fidelity_loss(a, b, pred_var=v), (va,)),
        "deqa_rating": (lambda x, y: F.deqa_rating_loss(x, y, mos_a, std, mos_b, std), (a, b)),
        "kl_full_vocab": (lambda z: F.kl_divergence_loss(z[:, :5], level), (logits,)),
        "kl_indexed": (
            lambda z: F.kl_divergence_loss(z, level, index=torch.tensor([3, 5, 1, 0, 6])),
            (logits,),
        ),
        "multiclass_fidelity": (
            lambda p: F.multiclass_fidelity_loss(p.softmax(-1), probs.softmax(-1)),
            (probs,),
        ),
        "distribution_fidelity": (
            lambda p: F.distribution_fidelity_loss(p.softmax(-1), probs.flip(0).softmax(-1)),
            (probs,),
        ),
        "heatmap_dice": (lambda h: F.heatmap_loss(h, heat_t), (heat,)),
        "heatmap_iou": (lambda h: F.heatmap_loss(h, heat_t, overlap="iou"), (heat,)),
        "heatmap_mean": (lambda h: F.heatmap_loss(h, heat_t, overlap="mean"), (heat,)),
    }


# --------------------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", sorted(VECTOR_LOSSES))
def test_gradcheck_vector_losses(name: str) -> None:
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(7, generator=g, dtype=D, requires_grad=True)
    target = torch.tensor([3.1, 1.2, 4.4, 2.0, 2.6, 3.9, 1.7], dtype=D)
    assert torch.autograd.gradcheck(lambda p: VECTOR_LOSSES[name](p, target), (pred,))


@pytest.mark.parametrize("name", sorted(_other_losses()))
def test_gradcheck_other_losses(name: str) -> None:
    fn, inputs = _other_losses()[name]
    inputs = tuple(x.clone().requires_grad_(True) for x in inputs)
    assert torch.autograd.gradcheck(fn, inputs)


# --------------------------------------------------------------------------------- degenerate batches


@pytest.mark.parametrize("name", sorted(VECTOR_LOSSES))
@pytest.mark.parametrize(
    ("pred", "target"),
    [
        ([2.5], [3.0]),  # batch of one
        ([1.0, 2.0, 2.0, 3.0], [2.0, 2.0, 3.0, 3.0]),  # ties in both
        ([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0]),  # constant prediction
        ([1.0, 3.0, 2.0, 4.0], [3.0, 3.0, 3.0, 3.0]),  # constant target
        ([0.5, 0.5], [0.5, 0.5]),  # everything constant
    ],
    ids=["batch_of_one", "ties", "constant_pred", "constant_target", "all_constant"],
)
def test_degenerate_batches_are_finite(name: str, pred: list[float], target: list[float]) -> None:
    p = _t(pred).requires_grad_(True)
    loss = VECTOR_LOSSES[name](p, _t(target))
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(p.grad).all()


def test_other_losses_on_degenerate_input_are_finite() -> None:
    one = _t([2.0]).requires_grad_(True)
    same = _t([[0.0, 0.0, 0.0, 0.0, 0.0]]).requires_grad_(True)
    zeros = torch.zeros(1, 3, 3, dtype=D, requires_grad=True)
    uniform = torch.full((1, 4), 0.25, dtype=D, requires_grad=True)
    values = [
        F.pairwise_fidelity_loss(one, one.detach(), _t([0.5])),  # one pair, tied scores
        F.pairwise_fidelity_loss(one, one.detach(), _t([1.0]), var_a=_t([0.0]), var_b=_t([0.0])),
        F.deqa_rating_loss(one, one.detach(), _t([3.0]), _t([0.0]), _t([3.0]), _t([0.0])),  # tie, zero std
        F.kl_divergence_loss(same, F.deqa_soft_label([3.0], [0.1], min_mos=1.0, max_mos=5.0)),
        F.heatmap_loss(zeros, torch.zeros(1, 3, 3, dtype=D)),  # empty map predicted as empty
        F.heatmap_loss(zeros, torch.ones(1, 3, 3, dtype=D)),
        F.multiclass_fidelity_loss(uniform, uniform.detach()),
        F.distribution_fidelity_loss(uniform, _t([[1.0, 0.0, 0.0, 0.0]])),
    ]
    for value in values:
        assert torch.isfinite(value)
    sum(values).backward()
    for x in (one, same, zeros, uniform):
        assert torch.isfinite(x.grad).all()


def test_batch_of_one_defaults_to_zero_and_reference_nan_is_reachable() -> None:
    p = _t([2.0]).requires_grad_(True)
    loss = F.fidelity_loss(p, _t([3.0]))
    loss.backward()
    assert loss.item() == 0.0
    assert p.grad.item() == 0.0
    assert math.isnan(F.fidelity_loss(_t([2.0]), _t([3.0]), undefined="nan").item())


def test_better_ordering_lowers_rank_losses() -> None:
    target = _t([1.0, 2.0, 3.0, 4.0, 5.0])
    good, bad = target * 0.8 + 0.3, target.flip(0) * 0.8 + 0.3
    for name in ("fidelity", "logistic_rank", "l1_rank", "plcc", "srcc", "mse_plcc", "plcc_rank", "grouped"):
        assert VECTOR_LOSSES[name](good, target) < VECTOR_LOSSES[name](bad, target), name


# ------------------------------------------------------------------------------------ fidelity family


def test_fidelity_loss_reference_cases() -> None:
    data = _case("sr_iqa_model_rankings.json")
    tol = data["tolerance"]["all"]
    for case in data["fidelity_loss"]:
        got = F.fidelity_loss(_t(case["inputs"]["y_pred"]), _t(case["inputs"]["y"]))
        assert got.item() == pytest.approx(case["expected_loss"], abs=tol), case["name"]


def test_fidelity_loss_majority_voting_reference_cases() -> None:
    data = _case("sr_iqa_model_rankings.json")
    for case in data["fidelity_loss_majority_voting"]:
        got = F.fidelity_loss_majority_voting(_t(case["inputs"]["y_pred"]), _t(case["inputs"]["y_votes"]))
        assert got.item() == pytest.approx(case["expected_loss"], abs=data["tolerance"]["all"]), case["name"]


def test_fidelity_minimum_is_slightly_negative() -> None:
    # PROTOCOLS 0.2: with eps inside the roots the minimum is 1 - sqrt(1 + eps) - sqrt(eps).
    got = F.fidelity_loss(_t([100.0, 0.0]), _t([5.0, 1.0]))
    assert got.item() == pytest.approx(1 - math.sqrt(1 + 1e-8) - math.sqrt(1e-8), abs=1e-12)


def test_fidelity_loss_with_per_item_variances_matches_formula() -> None:
    pred, target, var = [0.3, 1.4, -0.2, 0.9], [2.0, 4.0, 1.0, 4.0], [0.5, 1.2, 0.1, 0.7]
    expected = np.mean(
        [
            _np_fidelity(
                stats.norm.cdf((pred[i] - pred[j]) / math.sqrt(var[i] + var[j] + 1e-8)),
                0.5 * (np.sign(target[i] - target[j]) + 1),
            )
            for i, j in _np_pairs(4)
        ]
    )
    got = F.fidelity_loss(_t(pred), _t(target), pred_var=_t(var))
    assert got.item() == pytest.approx(expected, abs=1e-12)


def test_majority_voting_all_tie_pair() -> None:
    pred = _t([0.2, -0.1, 0.7])
    votes = _t([[1.0, 2.0], [1.0, 2.0], [3.0, 0.0]])  # images 0 and 1 tie for every model
    assert math.isnan(F.fidelity_loss_majority_voting(pred, votes, undefined="nan").item())
    expected = np.mean(
        [
            _np_fidelity(stats.norm.cdf(0.2 - 0.7), 0.5),  # (0, 2): one model each way
            _np_fidelity(stats.norm.cdf(-0.1 - 0.7), 0.5),
        ]
    )
    assert F.fidelity_loss_majority_voting(pred, votes).item() == pytest.approx(expected, abs=1e-12)


def test_grouped_fidelity_loss_reference_cases_and_small_groups() -> None:
    data = _case("liqe.json")
    for case in data["loss_m4_cases"]:
        got = F.grouped_fidelity_loss(_t(case["y_pred"]), _t(case["y"]), case["per_num"])
        assert got.item() == pytest.approx(case["expected_loss_m4"], abs=data["tolerance"]["all"])
    pred, target = _t([0.1, 0.9, 0.4, 2.0]), _t([1.0, 3.0, 2.0, 5.0])
    first = F.fidelity_loss(pred[:3], target[:3]).item()
    # An empty group adds nothing but is counted; a one-image group adds 0 (reference: NaN).
    assert F.grouped_fidelity_loss(pred, target, [3, 0, 1]).item() == pytest.approx(first / 3, abs=1e-15)
    assert math.isnan(F.grouped_fidelity_loss(pred, target, [3, 1], undefined="nan").item())


def test_group_mean_fidelity_loss_matches_eqs_3_to_5() -> None:
    pred = [3.0, 3.4, 2.0, 2.5, 4.1, 3.9, 1.0]
    group = [0, 0, 1, 1, 2, 2, 1]
    score = [1.5, 0.2, 1.5]  # methods 0 and 2 tie in the global ranking
    means = [np.mean([p for p, k in zip(pred, group, strict=True) if k == m]) for m in range(3)]
    expected = np.mean(
        [
            _np_fidelity(
                stats.norm.cdf((means[i] - means[j]) / math.sqrt(2)), 0.5 * (np.sign(score[i] - score[j]) + 1)
            )
            for i, j in _np_pairs(3)
        ]
    )
    got = F.group_mean_fidelity_loss(_t(pred), torch.tensor(group), _t(score))
    assert got.item() == pytest.approx(expected, abs=1e-12)
    single = F.group_mean_fidelity_loss(_t([1.0, 2.0]), torch.tensor([1, 1]), _t(score))
    assert single.item() == 0.0


def test_pairwise_fidelity_and_deqa_rating_loss() -> None:
    a, b = [3.2, 2.1, 4.0], [2.9, 2.1, 4.5]
    mos_a, std_a, mos_b, std_b = [60.0, 40.0, 70.0], [8.0, 5.0, 9.0], [55.0, 41.0, 72.0], [7.0, 6.0, 4.0]
    g = [
        stats.norm.cdf((mos_a[n] - mos_b[n]) / math.sqrt(std_a[n] ** 2 + std_b[n] ** 2 + 1e-8))
        for n in range(3)
    ]
    p = [stats.norm.cdf((a[n] - b[n]) / math.sqrt(2)) for n in range(3)]
    expected = np.mean(_np_fidelity(np.array(p), np.array(g)))
    got = F.deqa_rating_loss(_t(a), _t(b), _t(mos_a), _t(std_a), _t(mos_b), _t(std_b))
    assert got.item() == pytest.approx(expected, abs=1e-12)
    assert F.pairwise_fidelity_loss(_t(a), _t(b), _t(g), sigma=math.sqrt(2)).item() == pytest.approx(expected)
    target = _t([1.0, 0.5, 0.0])
    p1 = [stats.norm.cdf(a[n] - b[n]) for n in range(3)]
    expected1 = np.mean(_np_fidelity(np.array(p1), np.array([1.0, 0.5, 0.0])))
    assert F.pairwise_fidelity_loss(_t(a), _t(b), target).item() == pytest.approx(expected1, abs=1e-12)


# ----------------------------------------------------------------------------------- rank losses (004)


def test_pairwise_logistic_rank_loss_matches_eq6() -> None:
    pred, target = [0.3, 0.9, 0.1, 0.5], [2.0, 3.0, 2.0, 1.0]
    expected = np.mean(
        [np.log1p(np.exp(-(pred[i] - pred[j]) * np.sign(target[i] - target[j]))) for i, j in _np_pairs(4)]
    )
    got = F.pairwise_logistic_rank_loss(_t(pred), _t(target))
    assert got.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("use_margin", [False, True])
def test_l1_rank_loss_matches_definition(use_margin: bool) -> None:
    pred, target = [0.3, 0.9, 0.1, 0.5, 0.45], [2.0, 2.5, 2.2, 1.0, 3.6]
    n, num, count = 5, 0.0, 0
    for i, j in itertools.product(range(n), range(n)):
        gap = abs(target[j] - target[i])
        if 0 < gap < 1.0:
            margin = gap if use_margin else 0.0
            num += max(0.0, margin - np.sign(target[j] - target[i]) * (pred[j] - pred[i]))
            count += 1
    expected = np.mean(np.abs(np.subtract(pred, target))) + num / (count + 1e-8)
    got = F.l1_rank_loss(_t(pred), _t(target), use_margin=use_margin)
    assert got.item() == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------------- correlation losses


def test_plcc_and_mse_plcc_losses_match_scipy() -> None:
    pred, target = [0.3, 0.9, 0.1, 0.5, 0.45], [2.0, 2.5, 2.2, 1.0, 3.6]
    r = stats.pearsonr(pred, target).statistic
    assert F.plcc_loss(_t(pred), _t(target)).item() == pytest.approx(1 - r, abs=1e-7)
    mse = np.mean((np.array(pred) - np.array(target)) ** 2)
    assert F.mse_plcc_loss(_t(pred), _t(target), alpha=0.3).item() == pytest.approx(
        mse + 0.3 * (1 - r), abs=1e-7
    )
    # PLCC loss is invariant to positive affine maps of the prediction.
    assert F.plcc_loss(_t(pred) * 7 - 2, _t(target)).item() == pytest.approx(1 - r, abs=1e-7)


def test_plcc_rank_loss_matches_eq5() -> None:
    pred, target = [0.3, 0.9, 0.1, 0.5], [2.0, 3.0, 2.0, 1.0]
    r = stats.pearsonr(pred, target).statistic
    rank = np.mean(
        [np.log1p(np.exp(-(pred[i] - pred[j]) * np.sign(target[i] - target[j]))) for i, j in _np_pairs(4)]
    )
    got = F.plcc_rank_loss(_t(pred), _t(target), alpha=0.7)
    assert got.item() == pytest.approx(0.7 * (1 - r) + 0.3 * rank, abs=1e-7)


def test_soft_rank_tends_to_average_rank() -> None:
    x = [0.3, 1.2, 0.3, -0.5, 2.0, 1.2, 1.2]
    expected = stats.rankdata(x)  # average ranks, ties included
    assert np.allclose(F.average_rank(_t(x)).numpy(), expected)
    assert np.allclose(F.soft_rank(_t(x), temperature=1e-3).numpy(), expected, atol=1e-12)


def test_srcc_loss_tends_to_one_minus_spearman() -> None:
    pred = [0.3, 1.2, 0.3, -0.5, 2.0, 1.1, 0.8]
    target = [2.0, 4.0, 2.5, 1.0, 4.0, 4.0, 3.0]
    rho = stats.spearmanr(pred, target).statistic
    assert F.srcc_loss(_t(pred), _t(target), temperature=1e-3).item() == pytest.approx(1 - rho, abs=1e-7)


def test_focal_label_smoothing_matches_eqs_7_to_11() -> None:
    pred, target, noise = [0.3, 0.9, 0.1, 0.5], [0.2, 0.7, 0.4, 0.5], [0.5, -1.0, 0.2, 1.5]
    smoothed = np.array(target) + 0.05 * np.array(noise)
    mse = (np.array(pred) - smoothed) ** 2
    focal = 2.0 * np.mean((1 - np.exp(-mse)) ** 1.5 * mse)
    got = F.focal_label_smoothing_loss(
        _t(pred), _t(target), smoothing=0.05, gamma=1.5, scale=2.0, noise=_t(noise)
    )
    assert got.item() == pytest.approx(focal, abs=1e-14)
    corr = 0.6 * (1 - stats.pearsonr(pred, target).statistic) + 0.4 * np.mean(
        [np.log1p(np.exp(-(pred[i] - pred[j]) * np.sign(target[i] - target[j]))) for i, j in _np_pairs(4)]
    )
    total = F.correlation_focal_loss(
        _t(pred), _t(target), alpha=0.6, lam=0.25, smoothing=0.05, gamma=1.5, scale=2.0, noise=_t(noise)
    )
    assert total.item() == pytest.approx(0.25 * corr + 0.75 * focal, abs=1e-7)


def test_focal_loss_noise_is_reproducible_with_a_generator() -> None:
    pred, target = _t([0.3, 0.9]), _t([0.2, 0.7])
    a = F.focal_label_smoothing_loss(pred, target, smoothing=0.1, generator=torch.Generator().manual_seed(3))
    b = F.focal_label_smoothing_loss(pred, target, smoothing=0.1, generator=torch.Generator().manual_seed(3))
    assert a.item() == b.item()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_loss_exact_fit_has_finite_gradient(gamma: float) -> None:
    p = _t([0.3, 0.9]).requires_grad_(True)
    F.focal_label_smoothing_loss(p, _t([0.3, 0.9]), gamma=gamma).backward()
    assert torch.isfinite(p.grad).all()


# ------------------------------------------------------------------------------ distribution targets


def _np_deqa(mos: float, std: float, lo: float, hi: float, density: str) -> np.ndarray:
    """DeQA soft label from 001 eqs. 3-5 and PROTOCOLS 9.1, ascending levels."""
    mu, sigma = 4 * (mos - lo) / (hi - lo) + 1, 4 * std / (hi - lo)
    x = np.arange(1, 6, dtype=float)
    if density == "pdf":
        p = stats.norm.pdf(x, mu, sigma)
    else:
        p = stats.norm.cdf(x + 0.5, mu, sigma) - stats.norm.cdf(x - 0.5, mu, sigma)
    alpha = (mu - 3) / (p @ x - 3 * p.sum() + 1e-9)
    q = np.maximum(alpha * p + (1 - alpha * p.sum()) / 5, 0)
    if sigma >= 0.2 and abs(q @ x - mu) <= 0.1:
        return q
    k = next(k for k in range(1, 5) if k - 1e-8 < mu <= k + 1 + 1e-8)
    out = np.zeros(5)
    out[k - 1] = (k + 1 + 1e-8 - mu) / (1 + 2e-8)
    out[k] = (mu - k + 1e-8) / (1 + 2e-8)
    return out


def test_deqa_soft_label_reference_cases() -> None:
    data = _case("deqa_score.json")
    tol = data["tolerance"]["all"]
    for case in data["soft_label_cases"]:
        inp, exp = case["inputs"], case["expected"]
        label = F.deqa_soft_label(
            [inp["mos"]],
            [inp["std"]],
            min_mos=inp["min_mos"],
            max_mos=inp["max_mos"],
            density=inp["density_type"],
        )
        descending = F.deqa_soft_label(
            [inp["mos"]],
            [inp["std"]],
            min_mos=inp["min_mos"],
            max_mos=inp["max_mos"],
            density=inp["density_type"],
            order="descending",
        )
        assert np.allclose(descending[0].numpy(), exp["level_probs"], atol=tol, rtol=0)
        assert np.allclose(label[0].numpy(), exp["level_probs"][::-1], atol=tol, rtol=0)
        raw = F.gaussian_level_probs(_t([exp["mos_norm"]]), _t([exp["std_norm"]]), inp["density_type"])
        assert np.allclose(raw[0].numpy(), exp["level_probs_org"][::-1], atol=tol, rtol=0)


@pytest.mark.parametrize(
    ("mos", "std", "lo", "hi", "density"),
    [
        (3.2, 0.8, 1.0, 5.0, "pdf"),  # adjusted, no clamping
        (4.9, 0.5, 1.0, 5.0, "pdf"),  # clamped: sum exceeds 1, not renormalised
        (3.0, 0.8, 1.0, 5.0, "pdf"),  # mu = 3: uniform quirk
        (3.3, 0.1, 1.0, 5.0, "pdf"),  # binary fallback by std
        (1.2, 0.25, 1.0, 5.0, "cdf"),  # cdf near the bottom
        (47.5, 9.0, 3.0, 88.0, "pdf"),  # MOS on a 3-88 scale
        (2.0, 0.05, 1.0, 5.0, "pdf"),  # fallback exactly on a level
    ],
)
def test_deqa_soft_label_matches_equations(
    mos: float, std: float, lo: float, hi: float, density: str
) -> None:
    got = F.deqa_soft_label([mos], [std], min_mos=lo, max_mos=hi, density=density)[0].numpy()
    assert np.allclose(got, _np_deqa(mos, std, lo, hi, density), atol=1e-12, rtol=0)


def test_deqa_soft_label_quirks() -> None:
    uniform = F.deqa_soft_label([3.0], [0.8], min_mos=1.0, max_mos=5.0)[0]
    assert torch.allclose(uniform, torch.full((5,), 0.2, dtype=D))
    clamped = F.deqa_soft_label([4.9], [0.5], min_mos=1.0, max_mos=5.0)[0]
    assert clamped.sum().item() > 1.02  # no renormalisation after clamping (PROTOCOLS 9.1)
    adjusted = F.deqa_soft_label([3.2], [0.8], min_mos=1.0, max_mos=5.0)[0]
    assert adjusted.sum().item() == pytest.approx(1.0, abs=1e-8)  # eq. 5 when nothing is clamped
    assert (adjusted * torch.arange(1, 6, dtype=D)).sum().item() == pytest.approx(3.2, abs=1e-8)


def test_binary_level_probs_rejects_mos_outside_scale() -> None:
    with pytest.raises(InputError, match=r"\[1, 5\]"):
        F.binary_level_probs(_t([0.5]))


def _brute_force_histogram(mos: float, raters: int = 21, levels: int = 5) -> np.ndarray:
    """Exhaustive search of 000 (UltraR-IQA): integer ratings in 1..L with mean = MOS, least variance."""
    best, best_var = None, math.inf
    for cut in itertools.combinations(range(raters + levels - 1), levels - 1):
        counts = np.diff([-1, *cut, raters + levels - 1]) - 1  # stars and bars
        values = np.arange(1, levels + 1)
        if abs(counts @ values - mos * raters) > 1e-6:
            continue
        var = counts @ (values - mos) ** 2 / raters
        if var < best_var - 1e-12:
            best, best_var = counts, var
    return best / raters


@pytest.mark.parametrize("total", [21, 53, 63, 70, 98, 104, 105])
def test_min_variance_histogram_matches_exhaustive_search(total: int) -> None:
    mos = total / 21
    got = F.min_variance_histogram([mos])[0].numpy()
    assert np.allclose(got, _brute_force_histogram(mos), atol=1e-12)
    assert got @ np.arange(1, 6) == pytest.approx(mos, abs=1e-12)


def test_min_variance_histogram_rounding() -> None:
    with pytest.raises(InputError, match="not a mean of 21"):
        F.min_variance_histogram([3.01])
    got = F.min_variance_histogram([3.01], rounding="nearest")[0].numpy()
    assert np.allclose(got, _brute_force_histogram(63 / 21))
    with pytest.raises(InputError, match="must lie in"):
        F.min_variance_histogram([0.5], rounding="nearest")


# ------------------------------------------------------------------------------------- distribution losses


def test_kl_divergence_on_a_toy_vocabulary() -> None:
    logits = np.array(
        [[0.1, 2.0, -1.0, 0.5, 0.0, 1.5, -0.3, 0.7], [1.0, 0.0, 0.2, -2.0, 0.4, 0.3, 0.9, -0.1]]
    )
    index = [3, 5, 1, 0, 6]  # level-token ids
    target = np.array([[0.1, 0.2, 0.4, 0.3, 0.0], [0.0, 0.0, 0.5, 0.5, 0.0]])
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    per_row = [
        sum(t * (math.log(t) - logp[b, i]) for t, i in zip(target[b], index, strict=True) if t > 0)
        for b in range(2)
    ]
    got = F.kl_divergence_loss(_t(logits), _t(target), index=torch.tensor(index))
    assert got.item() == pytest.approx(sum(per_row) / 2, abs=1e-12)
    rows = F.kl_divergence_loss(_t(logits), _t(target), index=torch.tensor(index), reduction="none")
    assert np.allclose(rows.numpy(), per_row)
    # Full-vocabulary KL agrees with scipy's relative entropy.
    full = np.full((1, 8), 1 / 8)
    got_full = F.kl_divergence_loss(_t(logits[:1]), _t(full))
    assert got_full.item() == pytest.approx(stats.entropy(full[0], np.exp(logp[0])), abs=1e-12)


def test_liqe_multiclass_fidelity_losses() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    g = np.array([[1.0, 0.0, 0.0], [0.2, 0.2, 0.6]])
    assert F.multiclass_fidelity_loss(_t(p), _t(g)).item() == pytest.approx(
        _np_fidelity(p, g).mean(), abs=1e-14
    )
    expected = np.mean(1 - np.sqrt(p * g + 1e-8).sum(axis=1))
    assert F.distribution_fidelity_loss(_t(p), _t(g)).item() == pytest.approx(expected, abs=1e-14)


# --------------------------------------------------------------------------------------------- heatmaps


def test_heatmap_loss_matches_dice_and_iou() -> None:
    pred = np.array([[[0.9, 0.1], [0.4, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    target = np.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    s = 1e-6
    inter = (pred * target).sum(axis=(1, 2))
    total = pred.sum(axis=(1, 2)) + target.sum(axis=(1, 2))
    dice = (2 * inter + s) / (total + s)
    iou = (inter + s) / (total - inter + s)
    mse = np.mean((pred - target) ** 2)
    assert np.allclose(F.soft_dice(_t(pred), _t(target)).numpy(), dice)
    assert np.allclose(F.soft_iou(_t(pred), _t(target)).numpy(), iou)
    assert dice[1] == pytest.approx(1.0)  # empty prediction of an empty map is perfect
    for overlap, value in (
        ("dice", dice.mean()),
        ("iou", iou.mean()),
        ("mean", (dice.mean() + iou.mean()) / 2),
    ):
        got = F.heatmap_loss(_t(pred), _t(target), overlap=overlap)
        assert got.item() == pytest.approx(mse + 1 - value, abs=1e-12), overlap


# -------------------------------------------------------------------------------------------- modules


def test_modules_equal_functions() -> None:
    g = torch.Generator().manual_seed(5)
    p, t = torch.randn(6, generator=g, dtype=D), torch.rand(6, generator=g, dtype=D) * 4 + 1
    pairs = [
        (losses.FidelityLoss(), F.fidelity_loss(p, t)),
        (losses.PairwiseLogisticRankLoss(), F.pairwise_logistic_rank_loss(p, t)),
        (losses.L1RankLoss(hard_threshold=2.0), F.l1_rank_loss(p, t, hard_threshold=2.0)),
        (losses.PLCCLoss(), F.plcc_loss(p, t)),
        (losses.SRCCLoss(temperature=0.5), F.srcc_loss(p, t, temperature=0.5)),
        (losses.MSEPLCCLoss(alpha=0.3), F.mse_plcc_loss(p, t, alpha=0.3)),
        (losses.PLCCRankLoss(alpha=0.2), F.plcc_rank_loss(p, t, alpha=0.2)),
        (losses.FocalLabelSmoothingLoss(gamma=1.0), F.focal_label_smoothing_loss(p, t, gamma=1.0)),
        (losses.CorrelationFocalLoss(lam=0.9), F.correlation_focal_loss(p, t, lam=0.9)),
    ]
    for module, expected in pairs:
        assert module(p, t).item() == pytest.approx(expected.item(), abs=1e-15), repr(module)
    votes = _votes(t)
    assert losses.MajorityVoteFidelityLoss()(p, votes) == F.fidelity_loss_majority_voting(p, votes)
    assert losses.GroupedFidelityLoss()(p, t, [2, 4]) == F.grouped_fidelity_loss(p, t, [2, 4])
    grp, sc = torch.tensor([0, 1, 0, 1, 2, 2]), _t([1.0, 3.0, 2.0])
    assert losses.GroupMeanFidelityLoss()(p, grp, sc) == F.group_mean_fidelity_loss(p, grp, sc)
    assert losses.PairwiseFidelityLoss()(p, t, torch.sigmoid(p)) == F.pairwise_fidelity_loss(
        p, t, torch.sigmoid(p)
    )
    assert losses.DeQARatingLoss()(p, t, t, t, p, t) == F.deqa_rating_loss(p, t, t, t, p, t)
    logits, target = torch.randn(2, 7, generator=g, dtype=D), torch.rand(2, 5, generator=g, dtype=D)
    kl = losses.KLDivergenceLoss(index=[0, 2, 4, 6, 1])
    assert kl(logits, target) == F.kl_divergence_loss(logits, target, index=torch.tensor([0, 2, 4, 6, 1]))
    assert "index=[0, 2, 4, 6, 1]" in repr(kl)
    probs = target.softmax(-1)
    assert losses.MulticlassFidelityLoss()(probs, probs) == F.multiclass_fidelity_loss(probs, probs)
    assert losses.DistributionFidelityLoss()(probs, probs) == F.distribution_fidelity_loss(probs, probs)
    heat = torch.rand(2, 3, 3, generator=g, dtype=D)
    assert losses.HeatmapLoss(overlap="iou")(heat, heat.round()) == F.heatmap_loss(
        heat, heat.round(), overlap="iou"
    )


# ---------------------------------------------------------------------------------------------- guards


def test_guards_raise_input_errors() -> None:
    p = _t([1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="shape"):
        F.plcc_loss(p, _t([1.0, 2.0]))
    with pytest.raises(InputError, match="floating-point"):
        F.fidelity_loss(torch.tensor([1, 2, 3]), p)
    with pytest.raises(InputError, match="torch.Tensor"):
        F.srcc_loss([1.0, 2.0], p)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="undefined must be"):
        F.fidelity_loss(p, p, undefined="zero")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="undefined must be"):
        losses.FidelityLoss(undefined="zero")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="sum to the batch size"):
        F.grouped_fidelity_loss(p, p, [1, 1])
    with pytest.raises(InputError, match="votes must have shape"):
        F.fidelity_loss_majority_voting(p, _t([[1.0], [2.0]]))
    with pytest.raises(InputError, match="group ids"):
        F.group_mean_fidelity_loss(p, torch.tensor([0, 1, 5]), _t([1.0, 2.0]))
    with pytest.raises(InputError, match="integer tensor"):
        F.group_mean_fidelity_loss(p, p, _t([1.0, 2.0]))
    with pytest.raises(InputError, match="both var_a and var_b"):
        F.pairwise_fidelity_loss(p, p, p, var_a=p)
    with pytest.raises(InputError, match="temperature"):
        F.soft_rank(p, temperature=0.0)
    with pytest.raises(InputError, match="max_mos"):
        F.deqa_soft_label([3.0], [0.5], min_mos=5.0, max_mos=1.0)
    with pytest.raises(InputError, match="density"):
        F.deqa_soft_label([3.0], [0.5], min_mos=1.0, max_mos=5.0, density="gauss")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="order"):
        F.deqa_soft_label([3.0], [0.5], min_mos=1.0, max_mos=5.0, order="up")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="logits"):
        F.kl_divergence_loss(p, p)
    with pytest.raises(InputError, match="reduction"):
        F.kl_divergence_loss(p.reshape(1, 3), p.reshape(1, 3), reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="overlap"):
        F.heatmap_loss(p.reshape(1, 3), p.reshape(1, 3), overlap="f1")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="probs"):
        F.multiclass_fidelity_loss(p, p)
