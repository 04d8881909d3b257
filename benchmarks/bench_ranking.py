"""Benchmarks of ``perceptiq.ranking`` side by side with peers, in one run.

Sections (each a function ``section_<name>(args) -> dict`` registered in ``SECTIONS``; add new ones there and
they get a ``--section`` choice, a printed table and an entry in the JSON file):

* ``paired_mle``: maximum-likelihood scores from 1,000 items / 1M simulated 2AFC votes on a random sparse
  design (a ring plus random pairs, seeded). Bradley-Terry is compared with choix (``ilsr_pairwise`` on the
  vote list, ``ilsr_pairwise_dense`` on the count matrix; ``opt_pairwise`` with ``--with-opt-pairwise``, about
  4 minutes at 1M votes) and with scipy L-BFGS-B on the plain likelihood. choix has no Thurstone MLE (its
  ``ep_pairwise(model="probit")`` is an approximate posterior, not the MLE), so Thurstone Case V is compared
  with the scipy L-BFGS-B reference only. Every solver's log-likelihood is reported next to its time.

Wall times are the best of ``--repeat`` runs. BLAS (via threadpoolctl) and torch (whose vectorised kernels
perceptiq's solver uses for the link functions) are limited to ``--threads`` threads (default 1) so that
every solver, ours included, does single-threaded work; CPU times
(``time.process_time``, summed over threads) are reported beside the wall times because wall times on a
shared machine are noisy.

Usage: ``python benchmarks/bench_ranking.py [--section paired_mle] [--items 1000] [--votes 1000000]``.
Results are merged into ``benchmarks/results/bench_ranking.json`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import torch
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from perceptiq.ranking import counts_from_records, fit_paired, log_likelihood, paired_mle

RESULTS = Path(__file__).resolve().parent / "results" / "bench_ranking.json"


def _timed(repeat: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[dict[str, float], Any]:
    """Best wall and CPU (process, all threads) times of ``fn(*args, **kwargs)`` over ``repeat`` runs."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return {"seconds": wall, "cpu_seconds": cpu}, out


def _simulate(n: int, n_pairs: int, n_votes: int, model: str, seed: int) -> tuple[np.ndarray, ...]:
    """Votes ``(first, second, winner)`` on a ring plus random pairs; true scores N(0, 1), zero mean."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    truth -= truth.mean()
    ring = np.stack([np.arange(n), np.roll(np.arange(n), -1)], axis=1)
    extra = rng.integers(0, n, size=(n_pairs, 2))
    pairs = np.unique(np.sort(np.concatenate([ring, extra[extra[:, 0] != extra[:, 1]]]), axis=1), axis=0)
    pick = rng.integers(0, len(pairs), size=n_votes)
    first, second = pairs[pick, 0], pairs[pick, 1]
    cdf = special.ndtr if model == "thurstone" else special.expit
    wins = rng.random(n_votes) < cdf(truth[first] - truth[second])
    return first, second, np.where(wins, first, second), truth


def _scipy_reference(counts: np.ndarray, model: str) -> np.ndarray:
    """L-BFGS-B on the plain likelihood over the compared pairs (first score pinned), analytic gradient."""
    a, b = np.nonzero(np.triu(counts + counts.T, 1))
    wab, wba = counts[a, b].astype(float), counts[b, a].astype(float)
    n = counts.shape[0]
    if model == "thurstone":
        log_f = special.log_ndtr

        def dlog_f(d: np.ndarray) -> np.ndarray:
            return np.exp(-0.5 * d * d - 0.5 * np.log(2 * np.pi) - special.log_ndtr(d))
    else:
        log_f = special.log_expit

        def dlog_f(d: np.ndarray) -> np.ndarray:
            return special.expit(-d)

    def neg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        mu = np.r_[0.0, theta]
        d = mu[a] - mu[b]
        value = -np.sum(wab * log_f(d) + wba * log_f(-d))
        s = wab * dlog_f(d) - wba * dlog_f(-d)
        grad = np.bincount(a, weights=s, minlength=n) - np.bincount(b, weights=s, minlength=n)
        return value, -grad[1:]

    options = {"maxiter": 100000, "maxfun": 100000, "ftol": 1e-15, "gtol": 1e-8, "maxcor": 30}
    res = optimize.minimize(neg, np.zeros(n - 1), jac=True, method="L-BFGS-B", options=options)
    mu = np.r_[0.0, res.x]
    return mu - mu.mean()


def _row(
    model: str,
    solver: str,
    times: dict[str, float],
    scores: np.ndarray,
    counts: np.ndarray,
    ours: dict | None,
    note: str = "",
) -> dict[str, Any]:
    ll = log_likelihood(scores, counts, model)
    row = {"model": model, "solver": solver, **times, "log_likelihood": ll, "note": note}
    if ours is not None:
        row["time_vs_perceptiq"] = times["seconds"] / ours["seconds"]
        row["cpu_time_vs_perceptiq"] = times["cpu_seconds"] / ours["cpu_seconds"]
        row["delta_log_likelihood"] = ll - ours["log_likelihood"]
        row["max_abs_score_diff"] = float(np.max(np.abs((scores - scores.mean()) - ours["scores"])))
    return row


def _paired_mle_rows(model: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    import choix

    first, second, winner, truth = _simulate(args.items, args.pairs, args.votes, model, args.seed)
    t_counts, counts = _timed(args.repeat, counts_from_records, first, second, winner, args.items)
    t_mle, scores = _timed(args.repeat, paired_mle, counts, model)
    ours = {**t_mle, "scores": scores, "log_likelihood": log_likelihood(scores, counts, model)}
    corr = np.corrcoef(scores, truth)[0, 1]
    note = f"votes -> count matrix {t_counts['seconds']:.3f} s; corr(scores, true scores) {corr:.4f}"
    rows = [_row(model, "perceptiq paired_mle", t_mle, scores, counts, None, note)]
    t_fit, fit = _timed(args.repeat, fit_paired, counts, model)
    rows.append(_row(model, "perceptiq fit_paired (+ Wald SEs)", t_fit, fit.scores, counts, ours))
    t_ref, ref = _timed(args.repeat, _scipy_reference, counts, model)
    rows.append(_row(model, "scipy L-BFGS-B, plain likelihood", t_ref, ref, counts, ours))
    if model == "bt":
        data = list(zip(winner.tolist(), np.where(winner == first, second, first).tolist(), strict=True))
        t_list, theta = _timed(1, choix.ilsr_pairwise, args.items, data)
        rows.append(
            _row(model, "choix ilsr_pairwise (vote list)", t_list, theta, counts, ours, "one run (slow)")
        )
        t_dense, theta = _timed(args.repeat, choix.ilsr_pairwise_dense, counts.astype(float))
        rows.append(_row(model, "choix ilsr_pairwise_dense (counts)", t_dense, theta, counts, ours))
        if args.with_opt_pairwise:
            t_opt, theta = _timed(1, choix.opt_pairwise, args.items, data, alpha=0.0)
            rows.append(
                _row(model, "choix opt_pairwise (Newton-CG)", t_opt, theta, counts, ours, "one run (slow)")
            )
    return rows


def section_paired_mle(args: argparse.Namespace) -> dict[str, Any]:
    """Thurstone and Bradley-Terry MLE at scale against choix and a scipy reference."""
    rows = _paired_mle_rows("thurstone", args) + _paired_mle_rows("bt", args)
    setup = {
        "items": args.items,
        "votes": args.votes,
        "random_pairs": args.pairs,
        "seed": args.seed,
        "best_of_runs": args.repeat,
        "choix": version("choix"),
    }
    return {"setup": setup, "rows": rows}


def section_mad(args: argparse.Namespace) -> dict[str, Any]:
    """MAD selection for 12 methods x 1,000 inputs: runs ``bench_mad.py`` (its own table and JSON)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_mad

    mad_args = bench_mad.build_parser().parse_args(["--seed", str(args.seed)])
    result = bench_mad.section_mad(mad_args)
    bench_mad._print(result)
    return result


SECTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "paired_mle": section_paired_mle,
    "mad": section_mad,
}


def _print(name: str, result: dict[str, Any]) -> None:
    print(f"\n== {name} == {json.dumps(result['setup'])}")
    header = (
        f"{'model':<10} {'solver':<36} {'wall s':>8} {'x ours':>7} {'cpu s':>8} {'x ours':>7} "
        f"{'log-likelihood':>17} {'dLL':>10} {'max|dmu|':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in result["rows"]:
        wall_x = f"{row['time_vs_perceptiq']:.1f}" if "time_vs_perceptiq" in row else "1.0"
        cpu_x = f"{row['cpu_time_vs_perceptiq']:.1f}" if "cpu_time_vs_perceptiq" in row else "1.0"
        dll = f"{row['delta_log_likelihood']:.2e}" if "delta_log_likelihood" in row else "-"
        dmu = f"{row['max_abs_score_diff']:.1e}" if "max_abs_score_diff" in row else "-"
        print(
            f"{row['model']:<10} {row['solver']:<36} {row['seconds']:>8.3f} {wall_x:>7} "
            f"{row['cpu_seconds']:>8.3f} {cpu_x:>7} {row['log_likelihood']:>17.6f} {dll:>10} {dmu:>9}"
        )
        if row["note"]:
            print(f"{'':<10} {row['note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS), help="default: all")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=40_000, help="random pairs added to the ring design")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=3, help="best of this many runs (the slow choix list solvers run once)"
    )
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads for every solver")
    parser.add_argument(
        "--with-opt-pairwise", action="store_true", help="also time choix.opt_pairwise (slow)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    payload = json.loads(args.output.read_text()) if args.output.exists() else {"sections": {}}
    payload["environment"] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "blas_threads": args.threads,
        "torch_threads": args.threads,
    }
    torch.set_num_threads(args.threads)  # the solver's elementwise link functions run through torch
    for name in args.section or sorted(SECTIONS):
        with threadpool_limits(limits=args.threads, user_api="blas"):
            result = SECTIONS[name](args)
        if name != "mad":  # the MAD section prints its own table
            _print(name, result)
        payload["sections"][name] = result
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
