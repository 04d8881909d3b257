"""Statistics against scipy.stats, brute-force definitions and the worked protocol cases."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from conftest import load_case_file
from perceptiq.errors import FitWarning, InputError, UndefinedStatisticError
from perceptiq.evaluation import fitting, stats


def _tied_sample(seed: int, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n), 1)  # many ties
    y = np.round(x + rng.normal(size=n), 0)
    return x, y


def _tau_b_brute_force(x: np.ndarray, y: np.ndarray) -> float:
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif dx == dy:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / np.sqrt((conc + disc + tx) * (conc + disc + ty))


@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_scipy_and_definitions(seed):
    x, y = _tied_sample(seed)
    assert stats.srcc(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
    assert stats.plcc(x, y) == pytest.approx(scipy.stats.pearsonr(x, y).statistic, abs=1e-12)
    assert stats.krcc(x, y) == pytest.approx(_tau_b_brute_force(x, y), abs=1e-12)


def test_hand_computed_small_cases():
    # ranks of y = [1, 3, 2, 4]: d = [0, 1, -1, 0], rho = 1 - 6*2/(4*15) = 0.8
    assert stats.srcc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # 5 concordant, 1 discordant of 6 pairs
    assert stats.krcc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert stats.srcc([1, 2], [5, 3]) == -1.0


def test_degenerate_input_gives_nan_or_raises_when_strict():
    for fn in (stats.srcc, stats.krcc, stats.plcc):
        assert np.isnan(fn([1, 1, 1], [1, 2, 3]))
        assert np.isnan(fn([1, 2, 3], [2, 2, 2]))
        assert np.isnan(fn([1], [2]))
        with pytest.raises(UndefinedStatisticError, match="constant"):
            fn([3, 3, 3], [1, 2, 3], strict=True)


def test_bad_values_raise():
    with pytest.raises(InputError, match="non-finite"):
        stats.srcc([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(InputError, match="non-finite"):
        stats.plcc([1, 2, 3], [1, np.inf, 3])
    with pytest.raises(InputError, match="differ in length"):
        stats.srcc([1, 2, 3], [1, 2])


@pytest.mark.parametrize("case_file", ["isrg_score.json", "fiqa_score.json"])
def test_worked_correlation_cases(case_file):
    cases = load_case_file(case_file)
    tol = cases["tolerance"]
    for case in cases["cases"]:
        x, y, exp = case["inputs"]["pred"], case["inputs"]["mos"], case["expected"]
        assert stats.srcc(x, y) == pytest.approx(exp["srcc"], abs=tol["srcc"])
        assert stats.plcc(x, y) == pytest.approx(exp["plcc_raw"], abs=tol["plcc_raw"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            assert stats.plcc(x, y, mapping="logistic4") == pytest.approx(
                exp["plcc_logistic4"], abs=tol["plcc_logistic4"]
            )
        if "plcc_poly3" in exp:
            assert stats.plcc(x, y, mapping="poly3") == pytest.approx(
                exp["plcc_poly3"], abs=tol["plcc_poly3"]
            )
        if "logistic4_params" in exp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                fitted = fitting.fit_mapping(np.array(x), np.array(y), "logistic4")
            np.testing.assert_allclose(fitted.params, exp["logistic4_params"], rtol=1e-4, atol=1e-4)


def test_anti_correlated_logistic_is_sign_blind_and_warns():
    case = next(c for c in load_case_file("isrg_score.json")["cases"] if c["name"] == "anti_correlated")
    x, y = case["inputs"]["pred"], case["inputs"]["mos"]
    with pytest.warns(FitWarning, match="decreases"):
        value = stats.plcc(x, y, mapping="logistic4")
    assert value == pytest.approx(0.9986638003230087, abs=1e-4)
    assert stats.srcc(x, y) == -1.0


def test_logistic4_std_and_deqa_variants_follow_their_start_points():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 80)
    y = 1 + 4 / (1 + np.exp(-(x - 0.5) / 0.1)) + rng.normal(0, 0.2, 80)
    for kind, f in (("logistic4_std", fitting.logistic4), ("logistic4_deqa", fitting.logistic4_deqa)):
        p4 = np.std(x) if kind == "logistic4_std" else np.std(x) / 4
        reference, _ = scipy.optimize.curve_fit(f, x, y, p0=[y.max(), y.min(), x.mean(), p4], maxfev=100000)
        fitted = fitting.fit_mapping(x, y, kind)
        np.testing.assert_allclose(fitted(x), f(x, *reference), atol=1e-6)


def test_logistic5_recovers_a_vqeg_curve():
    x = np.linspace(0, 10, 200)
    truth = (3.0, 1.2, 5.0, 0.05, 2.0)
    y = fitting.logistic5(x, *truth)
    fitted = fitting.fit_mapping(x, y, "logistic5")
    np.testing.assert_allclose(fitted(x), y, atol=1e-6)
    assert fitted.increasing


def test_monotonic_polynomial_is_monotone_and_no_worse_than_needed():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-2, 2, 120))
    y = x**3 - 2.5 * x + rng.normal(0, 0.3, 120)  # non-monotone truth
    free = fitting.fit_mapping(x, y, "poly3")
    mono = fitting.fit_mapping(x, y, "poly3_monotonic")
    grid = np.linspace(x.min(), x.max(), 400)
    slope = np.diff(mono(grid))
    tol = 1e-6 * np.ptp(y)  # the constraint holds on a 256-point grid; between grid points up to round-off
    assert (slope >= -tol).all() or (slope <= tol).all()
    assert np.sum((mono(x) - y) ** 2) >= np.sum((free(x) - y) ** 2) - 1e-9
    # when the free fit is already monotone, the constrained fit equals np.polyfit
    y2 = 0.5 * x**3 + x + 3
    np.testing.assert_allclose(
        fitting.fit_mapping(x, y2, "poly3_monotonic")(x), np.polyval(np.polyfit(x, y2, 3), x)
    )


def test_fit_failure_falls_back_to_linear_and_says_so(monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(scipy.optimize, "curve_fit", failing)
    x, y = _tied_sample(1)
    with pytest.warns(FitWarning, match="fell back to the linear mapping"):
        value = stats.plcc(x, y, mapping="logistic4")
    assert value == pytest.approx(abs(scipy.stats.pearsonr(x, y).statistic), abs=1e-12)
    with pytest.raises(Exception, match="did not converge"):
        stats.plcc(x, y, mapping="logistic4", strict=True)


def test_too_few_items_for_a_fit():
    assert np.isnan(stats.plcc([1, 2, 3], [1, 3, 2], mapping="logistic4"))
    with pytest.raises(UndefinedStatisticError, match="at least 4"):
        stats.plcc([1, 2, 3], [1, 3, 2], mapping="logistic4", strict=True)
    with pytest.raises(InputError, match="unknown mapping"):
        fitting.fit_mapping(np.arange(5.0), np.arange(5.0), "cubic")


def test_rmse_and_outlier_ratio_by_hand():
    pred, mos = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.0, 4.0])
    assert stats.rmse(pred, mos) == pytest.approx(np.sqrt((0.25 + 0 + 1 + 0) / 4))
    # |error| = [0.5, 0, 1, 0] against 2 * std = [0.8, 0.8, 0.8, 0.8] -> one outlier
    assert stats.outlier_ratio(pred, mos, [0.4] * 4, mapping="none") == 0.25
    case = load_case_file("isrg_score.json")["cases"][0]
    x, y = np.array(case["inputs"]["pred"]), np.array(case["inputs"]["mos"])
    yhat = fitting.logistic4(x, *case["expected"]["logistic4_params"])
    assert stats.rmse(x, y, mapping="logistic4") == pytest.approx(np.sqrt(np.mean((yhat - y) ** 2)), abs=1e-6)


def test_two_afc_score_matches_the_reference_rule():
    p = np.array([0.9, 0.2, 0.6, 0.5])
    s1 = np.array([3.0, 1.0, 2.0, 2.0])
    s2 = np.array([1.0, 2.0, 2.0, 1.0])
    # reference code: score1 if s1 > s2 else score2 (a tie picks the second image)
    reference = np.mean([0.9, 0.8, 0.4, 0.5])
    assert stats.two_afc_score(p, s1, s2, tie="second") == pytest.approx(reference)
    # ties count 0.5: pair 3 scores 0.5 instead of 0.4
    assert stats.two_afc_score(p, s1, s2) == pytest.approx(np.mean([0.9, 0.8, 0.5, 0.5]))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        stats.two_afc_scores([1.2], [1.0])


def test_element_accuracy_worked_cases():
    for case in load_case_file("ntire25_t2i_alignment.json")["cases"]:
        images = case["inputs"]["images"]
        pred = np.concatenate([im["element_pred"] for im in images])
        gt = np.concatenate([im["element_gt"] for im in images])
        np.testing.assert_array_equal(stats.binarize(gt), case["expected"]["ele_gt_binary"])
        np.testing.assert_array_equal(stats.binarize(pred), case["expected"]["ele_pred_binary"])
        assert stats.element_accuracy(pred, gt) == case["expected"]["acc"]


def test_heatmap_threshold_reproduces_the_baseline_masks():
    cases = load_case_file("ntire25_t2i_structure.json")
    for image in cases["images"]:
        np.testing.assert_array_equal(
            stats.heatmap_to_mask(image["pred_heatmap_0_1"]), image["expected_pred_mask"]
        )
    np.testing.assert_array_equal(stats.heatmap_to_mask([40.4 / 255, 40.6 / 255]), [0, 1])


def test_mask_f1_variants_by_hand():
    gt = [np.array([[1, 1], [0, 0]]), np.array([[0, 0], [0, 0]]), np.array([[1, 1], [1, 1]])]
    pred = [np.array([[1, 0], [1, 0]]), np.array([[0, 0], [0, 0]]), np.array([[1, 1], [1, 0]])]
    # counts: image0 tp1 fp1 fn1; image1 nothing; image2 tp3 fp0 fn1 -> pooled P = 4/5, R = 4/6
    pooled = stats.mask_f1(pred, gt)
    assert pooled.precision == pytest.approx(0.8)
    assert pooled.recall == pytest.approx(4 / 6)
    assert pooled.f1 == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    mean_pr = stats.mask_f1(pred, gt, average="mean_pr")  # P = (0.5 + 1)/2, R = (0.5 + 0.75)/2
    assert mean_pr.f1 == pytest.approx(2 * 0.75 * 0.625 / (0.75 + 0.625))
    per_image = stats.mask_f1(pred, gt, average="per_image")  # F1 0.5 and 6/7, image1 skipped
    assert per_image.f1 == pytest.approx((0.5 + 6 / 7) / 2)
    with pytest.raises(InputError, match="shape"):
        stats.mask_f1([np.zeros((2, 2))], [np.zeros((3, 3))])


def test_f1_identity_of_the_structure_baseline_readme():
    # EvalMuse-Structure README: P 0.5086, R 0.6728 -> F1 0.5793; final 0.6098 with PLCC 0.6945, SROCC 0.6677
    p, r = 0.5086, 0.6728
    tp = np.array([p * r * 1e6])
    f1 = stats.f1_from_counts(tp, tp / p - tp, tp / r - tp)
    assert f1.f1 == pytest.approx(0.5793, abs=5e-5)
    assert 0.7 * f1.f1 + 0.15 * (0.6945 + 0.6677) == pytest.approx(0.6098, abs=5e-5)
