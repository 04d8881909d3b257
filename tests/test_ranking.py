"""Paired-comparison ranking (paper 002, eq. 2; PROTOCOLS.md 4.3) against independent references.

References: the worked cases of PROTOCOLS.md 4.3, ``scipy.optimize.minimize`` on the plain likelihood
written below (double sums over the count matrix, pinned first score), ``choix`` for Bradley-Terry, a
finite-difference Hessian for the standard errors, simulation for the coverage, and the facts the paper and
the RealSR-1K README state about the RealSR votes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, special
from scipy.stats import norm, spearmanr

from perceptiq.errors import DataFileError, InputError
from perceptiq.io.votes import read_votes
from perceptiq.ranking import (
    DisconnectedComparisonsError,
    bootstrap_scores,
    bradley_terry,
    counts_from_pairs,
    counts_from_records,
    fit_paired,
    log_likelihood,
    paired_mle,
    thurstone,
)
from perceptiq.ranking.stability import ranking_stability

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CASES = SHARED / "docs" / "protocol_cases" / "thurstone_case5_mle.json"
REALSR = SHARED / "data" / "realsr_votes" / "sr_subjective_results.csv"
MODELS = ("thurstone", "bt")


def _log_f(d: np.ndarray, model: str) -> np.ndarray:
    return special.log_ndtr(d) if model == "thurstone" else -np.logaddexp(0.0, -d)


def _dlog_f(d: np.ndarray, model: str) -> np.ndarray:
    if model == "thurstone":
        return np.exp(-0.5 * d * d) / np.sqrt(2 * np.pi) / special.ndtr(d)
    return 1.0 / (1.0 + np.exp(d))


def _reference_fit(counts: np.ndarray, model: str, ridge: float = 0.0) -> np.ndarray:
    """Maximise sum_ij C_ij log F(mu_i - mu_j) - ridge |mu|^2 by L-BFGS-B (mu_0 = 0 without a ridge)."""
    c = np.asarray(counts, dtype=float)
    n = c.shape[0]

    def unpack(theta: np.ndarray) -> np.ndarray:
        return theta if ridge > 0 else np.concatenate([[0.0], theta])

    def neg(theta: np.ndarray) -> float:
        mu = unpack(theta)
        d = mu[:, None] - mu[None, :]
        return -(np.sum(c * _log_f(d, model)) - ridge * np.sum(mu**2))

    def grad(theta: np.ndarray) -> np.ndarray:
        mu = unpack(theta)
        g = c * _dlog_f(mu[:, None] - mu[None, :], model)
        full = g.sum(axis=1) - g.sum(axis=0) - 2 * ridge * mu
        return -(full if ridge > 0 else full[1:])

    x = np.zeros(n if ridge > 0 else n - 1)
    options = {"ftol": 1e-16, "gtol": 1e-11, "maxiter": 20000, "maxcor": 50}
    for _ in range(2):  # a restart refreshes the quasi-Newton memory
        x = optimize.minimize(neg, x, jac=grad, method="L-BFGS-B", options=options).x
    mu = unpack(x)
    return mu - mu.mean()


def _random_counts(rng: np.random.Generator, n: int, density: float, scale: int) -> np.ndarray:
    while True:
        mask = np.triu(rng.random((n, n)) < density, 1)
        mask = mask | mask.T
        c = rng.integers(1, scale + 1, size=(n, n)) * mask
        path = np.arange(n - 1)
        c[path, path + 1] += 1
        c[path + 1, path] += 1
        np.fill_diagonal(c, 0)
        return c


# ---- worked cases of PROTOCOLS.md 4.3 ----------------------------------------------------------------------


@pytest.mark.skipif(not CASES.exists(), reason="../shared/docs/protocol_cases not available")
@pytest.mark.parametrize("index", [0, 1])
def test_worked_cases(index: int) -> None:
    case = json.loads(CASES.read_text())["cases"][index]
    tol = json.loads(CASES.read_text())["tolerance"]
    expected = case["expected"]
    result = thurstone(np.array(case["inputs"]["C"]), ridge=case["inputs"]["penalty"])
    np.testing.assert_allclose(result.scores, expected["mu_zero_mean"], atol=tol["mu"])
    np.testing.assert_allclose(
        result.scores * np.sqrt(2), expected["mu_if_item_variance_is_1 (=mu*sqrt2)"], atol=tol["mu"]
    )
    assert result.ranking.tolist() == expected["ranking_best_first"]
    assert -result.log_likelihood == pytest.approx(expected["neg_log_lik_at_mu"], abs=tol["neg_log_lik"])


# ---- agreement with an independent solver ------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("n", "density", "scale", "seed"),
    [(3, 1.0, 10, 0), (5, 0.8, 30, 1), (8, 0.5, 5, 2), (12, 0.3, 50, 3), (12, 1.0, 400, 4)],
)
def test_random_counts_match_scipy(model: str, n: int, density: float, scale: int, seed: int) -> None:
    counts = _random_counts(np.random.default_rng(seed), n, density, scale)
    result = fit_paired(counts, model)
    np.testing.assert_allclose(result.scores, _reference_fit(counts, model), atol=1e-6)
    assert abs(result.scores.sum()) < 1e-12
    d = result.scores[:, None] - result.scores[None, :]
    assert result.log_likelihood == pytest.approx(np.sum(counts * _log_f(d, model)), rel=1e-12)


ADVERSARIAL = {
    # one pair decided 1000 to 1, the others nearly balanced: scores far apart
    "lopsided": np.array([[0, 1000, 3], [1, 0, 5], [4, 6, 0]]),
    # a path design (sparse): each item compared with its neighbours only
    "path": np.diag([7, 1, 9, 2, 30, 1, 4], 1) + np.diag([2, 8, 1, 6, 1, 25, 3], -1),
    # huge vote totals
    "large_counts": np.array([[0, 600000, 400000], [350000, 0, 520000], [300000, 480000, 0]]),
    # a cycle of wins only (strongly connected with the minimum of information)
    "cycle": np.roll(np.eye(5, dtype=int), 1, axis=1),
    # one item loses all but a single vote
    "near_separation": np.array([[0, 50, 40, 30], [30, 0, 20, 25], [35, 22, 0, 20], [1, 0, 0, 0]]),
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_counts_match_scipy(model: str, name: str) -> None:
    counts = ADVERSARIAL[name]
    result = fit_paired(counts, model)
    assert not result.ridge_needed
    np.testing.assert_allclose(result.scores, _reference_fit(counts, model), atol=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_ridge_matches_scipy_on_perfect_separation(model: str) -> None:
    counts = np.array([[0, 5, 6, 4], [0, 0, 3, 2], [0, 4, 0, 6], [0, 3, 1, 0]])  # item 0 never loses
    result = fit_paired(counts, model, ridge=0.05, items=["A", "B", "C", "D"])
    np.testing.assert_allclose(result.scores, _reference_fit(counts, model, ridge=0.05), atol=1e-6)
    assert result.ridge_needed
    assert "needed" in result.ridge_reason
    assert "never beaten by the rest: {A}" in result.ridge_reason
    assert result.ranking[0] == 0


def test_ridge_on_connected_data_is_reported_as_not_needed() -> None:
    result = thurstone(ADVERSARIAL["lopsided"], ridge=0.01)
    assert not result.ridge_needed
    assert result.ridge_reason.startswith("not needed")
    np.testing.assert_allclose(
        result.scores, _reference_fit(ADVERSARIAL["lopsided"], "thurstone", 0.01), atol=1e-6
    )


@pytest.mark.parametrize(("model", "ridge"), [("thurstone", 0.0), ("bt", 0.5)])
def test_large_sparse_design_matches_scipy(model: str, ridge: float) -> None:
    """140 items: above the dense threshold, so Newton steps go through sparse conjugate gradients."""
    counts = _random_counts(np.random.default_rng(30), 140, 0.04, 12)
    reference = _reference_fit(counts, model, ridge)
    np.testing.assert_allclose(paired_mle(counts, model, ridge=ridge), reference, atol=1e-6)
    np.testing.assert_allclose(fit_paired(counts, model, ridge=ridge).scores, reference, atol=1e-6)


def test_bradley_terry_matches_choix_mle() -> None:
    choix = pytest.importorskip("choix")
    for seed, (n, density, scale) in enumerate([(6, 1.0, 20), (10, 0.4, 8), (15, 0.3, 60)]):
        counts = _random_counts(np.random.default_rng(10 + seed), n, density, scale)
        theirs = choix.ilsr_pairwise_dense(counts.astype(float), alpha=0.0, max_iter=100000, tol=1e-13)
        np.testing.assert_allclose(bradley_terry(counts).scores, theirs - theirs.mean(), atol=1e-6)


def test_bradley_terry_ridge_matches_choix_map() -> None:
    choix = pytest.importorskip("choix")
    counts = np.array([[0, 4, 3, 2], [0, 0, 2, 3], [1, 2, 0, 0], [0, 1, 3, 0]])  # item 0 never loses
    data = [(i, j) for i in range(4) for j in range(4) for _ in range(counts[i, j])]
    theirs = choix.opt_pairwise(4, data, alpha=0.1, method="Newton-CG", tol=1e-14)
    ours = bradley_terry(counts, ridge=0.1)
    np.testing.assert_allclose(ours.scores, theirs, atol=1e-6)


# ---- existence and identifiability -------------------------------------------------------------------------


def test_perfect_separation_without_ridge_is_a_clear_error() -> None:
    counts = np.array([[0, 5, 6], [0, 0, 3], [0, 4, 0]])
    with pytest.raises(
        DisconnectedComparisonsError, match=r"do not exist.*never beaten by the rest: \{top\}.*ridge"
    ):
        thurstone(counts, items=["top", "mid", "low"])


def test_disconnected_design_names_the_components() -> None:
    counts = np.zeros((5, 5), dtype=int)
    counts[0, 1], counts[1, 0], counts[2, 3], counts[3, 4], counts[4, 2] = 3, 2, 1, 1, 1
    for ridge in (0.0, 0.1):
        with pytest.raises(
            DisconnectedComparisonsError, match=r"not connected \(2 components.*\{c, d, e\}; \{a, b\}"
        ) as err:
            fit_paired(counts, items="abcde", ridge=ridge)
        assert err.value.components == [["c", "d", "e"], ["a", "b"]]
        assert err.value.connection == "weak"


def test_wins_edges_in_any_order_give_the_same_components() -> None:
    """Row-sorted edges build the graph directly, unsorted ones go through COO: same verdicts as csgraph."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    from perceptiq.ranking._graph import check_wins_edges

    rng = np.random.default_rng(3)
    items = [str(i) for i in range(30)]
    for _ in range(20):
        winners, losers = rng.integers(0, 30, size=(2, 60))
        keep = winners != losers
        winners, losers = winners[keep], losers[keep]
        graph = coo_array((np.ones(winners.size), (winners, losers)), shape=(30, 30))
        n_weak = connected_components(graph, directed=True, connection="weak")[0]
        n_strong = connected_components(graph, directed=True, connection="strong")[0]
        order = np.argsort(winners, kind="stable")
        for w, lo in ((winners, losers), (winners[order], losers[order])):
            if n_weak > 1:
                with pytest.raises(DisconnectedComparisonsError, match="not connected"):
                    check_wins_edges(w, lo, items, require_strong=False)
            else:
                assert check_wins_edges(w, lo, items, require_strong=False) == (n_strong == 1)


def test_item_never_compared_is_reported() -> None:
    counts = np.array([[0, 2, 0], [1, 0, 0], [0, 0, 0]])
    with pytest.raises(DisconnectedComparisonsError, match=r"\{z\}"):
        bradley_terry(counts, items=["x", "y", "z"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"counts": [[0, 1], [-1, 0]]}, "non-negative"),
        ({"counts": [[0, 1, 2]]}, "square"),
        ({"counts": [[0, 1], [1, 0]], "model": "luce"}, "unknown paired-comparison model"),
        ({"counts": [[0, 1], [1, 0]], "ridge": -1.0}, "ridge"),
        ({"counts": [[0, 1], [1, 0]], "items": ["a", "a"]}, "distinct"),
        ({"counts": [[0, 1], [1, 0]], "level": 1.5}, "level"),
        ({"counts": [[0, 1], [1, 0]], "ci": "jackknife"}, "unknown interval method"),
        ({"counts": [["a", "b"], ["c", "d"]]}, "integer or real vote counts"),
        ({"counts": [[0, np.nan], [1, 0]]}, "finite"),
    ],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        fit_paired(**kwargs)


# ---- counts and likelihood ---------------------------------------------------------------------------------


def test_counts_from_records_and_pairs() -> None:
    counts = counts_from_records([0, 0, 1, 2, 2, 0], [1, 1, 2, 0, 1, 2], [0, 1, 2, 0, 2, 0], n_items=4)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 1], expected[1, 0], expected[2, 1], expected[0, 2] = 1, 1, 2, 2
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(counts_from_pairs([0, 1, 0], [1, 0, 2], [3, 1, 0], [2, 4, 5]),
                                  [[0, 3 + 4, 0], [2 + 1, 0, 0], [5, 0, 0]])  # fmt: skip


def test_counts_errors() -> None:
    with pytest.raises(InputError, match=r"vote 1 \(0, 1, winner 2\): winner not in pair"):
        counts_from_records([0, 0], [1, 1], [1, 2])
    with pytest.raises(InputError, match="compares an item with itself"):
        counts_from_records([0], [0], [0])
    with pytest.raises(InputError, match="not a non-negative integer"):
        counts_from_pairs([0], [1], [1.5], [2])
    with pytest.raises(InputError, match="out of range"):
        counts_from_records([0], [5], [5], n_items=3)


def test_log_likelihood_by_hand() -> None:
    counts = [[0, 2, 1], [1, 0, 0], [0, 3, 0]]
    mu = np.array([0.5, -0.5, 0.1])
    by_hand = 2 * norm.logcdf(1.0) + norm.logcdf(0.4) + norm.logcdf(-1.0) + 3 * norm.logcdf(0.6)
    assert log_likelihood(mu, counts) == pytest.approx(by_hand, rel=1e-13)
    by_hand_bt = -(
        2 * np.log1p(np.exp(-1.0))
        + np.log1p(np.exp(-0.4))
        + np.log1p(np.exp(1.0))
        + 3 * np.log1p(np.exp(-0.6))
    )
    assert log_likelihood(mu, counts, "bt") == pytest.approx(by_hand_bt, rel=1e-13)


# ---- standard errors, intervals and coverage ---------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_standard_errors_match_finite_difference_information(model: str) -> None:
    counts = _random_counts(np.random.default_rng(7), 6, 0.7, 25)
    result = fit_paired(counts, model)
    mu = result.scores

    def grad_free(theta: np.ndarray) -> np.ndarray:  # gradient of L w.r.t. mu_1.. with mu_0 pinned
        m = np.concatenate([[0.0], theta])
        g = counts * _dlog_f(m[:, None] - m[None, :], model)
        return (g.sum(axis=1) - g.sum(axis=0))[1:]

    theta = mu[1:] - mu[0]
    hess = np.array([(grad_free(theta + h) - grad_free(theta - h)) / 2e-5 for h in 1e-5 * np.eye(5)])
    cov_pinned = np.zeros((6, 6))
    cov_pinned[1:, 1:] = np.linalg.inv(-hess)
    centre = np.eye(6) - 1.0 / 6  # zero-mean scores are centre @ pinned scores
    np.testing.assert_allclose(result.se, np.sqrt(np.diag(centre @ cov_pinned @ centre)), rtol=1e-5)


def _simulate(rng: np.random.Generator, truth: np.ndarray, votes: int, model: str, reps: int) -> np.ndarray:
    d = truth[:, None] - truth[None, :]
    p = norm.cdf(d) if model == "thurstone" else 1 / (1 + np.exp(-d))
    upper = np.triu(rng.binomial(votes, np.broadcast_to(p, (reps, *p.shape))), 1)
    return upper + np.triu(votes - upper, 1).transpose(0, 2, 1)


@pytest.mark.parametrize("model", MODELS)
def test_wald_intervals_cover_true_scores(model: str) -> None:
    truth = np.linspace(-0.75, 0.75, 6)
    sims = _simulate(np.random.default_rng(11), truth, 30, model, 200)
    fits = [fit_paired(c, model) for c in sims]
    covered = [(fit.ci_low <= truth) & (truth <= fit.ci_high) for fit in fits]
    assert 0.90 <= np.mean(covered) <= 0.99


def test_bootstrap_intervals_cover_true_scores() -> None:
    truth = np.linspace(-0.6, 0.6, 5)
    sims = _simulate(np.random.default_rng(12), truth, 40, "thurstone", 60)
    covered = []
    for k, c in enumerate(sims):
        result = thurstone(c, ci="bootstrap", n_boot=300, seed=k)
        covered.append((result.ci_low <= truth) & (truth <= result.ci_high))
    assert 0.90 <= np.mean(covered) <= 0.99


def test_bootstrap_is_seeded_and_matches_wald_spread() -> None:
    counts = _random_counts(np.random.default_rng(3), 6, 1.0, 60)
    boot, failed = bootstrap_scores(counts, n_boot=1500, seed=5)
    again, _ = bootstrap_scores(counts, n_boot=1500, seed=5)
    np.testing.assert_array_equal(boot, again)
    assert failed == 0
    np.testing.assert_allclose(boot.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(boot.std(axis=0), thurstone(counts).se, rtol=0.1)


def test_bootstrap_errors() -> None:
    with pytest.raises(InputError, match="integer vote counts"):
        bootstrap_scores([[0, 1.5], [2, 0]])
    with pytest.raises(InputError, match="n_boot must be positive"):
        bootstrap_scores([[0, 1], [2, 0]], n_boot=0)
    with pytest.raises(DisconnectedComparisonsError, match="do not exist"):
        bootstrap_scores([[0, 1], [0, 0]])


def test_bootstrap_drops_resamples_without_mle() -> None:
    counts = np.array(
        [[0, 10, 10], [10, 0, 10], [1, 0, 0]]
    )  # item 2 won a single vote: lost in ~37% of resamples
    boot, failed = bootstrap_scores(counts, n_boot=400, seed=0)
    assert 100 < failed < 200
    assert boot.shape == (400 - failed, 3)
    result = thurstone(counts, ci="bootstrap", n_boot=400, seed=0)
    assert result.n_boot_failed == failed


# ---- ranking stability (Fig. 4) ----------------------------------------------------------------------------


def test_stability_with_given_order_matches_manual_subset() -> None:
    rng = np.random.default_rng(21)
    truth = np.array([0.6, 0.3, 0.0, -0.2, -0.7])
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    rows = np.array([p for p in pairs for _ in range(6)])
    flip = rng.random(len(rows)) < 0.5
    first, second = np.where(flip, rows[:, 1], rows[:, 0]), np.where(flip, rows[:, 0], rows[:, 1])
    n1 = rng.binomial(15, norm.cdf(truth[first] - truth[second]))
    order = rng.permutation(len(rows)).astype(float)
    result = ranking_stability(first, second, n1, 15 - n1, ks=[2, 6], order=order)
    full = _reference_fit(counts_from_pairs(first, second, n1, 15 - n1), "thurstone")
    rank_in_pair = np.empty(len(rows), dtype=int)
    for p in range(len(pairs)):
        idx = np.flatnonzero(
            (np.minimum(first, second) == pairs[p][0]) & (np.maximum(first, second) == pairs[p][1])
        )
        rank_in_pair[idx[np.argsort(order[idx])]] = np.arange(idx.size)
    keep = rank_in_pair < 2
    top2 = _reference_fit(
        counts_from_pairs(first[keep], second[keep], n1[keep], 15 - n1[keep], 5), "thurstone"
    )
    assert result.srcc[0] == pytest.approx(spearmanr(top2, full).statistic)
    assert result.srcc[1] == pytest.approx(1.0)
    assert result.order == "given"


def test_stability_ignores_rows_without_votes() -> None:
    result = ranking_stability([0, 1, 0], [1, 2, 2], [3, 2, 0], [1, 4, 0], order=[0, 1, 2])
    assert result.ks.tolist() == [1]
    assert result.srcc.tolist() == [1.0]


def test_stability_errors() -> None:
    with pytest.raises(InputError, match="ks must be positive"):
        ranking_stability([0, 1], [1, 2], [3, 2], [1, 4], ks=[0])
    with pytest.raises(InputError, match="order has 1 entries for 2 rows"):
        ranking_stability([0, 1], [1, 2], [3, 2], [1, 4], order=[0])
    with pytest.raises(InputError, match="n_draws must be positive"):
        ranking_stability([0, 1], [1, 2], [3, 2], [1, 4], n_draws=0)
    with pytest.raises(DisconnectedComparisonsError, match=r"\{x, y\}; \{z, w\}"):
        ranking_stability([0, 2], [1, 3], [3, 2], [1, 4], items=["x", "y", "z", "w"])


# ---- RealSR-1K votes (paper 002, Sec. III-C, Fig. 5) -------------------------------------------------------

DIFFUSION = {"DiffBIR", "ResShift", "SinSR", "StableSR", "SeeSR"}
GAN = {"USRGAN", "Real-ESRGAN", "BSRGAN", "LDL"}


@pytest.mark.shared_data
@pytest.mark.skipif(not REALSR.exists(), reason="../shared/data/realsr_votes not available")
@pytest.mark.parametrize("model", MODELS)
def test_realsr_ranking_matches_paper(model: str) -> None:
    votes = read_votes(REALSR, raters=23)
    assert votes.layout == "realsr"
    assert len(votes.items) == 12
    assert len(votes.first) == 1056
    assert votes.n_votes == 1056 * 23
    result = fit_paired(votes.counts(), model, items=votes.items)
    ranked = [votes.items[i] for i in result.ranking]
    assert ranked[0] == "SeeSR"
    assert ranked[-1] == "RGT"
    assert set(ranked[:5]) == DIFFUSION
    assert next(m for m in ranked if m in GAN) == "USRGAN"


@pytest.mark.shared_data
@pytest.mark.skipif(not REALSR.exists(), reason="../shared/data/realsr_votes not available")
def test_realsr_ranking_is_stable_from_eight_images_per_pair() -> None:
    votes = read_votes(REALSR, raters=23)
    result = ranking_stability(votes.first, votes.second, votes.count_first, votes.count_second, n_draws=30)
    assert result.ks.tolist() == list(range(1, 17))
    assert (result.srcc[result.ks >= 8] > 0.97).all()
    assert result.srcc[-1] == pytest.approx(1.0)
    assert result.n_failed.sum() == 0


# ---- vote files --------------------------------------------------------------------------------------------


SR_HEADER = "sr_pair_names,name1_column,name2_column,score1_column,score2_column\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "votes.csv"
    path.write_text(text)
    return path


def test_read_votes_layouts(tmp_path: Path) -> None:
    realsr = _write(tmp_path, "sr_pair_names,group,name1_column,name2_column,score1_column,score2_column\n"
                              "A_B,mad,x_1_A.png,x_1_B.png,0.75,0.25\nB_C,mid,y_B.png,y_C.png,0.5,0.5\n"
                              "average,,,,0.6,0.4\n")  # fmt: skip
    table = read_votes(realsr, raters=4)
    assert table.items == ("A", "B", "C")
    np.testing.assert_array_equal(table.counts(), [[0, 3, 0], [1, 0, 2], [0, 2, 0]])
    counts = _write(tmp_path, "first,second,count_first,count_second\n10,2,3,1\n2,10,1,1\n")
    table = read_votes(counts)
    assert table.items == ("2", "10")
    np.testing.assert_array_equal(table.counts(), [[0, 2], [4, 0]])
    records = _write(tmp_path, "first,second,winner\nu,v,u\nv,u,u\nu,v,v\n")
    np.testing.assert_array_equal(read_votes(records).counts(), [[0, 2], [1, 0]])


@pytest.mark.parametrize(
    ("text", "raters", "message"),
    [
        ("a,b\n1,2\n", None, "unrecognised columns"),
        ("first,second,winner\nu,v,w\n", None, "line 2: winner 'w' is neither 'u' nor 'v'"),
        ("first,second,count_first,count_second\nu,v,x,1\n", None, "'count_first', line 2"),
        ("first,second,count_first,count_second\nu,u,1,1\n", None, "compared with itself"),
        ("first,second,count_first,count_second\n", None, "table has no rows"),
        (SR_HEADER + "A_B,a_A.png,a_B.png,0.5,0.5\n", None, "number of raters"),
        (SR_HEADER + "A_B,a_A.png,a_B.png,0.3,0.7\n", 4, "score1_column x 4 raters = 1.2 is not"),
        (SR_HEADER + "A_B,aA.png,a_B.png,0.5,0.5\n", 4, "'aA.png' has no '_<method>' suffix"),
        ("first,second,winner\nu,v,u\n", 23, "raters applies only"),
        ("", None, "file is empty"),
        ('first,second,winner\nu,"v\n', None, "cannot be read as csv"),
    ],
)  # fmt: skip
def test_read_votes_errors(tmp_path: Path, text: str, raters: int | None, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataFileError, match=message) as err:
        read_votes(path, raters=raters)
    assert str(path) in str(err.value)


def test_read_votes_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="file not found"):
        read_votes(tmp_path / "absent.csv")
