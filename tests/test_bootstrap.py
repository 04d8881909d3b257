"""Vectorised bootstrap statistics against a naive scipy loop over the same resamples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats

from perceptiq.errors import FitWarning, InputError
from perceptiq.evaluation import bootstrap as bs
from perceptiq.evaluation import stats
from perceptiq.evaluation.bootstrap import expand, iter_resample_counts
from perceptiq.evaluation.protocols import ScoreData, create_protocol


def _data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n), 1)
    return x, np.round(x + rng.normal(size=n), 1)


def test_weighted_statistics_equal_scipy_on_each_resample():
    x, y = _data()
    w = bs.resample_counts(x.size, 25, np.random.default_rng(1))
    rho = bs.weighted_spearman(x, y, w)
    r = bs.weighted_pearson(x, y, w)
    for k in range(w.shape[0]):
        idx = bs.expand(w[k])
        assert rho[k] == pytest.approx(scipy.stats.spearmanr(x[idx], y[idx]).statistic, abs=1e-12)
        assert r[k] == pytest.approx(scipy.stats.pearsonr(x[idx], y[idx]).statistic, abs=1e-12)


def test_counts_are_index_resamples_and_chunking_does_not_change_them():
    w = bs.resample_counts(50, 10, np.random.default_rng(3))
    assert (w.sum(axis=1) == 50).all()
    whole = np.concatenate(list(bs.iter_resample_counts(51, 40, seed=7, chunk_elements=10_000)))
    chunked = np.concatenate(list(bs.iter_resample_counts(51, 40, seed=7, chunk_elements=120)))
    parallel = np.concatenate(list(bs.iter_resample_counts(51, 40, seed=7, n_chunks=3)))
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_array_equal(whole, parallel)


def test_percentile_interval_equals_numpy_quantiles_of_a_naive_loop():
    x, y = _data(80, 2)
    chunks = list(bs.iter_resample_counts(x.size, 300, seed=11))
    w = np.concatenate(chunks)
    naive = np.array([scipy.stats.spearmanr(x[bs.expand(row)], y[bs.expand(row)]).statistic for row in w])
    ci = bs.percentile_interval(scipy.stats.spearmanr(x, y).statistic, bs.weighted_spearman(x, y, w), 0.9)
    low, high = np.quantile(naive, [0.05, 0.95])
    assert ci.low == pytest.approx(low, abs=1e-12)
    assert ci.high == pytest.approx(high, abs=1e-12)
    with pytest.raises(InputError):
        bs.percentile_interval(0.0, naive, confidence=1.5)


def test_pearson_interval_covers_the_true_correlation_about_95_percent():
    rng = np.random.default_rng(5)
    rho, n, hits, trials = 0.6, 150, 0, 200
    cov = [[1, rho], [rho, 1]]
    for t in range(trials):
        x, y = rng.multivariate_normal([0, 0], cov, size=n).T
        w = np.concatenate(list(bs.iter_resample_counts(n, 400, seed=t)))
        ci = bs.percentile_interval(np.corrcoef(x, y)[0, 1], bs.weighted_pearson(x, y, w))
        hits += ci.low <= rho <= ci.high
    assert 0.88 <= hits / trials <= 0.99


def test_paired_difference_detects_a_better_model_and_not_an_identical_one():
    rng = np.random.default_rng(0)
    mos = rng.normal(size=300)
    good = mos + rng.normal(0, 0.3, 300)
    bad = mos + rng.normal(0, 1.0, 300)
    w = np.concatenate(list(bs.iter_resample_counts(300, 500, seed=0)))
    ra, rb = bs.weighted_spearman(good, mos, w), bs.weighted_spearman(bad, mos, w)
    diff = bs.paired_difference("srcc", 0.9, 0.6, ra, rb)
    assert diff.p_value < 0.01
    assert diff.difference.low > 0
    same = bs.paired_difference("srcc", 0.9, 0.9, ra, ra)
    assert same.p_value == 1.0
    assert same.difference.low == same.difference.high == 0.0


def test_williams_test_matches_steigers_worked_example():
    # Steiger (1980) / psych::r.test(n = 103, r12 = .4, r13 = .5, r23 = .1): t = -0.89, p = 0.37
    t, p = bs.williams_test(0.4, 0.5, 0.1, 103)
    assert t == pytest.approx(-0.89, abs=0.005)
    assert p == pytest.approx(0.37, abs=0.01)
    t_rev, _ = bs.williams_test(0.5, 0.4, 0.1, 103)
    assert t_rev == pytest.approx(-t)
    with pytest.raises(InputError):
        bs.williams_test(0.4, 0.5, 0.1, 3)


def test_williams_test_holds_its_level_under_the_null():
    rng = np.random.default_rng(9)
    cov = np.array([[1.0, 0.5, 0.5], [0.5, 1.0, 0.3], [0.5, 0.3, 1.0]])  # corr(A,Y) = corr(B,Y)
    rejections, trials, n = 0, 1500, 60
    for _ in range(trials):
        y, a, b = rng.multivariate_normal(np.zeros(3), cov, size=n).T
        r = np.corrcoef([a, b, y])
        rejections += bs.williams_test(r[0, 2], r[1, 2], r[0, 1], n)[1] < 0.05
    assert 0.03 <= rejections / trials <= 0.075


def _sigmoid_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quality = rng.uniform(1, 5, n)
    mos = np.round(np.clip(quality + rng.normal(0, 0.4, n), 1, 5), 1)  # rounded: ties
    pred = 1 / (1 + np.exp(-(quality - 3))) + rng.normal(0, 0.05, n)
    return pred, mos


def test_fast_generic_bootstrap_agrees_with_a_per_resample_loop():
    """The batched replicates against scipy/statistics evaluated on each expanded resample.

    KRCC, the logistic-4 and the monotone-cubic PLCC are the same optimum, so replicate by replicate
    they agree to 1e-5 (logistic-4: two least-squares solvers stopping at their tolerances). The
    logistic-5 fit is non-convex with a long flat valley: per-resample scipy (cold start, relative
    ftol 1e-7) and the batched fit (warm start from all items) may stop at different points of it,
    so single replicates differ by up to ~0.01 in PLCC, but the percentile interval - what the user
    sees - must agree to 0.002, a fifth of its Monte-Carlo error at 200 resamples (~0.01).
    """
    pred, mos = _sigmoid_data(60, 1)
    data = ScoreData(np.arange(60), pred, mos)
    protocol = create_protocol("generic")
    reps = protocol.bootstrap_replicates(data, 200, 0, workers=2)
    counts = np.concatenate(list(iter_resample_counts(60, 200, 0, n_chunks=2)))
    loop = {k: [] for k in ("krcc", "plcc_logistic4", "plcc_logistic5", "plcc_poly3_monotonic")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        for w in counts:
            i = expand(w)
            loop["krcc"].append(scipy.stats.kendalltau(pred[i], mos[i]).statistic)
            for m in ("logistic4", "logistic5", "poly3_monotonic"):
                loop[f"plcc_{m}"].append(stats.plcc(pred[i], mos[i], mapping=m))
    for key, values in loop.items():
        values = np.asarray(values)
        if key != "plcc_logistic5":
            np.testing.assert_allclose(reps[key], values, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(
            np.quantile(reps[key], [0.025, 0.975]),
            np.quantile(values, [0.025, 0.975]),
            atol=2e-3,
            err_msg=key,
        )


def test_weighted_kendall_equals_scipy_on_expanded_resamples_with_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 40).astype(float)
    y = x + rng.integers(0, 3, 40)
    counts = np.concatenate(list(iter_resample_counts(40, 30, 5)))
    expected = [scipy.stats.kendalltau(x[expand(w)], y[expand(w)]).statistic for w in counts]
    np.testing.assert_allclose(bs.weighted_kendall(x, y, counts), expected, atol=1e-12)


def test_common_items_aligns_two_models_on_the_items_both_scored():
    from perceptiq.evaluation.compare import common_items

    a = ScoreData(
        np.array(["u", "v", "w", "x"]), [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0], [0.1, 0.2, 0.3, 0.4]
    )
    b = ScoreData(np.array(["x", "v", "u"]), [40.0, 20.0, 10.0], [4.0, 3.0, 1.0], [0.4, 0.2, 0.1])
    with pytest.raises(
        InputError, match=r"1 item\(s\) are scored by only one of a.csv and b.csv, e.g. \['w'\]"
    ):
        common_items(a, b, names=("a.csv", "b.csv"))
    a2, b2 = common_items(a, b, allow_missing=True)
    assert a2.ids.tolist() == b2.ids.tolist() == ["u", "v", "x"]  # a's order
    np.testing.assert_array_equal(b2.pred, [10.0, 20.0, 40.0])
    np.testing.assert_array_equal(a2.mos_std, [0.1, 0.2, 0.4])
    assert common_items(a, a) == (a, a)


def test_interval_and_difference_as_dict_give_the_json_fields_in_order():
    ci = bs.ConfidenceInterval(0.5, 0.25, 0.75, 0.95, 200, 0.125)
    diff = bs.PairedDifference("srcc", 0.9, 0.8, ci, 0.03, "paired bootstrap")
    expected_ci = {
        "estimate": 0.5,
        "low": 0.25,
        "high": 0.75,
        "confidence": 0.95,
        "n_resamples": 200,
        "std_error": 0.125,
    }
    assert list(ci.as_dict().items()) == list(expected_ci.items())
    expected = {"statistic": "srcc", "a": 0.9, "b": 0.8, "difference": expected_ci, "p_value": 0.03}
    assert list(diff.as_dict().items()) == list({**expected, "method": "paired bootstrap"}.items())
