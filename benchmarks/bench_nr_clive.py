"""Correlation of NIQE and BRISQUE with human scores on the CLIVE development split.

A sanity check an IQA researcher expects: both are lower-is-better, so both must correlate
negatively with MOS. Reads ``../shared/data/clive`` (724 images, MOS 0-100), scores each image with
perceptiq's ``niqe`` and ``brisque`` (defaults: MATLAB rgb2gray of 8-bit values, published models)
and prints SRCC/PLCC next to the values IQA-PyTorch reports for the same models on all 1,162 CLIVE
images (tests/NR_benchmark_results.csv there: NIQE 0.4505/0.4800, BRISQUE 0.3128/0.3509 in
magnitude). BRISQUE's often-quoted ~0.6 on CLIVE is for an SVR retrained on CLIVE, not this model.

Usage: python benchmarks/bench_nr_clive.py [--limit N] [--out benchmarks/results/bench_nr_clive.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import stats

import perceptiq.metrics.nr  # noqa: F401  (registers NIQE and BRISQUE)
from perceptiq.metrics.base import create_metric

CLIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clive"
PUBLISHED = {"niqe": (0.4505, 0.4800), "brisque": (0.3128, 0.3509)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_nr_clive.json"))
    args = parser.parse_args()
    if not CLIVE.exists():
        raise SystemExit(f"{CLIVE} not available (../shared/data is not beside the repository)")
    with (CLIVE / "manifest.csv").open() as f:
        rows = list(csv.DictReader(f))[: args.limit]
    metrics = {name: create_metric(name) for name in PUBLISHED}
    scores: dict[str, list[float]] = {name: [] for name in metrics}
    seconds = dict.fromkeys(metrics, 0.0)
    mos = []
    with torch.no_grad():
        for row in rows:
            arr = np.asarray(Image.open(CLIVE / row["image"]).convert("RGB"), dtype=np.float32) / 255.0
            x = torch.from_numpy(arr).permute(2, 0, 1)[None]
            for name, metric in metrics.items():
                start = time.perf_counter()
                scores[name].append(float(metric(x)))
                seconds[name] += time.perf_counter() - start
            mos.append(float(row["mos"]))
    result = {"images": len(mos), "threads": torch.get_num_threads(), "metrics": {}}
    print(f"CLIVE development split, {len(mos)} images ({torch.get_num_threads()} threads)")
    print(f"{'metric':<8} {'SRCC':>8} {'PLCC':>8}   {'published |SRCC|/|PLCC|':>24}   {'ms/image':>8}")
    for name, values in scores.items():
        srcc = float(stats.spearmanr(values, mos).statistic)
        plcc = float(stats.pearsonr(values, mos).statistic)
        ms = 1e3 * seconds[name] / len(mos)
        ref = PUBLISHED[name]
        print(f"{name:<8} {srcc:>8.4f} {plcc:>8.4f}   {ref[0]:>11.4f}/{ref[1]:<12.4f}   {ms:>8.1f}")
        result["metrics"][name] = {"srcc": srcc, "plcc": plcc, "published_abs": ref, "ms_per_image": ms}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
