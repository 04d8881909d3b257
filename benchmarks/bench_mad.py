"""Benchmark of MAD competition pair selection (``perceptiq.ranking.mad``) against peers, in one run.

Setup (Chen et al., Learning from Model Rankings, 2025 scale-up): 12 methods -> 66 method pairs, 1,000
inputs, K = 16, lambda = 0.1, random
``D1`` (66 x 1,000, seeded) and random features of two sizes: d = 150 (the default weight-free
``SimpleFeatures``) and d = 25,088 (VGG16-BN ``features`` of a 224 x 224 crop, as in the paper).

Rows per feature size:

* ``perceptiq``: ``feature_distances`` (the 1,000 x 1,000 ``d2`` matrix, scipy ``pdist``) + ``greedy_select``
  (all 66 pairs at once, running sums), and each part alone;
* ``released loop``: the released code's rule restated (SR-IQA-SMC25 MAD_competition.py): per pair, a dict in
  D1-descending
  order, ``d2`` accumulated with one MSE per remaining input and step, Python ``max``; run on
  ``--loop-pairs`` pairs (default 6) and scaled to all pairs (marked "extrapolated" when fewer);
* ``per-pair numpy``: per pair and step, the MSE of all remaining inputs to the last pick in one numpy call
  (vectorised over inputs, no shared matrix, no batching over pairs); run and scaled like the loop;
* ``torch.cdist`` ``d2`` matrix (matrix-multiply expansion) as a peer of the matrix step, with its largest
  deviation from the exact matrix.

Every selection is checked against perceptiq's picks ("same picks"). Also timed: ``simple_features`` on
64 images of 512 x 512.

Usage: ``python benchmarks/bench_mad.py [--inputs 1000] [--methods 12] [--k 16] [--loop-pairs 6]``.
Results go to ``benchmarks/results/bench_mad.json``. ``section_mad(args)`` returns the same dict, for
inclusion in ``bench_ranking.py``'s ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import torch

from perceptiq.models.mad_features import simple_features
from perceptiq.ranking.mad import feature_distances, greedy_select, method_pairs

RESULTS = Path(__file__).resolve().parent / "results" / "bench_mad.json"


def _timed(repeat: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Best wall time of ``fn(*args, **kwargs)`` over ``repeat`` runs, and its result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, out


def _released_loop(d1: np.ndarray, feats: np.ndarray, k: int, lam: float) -> list[list[int]]:
    """SR-IQA-SMC25 MAD_competition.py literally, one pair at a time."""
    out = []
    for row in d1:
        order = sorted(range(len(row)), key=lambda i: -row[i])
        acc = dict.fromkeys(order, 0.0)
        xk = order[0]
        picks = [xk]
        del acc[xk]
        for step in range(1, k):
            for x in acc:
                acc[x] += float(np.mean((feats[x] - feats[xk]) ** 2))
            xk = max(acc, key=lambda x: row[x] + lam * acc[x] / step)  # noqa: B023
            picks.append(xk)
            del acc[xk]
        out.append(picks)
    return out


def _per_pair_numpy(d1: np.ndarray, feats: np.ndarray, k: int, lam: float) -> list[list[int]]:
    """Per pair: candidates in D1-descending order, one numpy MSE call per step, argmax (first maximum)."""
    out = []
    for row in d1:
        order = np.argsort(-row, kind="stable")
        f = feats[order]
        acc = np.zeros(len(row))
        free = np.ones(len(row), dtype=bool)
        picks = [0]
        free[0] = False
        for step in range(1, k):
            acc += np.mean((f - f[picks[-1]]) ** 2, axis=1)
            obj = np.where(free, row[order] + lam * acc / step, -np.inf)
            best = int(np.argmax(obj))
            picks.append(best)
            free[best] = False
        out.append(order[picks].tolist())
    return out


def _rows_for(d1: np.ndarray, feats: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    d = feats.shape[1]
    t_matrix, d2m = _timed(args.repeat, feature_distances, feats)
    t_select, sel = _timed(args.repeat, greedy_select, d1, d2m, args.k, args.lam)
    ours = sel.indices.tolist()
    total = t_matrix + t_select
    rows = [
        {
            "d": d,
            "method": "perceptiq feature_distances + greedy_select",
            "seconds": total,
            "same_picks": True,
        },
        {"d": d, "method": "  of which: d2 matrix (scipy pdist)", "seconds": t_matrix, "same_picks": True},
        {
            "d": d,
            "method": f"  of which: greedy selection, {len(d1)} pairs",
            "seconds": t_select,
            "same_picks": True,
        },
    ]
    n_loop = min(args.loop_pairs, len(d1))
    t_loop, loop = _timed(1, _released_loop, d1[:n_loop], feats, args.k, args.lam)
    scale = len(d1) / n_loop
    rows.append(
        {
            "d": d,
            "method": "released loop (dict + max), per pair",
            "seconds": t_loop * scale,
            "same_picks": loop == ours[:n_loop],
            "note": "" if n_loop == len(d1) else f"extrapolated from {n_loop} pairs",
        }
    )
    t_np, per_pair = _timed(1, _per_pair_numpy, d1[:n_loop], feats, args.k, args.lam)
    rows.append(
        {
            "d": d,
            "method": "per-pair numpy (no shared matrix)",
            "seconds": t_np * scale,
            "same_picks": per_pair == ours[:n_loop],
            "note": "" if n_loop == len(d1) else f"extrapolated from {n_loop} pairs",
        }
    )
    ft = torch.from_numpy(feats)
    t_torch, tm = _timed(args.repeat, lambda: torch.cdist(ft, ft).square_() / d)
    dev = float(np.max(np.abs(tm.numpy() - d2m)))
    sel_torch = greedy_select(d1, tm.numpy(), args.k, args.lam).indices.tolist()
    rows.append(
        {
            "d": d,
            "method": "torch.cdist d2 matrix (mm expansion), matrix only",
            "seconds": t_torch,
            "same_picks": sel_torch == ours,
            "note": f"max |d2 - exact| = {dev:.1e}",
        }
    )
    for row in rows:
        row["time_vs_perceptiq"] = row["seconds"] / total
    return rows


def section_mad(args: argparse.Namespace) -> dict[str, Any]:
    """MAD selection for ``args.methods`` methods x ``args.inputs`` inputs with random D1 and features."""
    rng = np.random.default_rng(args.seed)
    n_pairs = len(method_pairs(args.methods))
    d1 = rng.random((n_pairs, args.inputs))
    rows: list[dict[str, Any]] = []
    for d in args.dims:
        rows += _rows_for(d1, rng.normal(size=(args.inputs, d)), args)
    images = torch.rand(64, 3, 512, 512, generator=torch.Generator().manual_seed(args.seed))
    t_feat, _ = _timed(args.repeat, simple_features, images)
    rows.append(
        {
            "d": 150,
            "method": "simple_features, 64 images 512x512",
            "seconds": t_feat,
            "same_picks": None,
            "note": f"{1000 * t_feat / 64:.2f} ms per image",
        }
    )
    setup = {
        "methods": args.methods,
        "pairs": n_pairs,
        "inputs": args.inputs,
        "k": args.k,
        "lambda": args.lam,
        "feature_dims": list(args.dims),
        "seed": args.seed,
        "best_of_runs": args.repeat,
        "torch_threads": torch.get_num_threads(),
    }
    return {"setup": setup, "rows": rows}


def _print(result: dict[str, Any]) -> None:
    print(f"\n== mad == {json.dumps(result['setup'])}")
    header = f"{'d':>6} {'method':<52} {'seconds':>9} {'x ours':>8} {'same picks':>10}  note"
    print(header)
    print("-" * (len(header) + 30))
    for row in result["rows"]:
        same = "-" if row["same_picks"] is None else str(row["same_picks"])
        ratio = row.get("time_vs_perceptiq")
        print(f"{row['d']:>6} {row['method']:<52} {row['seconds']:>9.3f} "
              f"{'-' if ratio is None else f'{ratio:.1f}':>8} {same:>10}  {row.get('note', '')}")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """Command-line options (also used by ``bench_ranking.py``'s ``mad`` section)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", type=int, default=12)
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--lam", type=float, default=0.1)
    parser.add_argument("--dims", type=int, nargs="+", default=[150, 25088])
    parser.add_argument("--loop-pairs", type=int, default=6, help="pairs run by the two per-pair peers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (per-pair peers: once)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load = os.getloadavg()
    result = section_mad(args)
    _print(result)
    payload = {
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "torch": torch.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load,
        },
        "sections": {"mad": result},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
