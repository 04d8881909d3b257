"""Study results against hand-computed values: count matrix, flags for gold and repeat failures (kept in
exports, excluded only on request), the ranking of ``perceptiq rank`` on the same votes, the 2AFC benchmark
file read by ``perceptiq evaluate``, the Alembic schema, and active pair selection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from PIL import Image as PILImage
from scipy.stats import norm
from sqlalchemy import create_engine, inspect, select
from typer.testing import CliRunner

from perceptiq.cli import app, main
from perceptiq.ranking.active import difference_variances
from perceptiq.study.creation import create_study
from perceptiq.study.db import open_database
from perceptiq.study.models import Base, Image
from perceptiq.study.results import export_votes, study_results
from perceptiq.study.service import StudySettings
from perceptiq.study.sessions import VoteIn, next_trial, record_votes, start_session
from study_helpers import make_images

RANK = {"A": 0, "B": 1, "C": 2}  # the consistent observers prefer A > B > C


def _answer(db, name, token, prefer):
    """Answer every trial of a session: ``prefer(left_name, right_name)`` returns 'left' or 'right'."""
    with db.sessionmaker() as s:
        names = dict(s.execute(select(Image.id, Image.name)).all())
    while (view := next_trial(db, name, token)) is not None:
        choice = prefer(names[view.left_id], names[view.right_id])
        record_votes(db, name, [VoteIn(token, view.trial_id, choice)])


def _method(image):
    return "gold" if image.startswith("gold") or image.endswith("_blurred.png") else image.split("_")[1][0]


def _consistent(left, right):
    if _method(left) == "gold" or _method(right) == "gold":  # the undistorted image wins a gold pair
        return "right" if _method(left) == "gold" else "left"
    return "left" if RANK[_method(left)] < RANK[_method(right)] else "right"


def _reverse(left, right):
    return "right" if _consistent(left, right) == "left" else "left"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    make_images(root, inputs=1)
    (root / "img" / "gold_x0_A.png").write_bytes((root / "img" / "x0_A.png").read_bytes())
    pairs = root / "pairs.csv"
    pairs.write_text(
        "image_a,image_b,method_a,method_b,gold\n"
        "x0_A.png,x0_B.png,A,B,\nx0_A.png,x0_C.png,A,C,\nx0_B.png,x0_C.png,B,C,\n"
        "x0_A.png,gold_x0_A.png,ref,blurred,a\n"
    )
    db = open_database(root / "s.db")
    create_study(db, "r", pairs, root / "img", StudySettings(repeats=1))
    for k in range(3):
        _answer(db, "r", start_session(db, "r", observer=f"good{k}")[0], _consistent)
    _answer(db, "r", start_session(db, "r", observer="reverse")[0], _reverse)
    yield root, db
    db.close()


def test_counts_flags_and_exclusion(study):
    root, db = study
    result = study_results(db, "r")
    assert result.items == ("A", "B", "C")
    np.testing.assert_array_equal(result.counts, [[0, 3, 3], [1, 0, 3], [1, 1, 0]])  # repeats counted once
    checks = result.checks.set_index("observer")
    assert checks.loc["reverse", "flagged"]
    assert checks.loc["reverse", "reason"] == "failed 1 of 1 gold pairs"
    assert not checks.loc[["good0", "good1", "good2"], "flagged"].any()
    assert (checks["repeat_agreement"] == 1.0).all()
    summary = result.to_dict()
    assert summary["gold_failure_rate"] == pytest.approx(1 / 4)
    assert summary["n_votes"] == 4 * (3 + 1 + 1)  # 3 pairs, 1 gold, 1 repeat each
    kept = result.votes[result.votes["observer"] == "reverse"]
    assert len(kept) == 5
    assert kept["flagged"].all()
    excluded = study_results(db, "r", exclude_flagged=True)
    np.testing.assert_array_equal(excluded.counts, [[0, 3, 3], [0, 0, 3], [0, 0, 0]])
    assert excluded.ranking.ridge == 0.01  # A > B > C without a loss: no MLE, the prior is used and said
    assert excluded.ranking.ridge_needed
    assert [excluded.items[i] for i in excluded.ranking.ranking] == ["A", "B", "C"]


def test_ranking_equals_perceptiq_rank_on_the_same_votes(study, tmp_path):
    _, db = study
    result = study_results(db, "r")
    records = tmp_path / "votes.csv"
    rows = ["first,second,winner"]
    for (a, b), n_a, n_b in ((("A", "B"), 3, 1), (("A", "C"), 3, 1), (("B", "C"), 3, 1)):
        rows += [f"{a},{b},{a}"] * n_a + [f"{a},{b},{b}"] * n_b
    records.write_text("\n".join(rows) + "\n")
    out = CliRunner().invoke(app, ["rank", str(records), "--json"])
    assert out.exit_code == 0, out.output
    reference = json.loads(out.stdout)["ranking"]
    mine = result.to_dict()["ranking"]["ranking"]
    assert [r["item"] for r in mine] == [r["item"] for r in reference]
    for a, b in zip(mine, reference, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-10)
        assert a["ci_low"] == pytest.approx(b["ci_low"], abs=1e-10)


def test_exports_and_benchmark_file_for_evaluate(study, tmp_path):
    _, db = study
    assert export_votes(db, "r", tmp_path / "v.csv") == 20
    assert export_votes(db, "r", tmp_path / "v.parquet") == 20
    csv, parquet = pd.read_csv(tmp_path / "v.csv"), pd.read_parquet(tmp_path / "v.parquet")
    assert list(csv["trial"]) == list(parquet["trial"])
    for column in (
        "observer",
        "session",
        "pair",
        "left",
        "right",
        "choice",
        "time",
        "gold",
        "repeat",
        "flagged",
    ):
        assert column in csv.columns
    assert set(csv.loc[csv["flagged"], "observer"]) == {"reverse"}
    assert (
        main(["study", "results", "r", "--db", str(study[0] / "s.db"), "--report", str(tmp_path / "rep")])
        == 0
    )
    bench = pd.read_csv(tmp_path / "rep" / "benchmark_2afc.csv")
    assert sorted(bench["score1_column"]) == [0.75, 0.75, 0.75]  # image a (the better method) won 3 of 4
    for name in ("results.json", "counts.csv", "ranking.csv", "observers.csv", "votes.csv", "ranking.png"):
        assert (tmp_path / "rep" / name).is_file()
    pred = tmp_path / "pred.csv"
    pred.write_text("image,score\nx0_A.png,3\nx0_B.png,2\nx0_C.png,1\n")
    run = CliRunner().invoke(
        app,
        ["evaluate", str(pred), str(tmp_path / "rep" / "benchmark_2afc.csv"), "-p", "realsr-2afc", "--json"],
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["statistics"]["two_afc"] == pytest.approx(0.75)  # p q + (1-p)(1-q), q = 1
    # with --absolute-paths the ids are the resolved paths that `perceptiq score` writes
    rep = tmp_path / "abs"
    assert (
        main(
            [
                "study",
                "results",
                "r",
                "--db",
                str(study[0] / "s.db"),
                "--report",
                str(rep),
                "--absolute-paths",
            ]
        )
        == 0
    )
    img = (study[0] / "img").resolve()
    pred.write_text(f"image,score\n{img / 'x0_A.png'},1\n{img / 'x0_B.png'},2\n{img / 'x0_C.png'},3\n")
    run = CliRunner().invoke(
        app, ["evaluate", str(pred), str(rep / "benchmark_2afc.csv"), "-p", "realsr-2afc", "--json"]
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["statistics"]["two_afc"] == pytest.approx(0.25)  # reversed scores: q = 0


def test_repeat_disagreement_is_flagged(tmp_path):
    pairs = make_images(tmp_path, inputs=1)
    db = open_database(tmp_path / "s.db")
    create_study(db, "rep", pairs, tmp_path / "img", StudySettings(repeats=1))
    _answer(db, "rep", start_session(db, "rep", observer="lefty")[0], lambda left, right: "left")
    checks = study_results(db, "rep").checks.set_index("observer")
    assert checks.loc["lefty", "repeat_agreement"] == 0.0  # the repeat swaps the sides
    assert checks.loc["lefty", "reason"] == "agreed with itself on 0 of 1 repeated pairs"
    db.close()


def test_migrations_create_exactly_the_models(tmp_path):
    db = open_database(tmp_path / "m.db")
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    tables = set(inspect(create_engine(f"sqlite:///{tmp_path / 'm.db'}")).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.close()
    open_database(tmp_path / "m.db").close()  # re-opening an up-to-date database is a no-op


def test_cli_errors_are_one_line(tmp_path, capsys):
    pairs = make_images(tmp_path, inputs=1)
    db = str(tmp_path / "s.db")
    assert (
        main(
            [
                "study",
                "create",
                "bad name",
                "--pairs",
                str(pairs),
                "--images",
                str(tmp_path / "img"),
                "--db",
                db,
            ]
        )
        == 1
    )
    assert (
        main(["study", "create", "ok", "--pairs", str(pairs), "--images", str(tmp_path / "nope"), "--db", db])
        == 1
    )
    assert main(["study", "results", "missing", "--db", db]) == 1
    assert main(["study", "export", "ok", "--out", str(tmp_path / "v.txt"), "--db", db]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 4
    assert "nope: image folder not found" in err
    assert "no study named 'missing'" in err


def _numeric_difference_variance(counts, i, j, ridge):
    """Independent reference: invert a finite-difference Hessian of the penalised Thurstone log-likelihood
    in the n - 1 free scores (the last one is minus the sum of the others)."""
    counts = np.asarray(counts, float)
    n = len(counts)

    def objective(free):
        mu = np.append(free, -free.sum())
        d = mu[:, None] - mu[None, :]
        return (counts * norm.logcdf(d)).sum() - ridge * (mu**2).sum()

    from scipy.optimize import minimize

    free = minimize(lambda f: -objective(f), np.zeros(n - 1), method="BFGS", options={"gtol": 1e-10}).x
    h = 1e-4
    hess = np.zeros((n - 1, n - 1))
    for a in range(n - 1):
        for b in range(n - 1):
            ea, eb = np.eye(n - 1)[a] * h, np.eye(n - 1)[b] * h
            hess[a, b] = (
                objective(free + ea + eb) - objective(free + ea - eb) - objective(free - ea + eb)
                + objective(free - ea - eb)
            ) / (4 * h * h)  # fmt: skip
    cov_free = np.linalg.inv(-hess)
    basis = np.vstack([np.eye(n - 1), -np.ones(n - 1)])  # mu = basis @ free
    cov = basis @ cov_free @ basis.T
    return cov[i, i] + cov[j, j] - 2 * cov[i, j]


def test_active_variances_match_a_numerical_hessian():
    assert difference_variances(np.zeros((3, 3)), [[0, 1], [1, 2]], ridge=0.5) == pytest.approx([2.0, 2.0])
    counts = [[0, 30, 2], [20, 0, 0], [1, 0, 0]]
    pairs = [[0, 1], [0, 2], [1, 2]]
    got = difference_variances(counts, pairs, ridge=0.5)
    want = [_numeric_difference_variance(counts, i, j, 0.5) for i, j in pairs]
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert int(np.argmax(got)) == 2  # B and C were never compared


def test_active_study_serves_the_most_uncertain_pair(tmp_path):
    pairs = make_images(tmp_path, inputs=2)
    db = open_database(tmp_path / "s.db")
    create_study(db, "act", pairs, tmp_path / "img", StudySettings(active=True))
    with db.sessionmaker() as s:
        names = dict(s.execute(select(Image.id, Image.name)).all())
    token = start_session(db, "act", seed=3)[0]
    view = next_trial(db, "act", token)  # no votes: every difference is equally uncertain
    record_votes(db, "act", [VoteIn(token, view.trial_id, "left")])
    first = {_method(names[view.left_id]), _method(names[view.right_id])}
    db.variance_cache.clear()  # forget the cached variances computed before the vote
    second = next_trial(db, "act", token)
    shown = {_method(names[second.left_id]), _method(names[second.right_id])}
    assert shown != first  # the other input's copy of the pair just voted on is the least uncertain
    db.close()


def test_generated_gold_pairs(tmp_path):
    pairs = make_images(tmp_path, inputs=2, size=(40, 30))
    db = str(tmp_path / "s.db")
    argv = ["study", "create", "g", "--pairs", str(pairs), "--images", str(tmp_path / "img"), "--db", db]
    assert main([*argv, "--gold", "2"]) == 0
    blurred = sorted((tmp_path / "img" / "perceptiq_gold").glob("*_blurred.png"))
    assert len(blurred) == 2
    original = tmp_path / "img" / blurred[0].name.replace("_blurred.png", ".png")
    a = np.asarray(PILImage.open(original), dtype=float)
    b = np.asarray(PILImage.open(blurred[0]), dtype=float)
    assert a.shape == b.shape
    assert np.abs(np.diff(b, axis=1)).mean() < 0.3 * np.abs(np.diff(a, axis=1)).mean()  # far smoother
    database = open_database(db)
    _answer(database, "g", start_session(database, "g", observer="careful")[0], _consistent)
    _answer(database, "g", start_session(database, "g", observer="careless")[0], _reverse)
    checks = study_results(database, "g").checks.set_index("observer")
    assert checks.loc["careful", "gold_trials"] == 2
    assert not checks.loc["careful", "flagged"]
    assert checks.loc["careless", "reason"] == "failed 2 of 2 gold pairs"
    database.close()


def test_results_and_export_before_any_vote(tmp_path):
    pairs = make_images(tmp_path, inputs=1)
    db = open_database(tmp_path / "s.db")
    create_study(db, "empty", pairs, tmp_path / "img")
    result = study_results(db, "empty")
    assert result.ranking is None
    assert result.ranking_error == "no votes on regular pairs yet"
    np.testing.assert_array_equal(result.counts, np.zeros((3, 3)))
    assert export_votes(db, "empty", tmp_path / "v.csv") == 0
    assert list(pd.read_csv(tmp_path / "v.csv").columns)[:3] == ["observer", "session", "trial"]
    db.close()
