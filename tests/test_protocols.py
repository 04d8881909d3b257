"""Challenge protocols against PROTOCOLS.md, the worked cases and hand computation."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.stats

from conftest import load_case_file, shared_data
from perceptiq.errors import FitWarning, InputError, RegistryError, UndefinedStatisticError
from perceptiq.evaluation.protocols import (
    AlignmentData,
    PairData,
    ScoreData,
    StructureData,
    create_protocol,
    list_protocols,
)


def _score_data(case: dict) -> ScoreData:
    x = case["inputs"]["pred"]
    return ScoreData(np.arange(len(x)), x, case["inputs"]["mos"])


def test_registry_lists_every_challenge():
    assert set(list_protocols()) == {
        "generic",
        "isrg-q-2025",
        "ntire25-t2i-alignment",
        "ntire25-t2i-structure",
        "realsr-2afc",
        "vquala25-fiqa",
    }
    with pytest.raises(RegistryError, match="did you mean isrg-q-2025"):
        create_protocol("isrg-q-2024")
    with pytest.raises(InputError, match="has no option"):
        create_protocol("isrg-q-2025", tie="half")
    with pytest.raises(InputError, match="unknown PLCC mapping"):
        create_protocol("isrg-q-2025", plcc_mapping="cubic")


@pytest.mark.parametrize(
    ("file", "name"), [("isrg_score.json", "isrg-q-2025"), ("fiqa_score.json", "vquala25-fiqa")]
)
def test_correlation_challenges_match_worked_cases(file, name):
    cases = load_case_file(file)
    for case in cases["cases"]:
        exp = case["expected"]
        raw = create_protocol(name).evaluate(_score_data(case))
        assert raw.score == pytest.approx(exp["score_raw"], abs=1e-9)
        logistic = create_protocol(name, plcc_mapping="logistic4").evaluate(_score_data(case))
        assert logistic.score == pytest.approx(exp["score_logistic4"], abs=1e-4)
        if case["name"] == "anti_correlated":
            assert any("decreases" in w for w in logistic.warnings)


def test_isrg_weights_are_0_6_and_0_4():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(size=40)
    result = create_protocol("isrg-q-2025").evaluate(ScoreData(np.arange(40), x, y))
    expected = 0.6 * scipy.stats.spearmanr(x, y).statistic + 0.4 * scipy.stats.pearsonr(x, y).statistic
    assert result.score == pytest.approx(expected, abs=1e-12)


def _alignment(case: dict) -> AlignmentData:
    images = case["inputs"]["images"]
    return AlignmentData(
        ids=np.array([im["img"] for im in images]),
        pred=[im["total_pred"] for im in images],
        mos=[im["total_gt"] for im in images],
        element_pred=tuple(np.array(im["element_pred"], dtype=float) for im in images),
        element_gt=tuple(np.array(im["element_gt"], dtype=float) for im in images),
    )


def test_alignment_track_official_logistic_and_report_polynomial():
    for case in load_case_file("ntire25_t2i_alignment.json")["cases"]:
        exp = case["expected"]
        official = create_protocol("ntire25-t2i-alignment").evaluate(_alignment(case))
        assert official.score == pytest.approx(exp["main_logistic4"], abs=1e-4)
        assert official.statistics["acc"] == exp["acc"]
        assert official.statistics["main_alt"] == pytest.approx(exp["main_poly3"], abs=1e-6)
        poly = create_protocol("ntire25-t2i-alignment", plcc_mapping="poly3").evaluate(_alignment(case))
        assert poly.score == pytest.approx(exp["main_poly3"], abs=1e-6)


def test_structure_track_main_score_by_hand():
    gt = [np.array([[1, 1], [0, 0]]), np.array([[0, 0], [0, 0]]), np.array([[1, 1], [1, 1]])]
    pred = [np.array([[1, 0], [1, 0]]), np.array([[0, 0], [0, 0]]), np.array([[1, 1], [1, 0]])]
    scores, mos = [2.0, 4.5, 1.0], [2.5, 4.0, 1.5]
    data = StructureData(np.arange(3), scores, mos, pred_masks=tuple(pred), gt_masks=tuple(gt))
    result = create_protocol("ntire25-t2i-structure").evaluate(data)
    p, r = 4 / 5, 4 / 6  # pooled counts: TP 4, FP 1, FN 2
    f1 = 2 * p * r / (p + r)
    expected = 0.7 * f1 + 0.15 * (
        scipy.stats.spearmanr(scores, mos).statistic + np.corrcoef(scores, mos)[0, 1]
    )
    assert result.score == pytest.approx(expected, abs=1e-12)
    assert result.statistics["precision"] == pytest.approx(p)
    mean_pr = create_protocol("ntire25-t2i-structure", f1_average="mean_pr").evaluate(data)
    assert mean_pr.statistics["f1"] == pytest.approx(2 * 0.75 * 0.625 / 1.375)


def test_realsr_2afc_on_the_papers_votes_with_a_rank_table_model():
    votes = pd.read_csv(shared_data("realsr_votes", "sr_subjective_results.csv"))
    # the older SR-IQA script's fixed rank table per method (PROTOCOLS.md section 4.3) as a "model"
    rank = {"SeeSR": 10, "ResShift": 9, "SinSR": 8, "DiffBIR": 7, "StableSR": 6, "USRGAN": 5, "DASR": 5,
            "Real-ESRGAN": 4, "LDL": 3, "BSRGAN": 2, "FeMaSR": 2, "RGT": 1}  # fmt: skip

    def method(name: str) -> str:
        return name.rsplit(".", 1)[0].rsplit("_", 1)[1]

    s1 = votes["name1_column"].map(lambda n: rank[method(n)]).to_numpy(float)
    s2 = votes["name2_column"].map(lambda n: rank[method(n)]).to_numpy(float)
    p = votes["score1_column"].to_numpy(float)
    data = PairData(votes["sr_pair_names"].to_numpy(), p, s1, s2)
    reference = np.where(s1 > s2, p, 1 - p).mean()  # liqe_test_csv: score1 if s1 > s2 else score2
    assert create_protocol("realsr-2afc", tie="second").evaluate(data).score == pytest.approx(
        reference, abs=1e-12
    )
    half = np.where(s1 > s2, p, np.where(s1 < s2, 1 - p, 0.5)).mean()
    result = create_protocol("realsr-2afc").evaluate(data, bootstrap=200, seed=1)
    assert result.score == pytest.approx(half, abs=1e-12)
    assert result.statistics["human_ceiling"] == pytest.approx(np.maximum(p, 1 - p).mean())
    assert result.intervals["two_afc"].low < result.score < result.intervals["two_afc"].high


def test_generic_reports_every_statistic_and_outliers_only_with_std():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 100)
    y = 1 + 4 * x + rng.normal(0, 0.3, 100)
    plain = create_protocol("generic").evaluate(ScoreData(np.arange(100), x, y))
    assert plain.score is None
    for key in ("srcc", "krcc", "plcc", "rmse", "plcc_logistic4", "plcc_logistic5", "plcc_poly3_monotonic"):
        assert np.isfinite(plain.statistics[key])
    assert plain.statistics["krcc"] == pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=1e-12)
    assert "outlier_ratio" not in plain.statistics
    with_std = create_protocol("generic").evaluate(ScoreData(np.arange(100), x, y, np.full(100, 0.3)))
    assert 0 <= with_std.statistics["outlier_ratio"] <= 0.2


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate():
    rng = np.random.default_rng(4)
    x = rng.normal(size=120)
    data = ScoreData(np.arange(120), x, x + rng.normal(size=120))
    proto = create_protocol("isrg-q-2025", plcc_mapping="logistic4")
    a = proto.evaluate(data, bootstrap=40, seed=3)
    b = proto.evaluate(data, bootstrap=40, seed=3)
    c = proto.evaluate(data, bootstrap=40, seed=4)
    assert a.intervals["main"] == b.intervals["main"]
    assert a.intervals["main"] != c.intervals["main"]
    for name in ("main", "srcc", "plcc"):
        assert a.intervals[name].low <= a.statistics[name] <= a.intervals[name].high


def test_constant_predictions_are_reported_not_silent():
    data = ScoreData(np.arange(5), [2.0] * 5, [1, 2, 3, 4, 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        result = create_protocol("isrg-q-2025").evaluate(data)
    assert np.isnan(result.score)
    assert any("srcc is undefined" in w for w in result.warnings)
    assert result.as_dict()["score"] is None


def test_bootstrap_on_fewer_than_ten_items_is_a_perceptiq_warning():
    from perceptiq.errors import PerceptiqWarning
    from perceptiq.evaluation.protocols import MIN_BOOTSTRAP_ITEMS

    protocol = create_protocol("isrg-q-2025")
    tiny = ScoreData(np.arange(2), [1.0, 2.0], [3.0, 4.0])
    with pytest.warns(PerceptiqWarning, match="only 2 items"):
        result = protocol.evaluate(tiny, bootstrap=50)
    assert result.intervals["srcc"].low == result.intervals["srcc"].high == 1.0  # the degenerate [1, 1]
    assert any("only 2 items" in w for w in result.warnings)
    rng = np.random.default_rng(0)
    enough = ScoreData(np.arange(MIN_BOOTSTRAP_ITEMS), rng.normal(size=10), rng.normal(size=10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerceptiqWarning)
        protocol.evaluate(enough, bootstrap=50)


def _logistic4_plcc_by_scipy(x: np.ndarray, y: np.ndarray) -> float:
    """PLCC after the CodaLab logistic-4 fitted by scipy directly (independent of perceptiq.fitting)."""

    def f(v, b1, b2, b3, b4):
        return b2 + (b1 - b2) / (1 + np.exp(-(v - b3) / np.abs(b4)))

    params, _ = scipy.optimize.curve_fit(f, x, y, p0=[y.max(), y.min(), x.mean(), 0.5], maxfev=100_000_000)
    return scipy.stats.pearsonr(f(x, *params), y).statistic


@pytest.mark.parametrize("name", ["isrg-q-2025", "vquala25-fiqa", "ntire25-t2i-structure"])
def test_a_point_estimate_fits_its_plcc_mapping_once(monkeypatch, name):
    from perceptiq.evaluation import fitting

    calls = []
    real_fit = fitting.fit_mapping

    def counting_fit(pred, mos, kind):
        calls.append(kind)
        return real_fit(pred, mos, kind)

    monkeypatch.setattr(fitting, "fit_mapping", counting_fit)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 60)
    y = 1 + 4 / (1 + np.exp(-(x - 0.5) * 8)) + rng.normal(0, 0.2, 60)
    if name == "ntire25-t2i-structure":
        masks = tuple(np.array([[1, 0], [0, 1]], dtype=np.uint8) for _ in range(60))
        data = StructureData(np.arange(60), x, y, pred_masks=masks, gt_masks=masks)
    else:
        data = ScoreData(np.arange(60), x, y)
    result = create_protocol(name, plcc_mapping="logistic4").evaluate(data, bootstrap=20)
    assert calls == ["logistic4"]  # the bootstrap's fits start from the point estimate's
    assert result.statistics["plcc"] == pytest.approx(_logistic4_plcc_by_scipy(x, y), abs=1e-6)


@pytest.mark.parametrize(
    ("name", "pred", "mos", "side", "message"),
    [
        ("generic", [1.0], [2.0], "predictions", "1 item.s. matched: at least 2 are needed"),
        ("generic", [3.0, 3.0, 3.0], [1.0, 2.0, 3.0], "predictions", "all 3 predictions equal 3"),
        ("vquala25-fiqa", [1.0, 2.0, 3.0], [2.5, 2.5, 2.5], "ground truth", "all 3 ground-truth values"),
        ("isrg-q-2025", [1.0, 2.0, 3.0], [1.0, 3.0, 2.0], None, ""),
    ],
)
def test_check_refuses_data_with_undefined_statistics_and_names_the_side(name, pred, mos, side, message):
    data = ScoreData(np.arange(len(pred)), pred, mos)
    if side is None:
        create_protocol(name).check(data)
        return
    with pytest.raises(UndefinedStatisticError, match=message) as err:
        create_protocol(name).check(data)
    assert err.value.side == side


def test_check_asks_for_as_many_items_as_the_plcc_mapping_has_parameters():
    data = ScoreData(np.arange(4), [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
    create_protocol("isrg-q-2025", plcc_mapping="logistic4").check(data)  # 4 parameters, 4 items
    with pytest.raises(UndefinedStatisticError, match="the logistic5 fit of PLCC needs at least 5"):
        create_protocol("isrg-q-2025", plcc_mapping="logistic5").check(data)
    pairs = PairData(np.array(["a|b", "b|c"]), np.array([0.5, 0.5]), np.ones(2), np.ones(2))
    create_protocol("realsr-2afc").check(pairs)  # constant scores and votes are valid 2AFC data
    with pytest.raises(UndefinedStatisticError, match="at least 2"):
        create_protocol("realsr-2afc").check(PairData(pairs.pair_ids[:1], [0.5], [1.0], [2.0]))
