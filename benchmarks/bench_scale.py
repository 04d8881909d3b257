"""Benchmark of ``perceptiq score --engine ray``: images/s with 1, 2 and 4 actors beside the single process.

On one synthetic image set (smooth patterns plus noise, JPEG quality 90) and in one run, each scorer
is timed through the one-machine runner (:func:`perceptiq.scoring.score_files`) and through the Ray
pipeline (:func:`perceptiq.scale.ray_engine.score_files_ray`) with 1, 2 and 4 actors on a local Ray.
Scorers: the default model (``perceptiq_nr_v2``) and SSIM with references (the clean images). Start-up
(model loading; for Ray also the actors starting, seconds that vary from run to run) is taken out of
the throughput. Single process: it runs on 1 and on ``--images`` files and images/s = (images - 1) /
(time of the large run - time of the 1-image run). Ray: images/s = (images - those of the first batch)
/ (time from the first batch of rows reaching the driver to the last), the pipeline's steady state.
Each Ray row also gives the largest score difference from the single process (the same reader and
scorer: 0 up to float32 rounding) and the scaling efficiency ``images/s / (actors x images/s of 1 actor)``.

Threads: the single process and each CPU actor run torch on ``--threads`` threads (default 1), so one
actor and the single process do the same work. Each actor holds ``min(--threads, CPUs left / actors)``
CPUs (Ray's resources, fractional on small machines; a quarter of the CPUs stays with the decode
tasks). On 2 cores nothing can scale: 4 actors share one core. With ``--device cuda`` the model runs on
the GPU, the actors share it (``1 / actors`` GPU each) and decoding stays on the CPU.

Usage: ``python benchmarks/bench_scale.py [--images 48] [--size 256x256] [--batch-size 4]``; on a
16-core GPU machine
``python benchmarks/bench_scale.py --images 200 --size 2040x1152 --device cuda --scorers default``
(the 2K default-model comparison, Ray vs single process). Results go to
``benchmarks/results/bench_scale.json``; the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from perceptiq.io.images import pair_references
from perceptiq.scale.ray_engine import RayOptions, pool_size, score_files_ray, start_ray
from perceptiq.scoring import ScorerSpec, score_files

RESULTS = Path(__file__).resolve().parent / "results" / "bench_scale.json"
SCORERS = {"default": ScorerSpec(), "ssim": ScorerSpec(metric="ssim")}


def write_images(folder: Path, size: tuple[int, int], count: int) -> tuple[list[Path], Path]:
    """``count`` noisy JPEGs of ``size`` (width, height) in ``folder/img``, clean PNGs in ``folder/ref``."""
    (folder / "img").mkdir(parents=True)
    (folder / "ref").mkdir()
    rng = np.random.default_rng(0)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for k in range(count):
        base = 127 + 70 * np.sin(xx / (9 + k % 7)) * np.cos(yy / (13 + k % 5))
        clean = np.clip(np.stack([base, base[::-1], base[:, ::-1]], -1), 0, 255).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 4 + k % 9, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(clean).save(folder / "ref" / f"img{k:04d}.png")
        Image.fromarray(noisy).save(folder / "img" / f"img{k:04d}.jpg", quality=90)
        paths.append(folder / "img" / f"img{k:04d}.jpg")
    return paths, folder / "ref"


def timed(fn, out: Path) -> tuple[float, dict[str, float]]:
    """Wall time of ``fn(out)`` and the scores it returned, by image."""
    start = time.perf_counter()
    summary = fn(out)
    wall = time.perf_counter() - start
    return wall, {str(r["image"]): r["score"] for r in summary.rows}


def throughput(run, paths: list[Path], work: Path, name: str) -> tuple[float, float, dict[str, float]]:
    """images/s over ``paths`` with the 1-image run's time (start-up) taken out; start-up s; scores."""
    one, _ = timed(lambda out: run(paths[:1], out), work / f"{name}-1.csv")
    many, scores = timed(lambda out: run(paths, out), work / f"{name}-n.csv")
    return (len(paths) - 1) / max(many - one, 1e-9), one, scores


def steady_throughput(run, paths: list[Path], out: Path) -> tuple[float, float, dict[str, float]]:
    """images/s from the first batch of rows to the last; seconds to the first batch; scores."""
    arrivals: list[float] = []

    def progress(rows, total):
        for row in rows:
            arrivals.append(time.perf_counter())
            yield row

    start = time.perf_counter()
    summary = run(paths, out, progress)
    first = [t for t in arrivals if t - arrivals[0] < 1e-3]  # the rows of the first batch, yielded together
    rate = (len(arrivals) - len(first)) / max(arrivals[-1] - arrivals[0], 1e-9)
    return rate, arrivals[0] - start, {str(r["image"]): r["score"] for r in summary.rows}


def wait_for_idle_cluster(ray, cpus: float, timeout: float = 120.0) -> None:
    """Wait until the last run's actors have exited and given their CPUs back."""
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0) < cpus - 1e-6 and time.monotonic() < deadline:
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", default="256x256", help="WIDTHxHEIGHT")
    parser.add_argument("--actors", default="1,2,4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--scorers", default="default,ssim")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    counts = [int(n) for n in args.actors.split(",")]
    ray = start_ray(None)
    cpus = float(ray.cluster_resources().get("CPU", 0))
    gpus = float(ray.cluster_resources().get("GPU", 0))
    cuda = args.device.startswith("cuda")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths, refs = write_images(work / "data", size, args.images)
        for name in args.scorers.split(","):
            spec = ScorerSpec(**{**SCORERS[name].__dict__, "device": args.device})
            scorer = spec.build()
            references = pair_references(paths, refs) if scorer.needs_reference else None

            def single(files, out, scorer=scorer, references=references):
                return score_files(
                    files, scorer, references=references, output=out, batch_size=args.batch_size
                )

            ips, startup, base = throughput(single, paths, work, f"{name}-single")
            rows.append(
                {
                    "scorer": name,
                    "engine": "single process",
                    "actors": None,
                    "images_per_s": ips,
                    "startup_s": startup,
                    "max_abs_diff": 0.0,
                    "efficiency": None,
                }
            )
            one_actor = None
            for n in counts:
                usable = cpus - max(1.0, cpus // 4)
                sized = pool_size(
                    cpus,
                    gpus,
                    cuda=cuda,
                    actors=n,
                    cpus_per_actor=min(args.threads, usable / n),
                    gpus_per_actor=1 / n if cuda else None,
                )
                options = RayOptions(
                    actors=n,
                    cpus_per_actor=sized.cpus,
                    gpus_per_actor=sized.gpus or None,
                    batch_size=args.batch_size,
                )

                def on_ray(files, out, progress, spec=spec, options=options, references=references):
                    return score_files_ray(
                        files, spec, references=references, output=out, options=options, progress=progress
                    )

                wait_for_idle_cluster(ray, cpus)
                ips, startup, scores = steady_throughput(on_ray, paths, work / f"{name}-ray{n}.csv")
                one_actor = ips if n == 1 else one_actor
                diff = max(abs(scores[k] - base[k]) for k in base)
                rows.append(
                    {
                        "scorer": name,
                        "engine": "ray",
                        "actors": n,
                        "cpus_per_actor": sized.cpus,
                        "gpus_per_actor": sized.gpus,
                        "images_per_s": ips,
                        "startup_s": startup,
                        "max_abs_diff": diff,
                        "efficiency": ips / (n * one_actor) if one_actor else None,
                    }
                )
    meta = {
        "images": args.images,
        "size": args.size,
        "device": args.device,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "cpu_count": os.cpu_count(),
        "ray_cpus": cpus,
        "ray_gpus": gpus,
        "machine": platform.machine(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "note": "2 cores (shared with other jobs) cannot show scaling: past 2 actors, actors and decode "
        "tasks share the same 2 cores"
        if (os.cpu_count() or 1) <= 2
        else "",
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(
        f"{'scorer':8} {'engine':15} {'actors':>6} {'img/s':>8} {'start s':>8} {'eff.':>6} {'max |diff|':>11}"
    )
    for r in rows:
        eff = "" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        print(
            f"{r['scorer']:8} {r['engine']:15} {r['actors'] or '':>6} {r['images_per_s']:8.2f} "
            f"{r['startup_s']:8.1f} {eff:>6} {r['max_abs_diff']:11.2e}"
        )
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
