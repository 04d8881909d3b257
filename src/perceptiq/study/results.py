"""What a study's votes say: the long vote table, observer checks, the ranking and the benchmark file.

* :func:`vote_frame`: one row per vote, like pwcmp's long CSV (observer, session, pair, left, right,
  choice, time; Perez-Ortiz and Mantiuk, A practical guide and software for analysing pairwise comparison
  experiments, 2017) plus the pair's methods, the gold and repeat flags and ``flagged``.
* :func:`observer_checks`: per session, the failure rate on gold pairs and the agreement of a repeated
  pair with its first answer; a session beyond the study's thresholds is flagged. Flagged sessions stay in
  every export; results exclude them only when asked (``exclude_flagged``).
* :func:`study_results`: the count matrix of methods over regular pairs (first presentations only) and
  Thurstone Case V scores with intervals from :func:`perceptiq.ranking.fit_paired`, exactly what
  ``perceptiq rank`` computes from a vote file.
* :func:`benchmark_frame`: per pair, the fraction of votes for each image, in the columns of RealSR-1K's
  ``sr_subjective_results.csv`` (Chen et al., Learning from Model Rankings, 2025), the file that
  ``perceptiq evaluate --protocol realsr-2afc`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import aliased

from perceptiq.errors import DataFileError, PerceptiqError
from perceptiq.study.db import Database
from perceptiq.study.models import Image, Pair, Study, StudySession, Trial, Vote
from perceptiq.study.service import get_study

__all__ = [
    "EXPORT_COLUMNS",
    "StudyResults",
    "benchmark_frame",
    "export_votes",
    "observer_checks",
    "study_results",
    "vote_frame",
    "write_results",
]

EXPORT_COLUMNS = (
    "observer", "session", "trial", "position", "pair", "group", "left", "right", "method_left",
    "method_right", "choice", "winner", "winner_method", "image_a", "image_b", "method_a", "method_b",
    "gold", "gold_passed", "repeat", "response_ms", "time", "flagged",
)  # fmt: skip
"""Columns of the long vote table, in file order."""

CHECK_COLUMNS = (
    "observer", "session", "votes", "gold_trials", "gold_failures", "gold_failure_rate", "repeats",
    "repeat_agreements", "repeat_agreement", "flagged", "reason",
)  # fmt: skip


def _raw_votes(db: Database, name: str) -> tuple[Study, pd.DataFrame]:
    image_a, image_b = aliased(Image), aliased(Image)
    with db.sessionmaker() as session:
        study = get_study(session, name)
        query = (
            select(
                StudySession.observer, StudySession.id, Trial.id, Trial.position, Pair.id, Pair.group,
                image_a.name, image_b.name, Pair.method_a, Pair.method_b, Pair.gold, Trial.swapped,
                Trial.repeat, Vote.choice, Vote.response_ms, Vote.created_at,
            )
            .join(Trial, Trial.id == Vote.trial_id)
            .join(StudySession, StudySession.id == Trial.session_id)
            .join(Pair, Pair.id == Trial.pair_id)
            .join(image_a, image_a.id == Pair.image_a_id)
            .join(image_b, image_b.id == Pair.image_b_id)
            .where(StudySession.study_id == study.id)
            .order_by(StudySession.id, Trial.position)
        )  # fmt: skip
        rows = session.execute(query).all()
    columns = (
        "observer", "session", "trial", "position", "pair", "group", "image_a", "image_b", "method_a",
        "method_b", "gold", "swapped", "repeat", "choice", "response_ms", "time",
    )  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(columns))
    return study, frame


def observer_checks(frame: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per session: gold failures, agreement on repeated pairs and the flag (with its reason)."""
    out = []
    for (session_id, observer), votes in frame.groupby(["session", "observer"], sort=True):
        gold = votes[votes["gold"].notna()]
        failures = int((~gold["gold_passed"].astype(bool)).sum())
        regular = votes[votes["gold"].isna()]
        firsts = regular[regular["repeat"] == 0].set_index("pair")["winner"]
        seconds = regular[regular["repeat"] == 1].set_index("pair")["winner"]
        both = seconds.index.intersection(firsts.index)
        agreements = int((firsts.loc[both] == seconds.loc[both]).sum())
        gold_rate = failures / len(gold) if len(gold) else float("nan")
        agreement = agreements / len(both) if len(both) else float("nan")
        reasons = []
        if len(gold) and gold_rate > study.max_gold_failure_rate:
            reasons.append(f"failed {failures} of {len(gold)} gold pairs")
        if len(both) and agreement < study.min_repeat_agreement:
            reasons.append(f"agreed with itself on {agreements} of {len(both)} repeated pairs")
        out.append(
            (observer, session_id, len(votes), len(gold), failures, gold_rate, len(both), agreements,
             agreement, bool(reasons), "; ".join(reasons))
        )  # fmt: skip
    return pd.DataFrame(out, columns=list(CHECK_COLUMNS))


def _complete(frame: pd.DataFrame, study: Study) -> tuple[pd.DataFrame, pd.DataFrame]:
    a_left = ~frame["swapped"].astype(bool)
    frame["left"] = frame["image_a"].where(a_left, frame["image_b"])
    frame["right"] = frame["image_b"].where(a_left, frame["image_a"])
    frame["method_left"] = frame["method_a"].where(a_left, frame["method_b"])
    frame["method_right"] = frame["method_b"].where(a_left, frame["method_a"])
    chose_left = frame["choice"] == "left"
    frame["winner"] = frame["left"].where(chose_left, frame["right"])
    frame["winner_method"] = frame["method_left"].where(chose_left, frame["method_right"])
    a_won = chose_left == a_left
    passed = np.where(frame["gold"] == "a", a_won, ~a_won)
    frame["gold_passed"] = pd.array(np.where(frame["gold"].notna(), passed, pd.NA), dtype="boolean")
    frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    frame["response_ms"] = frame["response_ms"].astype("Int64")
    checks = observer_checks(frame, study)
    flagged = set(checks.loc[checks["flagged"], "session"])
    frame["flagged"] = frame["session"].isin(flagged)
    return frame, checks


def vote_frame(db: Database, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The long vote table (:data:`EXPORT_COLUMNS`) and the per-session checks of study ``name``."""
    study, frame = _raw_votes(db, name)
    frame, checks = _complete(frame, study)
    return frame[list(EXPORT_COLUMNS)], checks


def export_votes(db: Database, name: str, out: str | Path) -> int:
    """Write the long vote table to ``out`` (``.csv`` or ``.parquet``); returns the number of votes."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataFileError(out, f"votes are exported as .csv or .parquet, not {suffix or 'no suffix'!r}")
    frame, _ = vote_frame(db, name)
    try:
        if suffix == ".csv":
            frame.to_csv(out, index=False)
        else:
            frame.to_parquet(out, index=False)
    except OSError as err:
        raise DataFileError(out, f"cannot write the votes ({err.strerror or err})") from None
    return len(frame)


def benchmark_frame(frame: pd.DataFrame, image_dir: str | Path | None = None) -> pd.DataFrame:
    """Per voted regular pair: ``sr_pair_names, group, name1_column, name2_column, score1_column,
    score2_column, votes`` (fractions of votes for image a and b), as RealSR-1K's file. Image names are
    relative to the study's image folder, or absolute paths under ``image_dir`` when given (the ids that
    ``perceptiq score`` writes)."""
    regular = frame[frame["gold"].isna() & (frame["repeat"] == 0)]
    rows = []
    for _pair, votes in regular.groupby("pair", sort=True):
        first = votes.iloc[0]
        n = len(votes)
        p = float((votes["winner"] == first["image_a"]).sum()) / n
        rows.append(
            (f"{first['method_a']}_{first['method_b']}", first["group"], first["image_a"], first["image_b"],
             p, 1.0 - p, n)
        )  # fmt: skip
    columns = ["sr_pair_names", "group", "name1_column", "name2_column", "score1_column", "score2_column"]
    out = pd.DataFrame(rows, columns=[*columns, "votes"])
    if image_dir is not None:
        for column in ("name1_column", "name2_column"):
            out[column] = [str(Path(image_dir) / n) for n in out[column]]
    return out


@dataclass(frozen=True, eq=False)
class StudyResults:
    """Everything :func:`study_results` found; ``ranking`` is None (``ranking_error`` says why) when the
    votes do not yet connect every method."""

    study: str
    items: tuple[str, ...]
    counts: np.ndarray
    ranking: Any
    ranking_error: str | None
    votes: pd.DataFrame
    checks: pd.DataFrame
    benchmark: pd.DataFrame
    excluded_sessions: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: ranking, count matrix, observer checks and totals."""
        checks = self.checks
        gold = int(checks["gold_trials"].sum()) if len(checks) else 0
        repeats = int(checks["repeats"].sum()) if len(checks) else 0
        return {
            "study": self.study,
            "n_votes": len(self.votes),
            "n_sessions": len(checks),
            "n_flagged": int(checks["flagged"].sum()) if len(checks) else 0,
            "excluded_sessions": list(self.excluded_sessions),
            "items": list(self.items),
            "counts": self.counts.astype(int).tolist(),
            "ranking": None if self.ranking is None else self.ranking.to_dict(),
            "ranking_error": self.ranking_error,
            "gold_failure_rate": float(checks["gold_failures"].sum()) / gold if gold else None,
            "repeat_agreement": float(checks["repeat_agreements"].sum()) / repeats if repeats else None,
            "observers": [
                {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
                for row in checks.astype(object).to_dict("records")
            ],
        }


def study_results(
    db: Database,
    name: str,
    *,
    exclude_flagged: bool = False,
    ridge: float | None = None,
    ci: Literal["wald", "bootstrap"] = "wald",
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    absolute_paths: bool = False,
) -> StudyResults:
    """Count matrix and Thurstone Case V ranking of the methods of study ``name``.

    Votes on regular pairs count once per presentation (a repeat's second answer is used for the
    consistency check only); ``exclude_flagged`` leaves flagged sessions out of the counts. ``ridge=None``
    uses no prior when the maximum-likelihood scores exist (as ``perceptiq rank``) and 0.01 otherwise (the
    result's ``ridge_reason`` says which). ``absolute_paths`` writes absolute image paths into the benchmark
    table (as ``perceptiq score`` names images) instead of names relative to the image folder."""
    from perceptiq.io.votes import item_order
    from perceptiq.ranking import check_comparison_graph, counts_from_records, fit_paired

    frame, checks = vote_frame(db, name)
    with db.sessionmaker() as session:
        study = get_study(session, name)
        image_dir = study.image_dir if absolute_paths else None
        methods = session.execute(
            select(Pair.method_a, Pair.method_b).where(Pair.study_id == study.id, Pair.gold.is_(None))
        ).all()
    items = item_order(np.array(sorted({m for row in methods for m in row}), dtype=str))
    used = frame[frame["gold"].isna() & (frame["repeat"] == 0)]
    excluded = (
        tuple(sorted(int(s) for s in set(used.loc[used["flagged"], "session"]))) if exclude_flagged else ()
    )
    if exclude_flagged:
        used = used[~used["flagged"]]
    index = pd.Index(items)
    first = index.get_indexer(used["method_a"])
    second = index.get_indexer(used["method_b"])
    winner = index.get_indexer(used["winner_method"])
    counts = counts_from_records(first, second, winner, n_items=len(items))
    ranking, error = None, None
    try:
        if not used.empty:
            if ridge is None:
                ridge = 0.0 if check_comparison_graph(counts, items, require_strong=False) else 0.01
            ranking = fit_paired(counts, "thurstone", ridge=ridge, items=items, ci=ci, level=level,
                                 n_boot=n_boot, seed=seed)  # fmt: skip
        else:
            error = "no votes on regular pairs yet"
    except PerceptiqError as err:
        error = str(err)
    return StudyResults(
        study=name,
        items=items,
        counts=counts,
        ranking=ranking,
        ranking_error=error,
        votes=frame,
        checks=checks,
        benchmark=benchmark_frame(frame[~frame["flagged"]] if exclude_flagged else frame, image_dir),
        excluded_sessions=excluded,
    )


def write_results(results: StudyResults, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.json``, ``counts.csv``, ``ranking.csv``, ``observers.csv``, ``votes.csv``,
    ``benchmark_2afc.csv`` (for ``perceptiq evaluate --protocol realsr-2afc``) and ``ranking.png``."""
    from perceptiq.evaluation.report import ranking_plot, write_json

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {"results": write_json(results.to_dict(), out / "results.json")}
        paths = {
            "counts": out / "counts.csv",
            "observers": out / "observers.csv",
            "votes": out / "votes.csv",
            "benchmark": out / "benchmark_2afc.csv",
        }
        pd.DataFrame(results.counts, index=list(results.items), columns=list(results.items)).to_csv(
            paths["counts"], index_label="winner \\ loser"
        )
        results.checks.to_csv(paths["observers"], index=False)
        results.votes.to_csv(paths["votes"], index=False)
        results.benchmark.to_csv(paths["benchmark"], index=False)
        written |= paths
        if results.ranking is not None:
            pd.DataFrame(results.ranking.to_dict()["ranking"]).to_csv(out / "ranking.csv", index=False)
            written["ranking"] = out / "ranking.csv"
            written["plot"] = ranking_plot(results.ranking, out / "ranking.png")
    except OSError as err:
        raise DataFileError(out, f"cannot write the report ({err.strerror or err})") from None
    return written
