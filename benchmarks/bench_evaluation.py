"""Benchmark of perceptiq's evaluation against scipy.stats doing the same work naively, in one run.

1. The ``generic`` protocol (SRCC, KRCC, PLCC raw / logistic-4 / logistic-5 / monotone cubic, RMSE)
   on 100k items, beside scipy.stats + scipy.optimize.curve_fit computing the same statistics.
2. A 1,000-resample percentile bootstrap CI of SRCC and PLCC on 10k items, beside a Python loop
   calling scipy.stats.spearmanr / pearsonr on the *same* resamples (so the intervals must agree).

3. A 1,000-resample bootstrap of the whole ``generic`` protocol (KRCC and PLCC after logistic-4,
   logistic-5 and monotone-cubic fits on every resample) on 30 and on 1,000 items, beside the
   per-resample loop it replaced (each resample expanded, every mapping fitted from a cold start).
   The loop is timed on ``--loop-resamples`` resamples and scaled to 1,000 (it is linear in them).

Targets (issue 2): the bootstrap finishes in under 5 s and at least 10x faster than the naive loop.
Target (issue 11): the generic bootstrap, 1,000 resamples of 1,000 items, in under 10 s on 2 cores.

Usage: python benchmarks/bench_evaluation.py [--out benchmarks/results/bench_evaluation.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import scipy
import scipy.optimize
import scipy.stats
from rich.console import Console
from rich.table import Table

from perceptiq.errors import FitWarning
from perceptiq.evaluation import bootstrap as bs
from perceptiq.evaluation import stats
from perceptiq.evaluation.fitting import logistic4, logistic5
from perceptiq.evaluation.protocols import ScoreData, create_protocol


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quality = rng.uniform(1, 5, n)
    mos = np.round(np.clip(quality + rng.normal(0, 0.4, n), 1, 5), 3)  # rounded: realistic ties
    pred = 1 / (1 + np.exp(-(quality - 3))) + rng.normal(0, 0.05, n)
    return pred, mos


def _timed(fn, repeats: int = 1):
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _naive_generic(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    out = {
        "srcc": scipy.stats.spearmanr(x, y).statistic,
        "krcc": scipy.stats.kendalltau(x, y).statistic,
        "plcc": scipy.stats.pearsonr(x, y).statistic,
    }
    with np.errstate(all="ignore"):
        p4, _ = scipy.optimize.curve_fit(
            logistic4, x, y, p0=[y.max(), y.min(), x.mean(), 0.5], maxfev=100_000_000
        )
        out["plcc_logistic4"] = scipy.stats.pearsonr(logistic4(x, *p4), y).statistic
        p0 = [np.ptp(y), 1 / np.std(x), x.mean(), 0.0, y.mean()]
        p5, _ = scipy.optimize.curve_fit(logistic5, x, y, p0=p0, maxfev=100_000)
        out["plcc_logistic5"] = scipy.stats.pearsonr(logistic5(x, *p5), y).statistic
    cubic = np.polyfit(x, y, 3)  # unconstrained: the naive baseline has no monotone fit
    out["plcc_poly3"] = scipy.stats.pearsonr(np.polyval(cubic, x), y).statistic
    return out


def bench_generic(n: int) -> dict[str, object]:
    x, y = _data(n, 0)
    data = ScoreData(np.arange(n), x, y)
    proto = create_protocol("generic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        t_ours, result = _timed(lambda: proto.evaluate(data), repeats=2)
    t_naive, naive = _timed(lambda: _naive_generic(x, y), repeats=2)
    agree = {
        k: abs(result.statistics[k] - naive[k])
        for k in ("srcc", "krcc", "plcc", "plcc_logistic4", "plcc_logistic5")
    }
    return {
        "task": f"generic protocol, {n:,} items",
        "perceptiq_s": t_ours,
        "naive_scipy_s": t_naive,
        "speedup": t_naive / t_ours,
        "max_abs_difference": max(agree.values()),
        "note": (
            "perceptiq also fits a monotone cubic (SLSQP) and computes RMSEs; "
            "the naive baseline fits an unconstrained cubic"
        ),
    }


def bench_bootstrap(n: int, n_resamples: int, confidence: float = 0.95) -> dict[str, object]:
    x, y = _data(n, 1)
    seed = 123

    data = ScoreData(np.arange(n), x, y)
    protocol = create_protocol("isrg-q-2025")  # SRCC + raw PLCC, the statistics of the target

    def ours():
        reps = protocol.bootstrap_replicates(data, n_resamples, seed)
        return (
            bs.percentile_interval(0.0, reps["srcc"], confidence),
            bs.percentile_interval(0.0, reps["plcc"], confidence),
        )

    def naive():
        w = np.concatenate(list(bs.iter_resample_counts(n, n_resamples, seed, n_chunks=4)))
        rho, r = np.empty(n_resamples), np.empty(n_resamples)
        for k in range(n_resamples):
            idx = bs.expand(w[k])
            rho[k] = scipy.stats.spearmanr(x[idx], y[idx]).statistic
            r[k] = scipy.stats.pearsonr(x[idx], y[idx]).statistic
        alpha = (1 - confidence) / 2
        return np.quantile(rho, [alpha, 1 - alpha]), np.quantile(r, [alpha, 1 - alpha])

    t_ours, (ci_s, ci_p) = _timed(ours, repeats=3)
    t_naive, (q_s, q_p) = _timed(naive, repeats=1)
    diff = max(
        abs(ci_s.low - q_s[0]), abs(ci_s.high - q_s[1]), abs(ci_p.low - q_p[0]), abs(ci_p.high - q_p[1])
    )
    return {
        "task": f"bootstrap CI of SRCC + PLCC, {n_resamples:,} resamples of {n:,} items",
        "perceptiq_s": t_ours,
        "naive_scipy_s": t_naive,
        "speedup": t_naive / t_ours,
        "max_abs_difference": diff,
        "srcc_ci": [ci_s.low, ci_s.high],
        "plcc_ci": [ci_p.low, ci_p.high],
        "target": "< 5 s and >= 10x the naive loop",
        "target_met": bool(t_ours < 5.0 and t_naive / t_ours >= 10.0),
    }


def bench_generic_bootstrap(n: int, n_resamples: int, loop_resamples: int) -> dict[str, object]:
    x, y = _data(n, 2)
    data = ScoreData(np.arange(n), x, y)
    protocol = create_protocol("generic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        t_ours, reps = _timed(lambda: protocol.bootstrap_replicates(data, n_resamples, 7), repeats=1)
        counts = np.concatenate(
            list(bs.iter_resample_counts(n, n_resamples, 7, n_chunks=min(os.cpu_count() or 1, 4)))
        )
        keys = ("krcc", "plcc_logistic4", "plcc_logistic5", "plcc_poly3_monotonic")

        def loop():
            out = {k: np.empty(loop_resamples) for k in keys}
            for r in range(loop_resamples):
                i = bs.expand(counts[r])
                out["krcc"][r] = stats.krcc(x[i], y[i])
                for m in ("logistic4", "logistic5", "poly3_monotonic"):
                    out[f"plcc_{m}"][r] = stats.plcc(x[i], y[i], mapping=m)
            return out

        t_loop, looped = _timed(loop, repeats=1)
    t_loop_scaled = t_loop * n_resamples / loop_resamples
    diff = {k: float(np.max(np.abs(reps[k][:loop_resamples] - looped[k]))) for k in keys}
    return {
        "task": f"generic bootstrap, {n_resamples:,} resamples of {n:,} items",
        "perceptiq_s": t_ours,
        "naive_scipy_s": t_loop_scaled,
        "naive_timed_resamples": loop_resamples,
        "speedup": t_loop_scaled / t_ours,
        "max_abs_difference": max(diff.values()),
        "max_abs_difference_by_statistic": diff,
        "note": "naive = the per-resample loop used before issue 11, timed on "
        f"{loop_resamples} resamples and scaled; logistic-5 replicates may stop elsewhere in its flat valley",
        "target": "< 10 s for 1,000 x 1,000 on 2 cores" if n == 1000 else "",
        "target_met": bool(t_ours < 10.0) if n == 1000 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_evaluation.json"
    )
    parser.add_argument("--generic-n", type=int, default=100_000)
    parser.add_argument("--bootstrap-n", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--loop-resamples", type=int, default=100)
    args = parser.parse_args()
    rows = [bench_generic(args.generic_n), bench_bootstrap(args.bootstrap_n, args.resamples)]
    rows += [bench_generic_bootstrap(n, args.resamples, args.loop_resamples) for n in (30, 1000)]
    table = Table(title="perceptiq evaluation vs naive scipy (same run, same data)")
    for col in ("task", "perceptiq (s)", "naive scipy (s)", "speed-up", "max |diff|"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for row in rows:
        table.add_row(
            row["task"],
            f"{row['perceptiq_s']:.3f}",
            f"{row['naive_scipy_s']:.3f}",
            f"{row['speedup']:.1f}x",
            f"{row['max_abs_difference']:.1e}",
        )
    Console().print(table)
    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
