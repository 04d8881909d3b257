"""Benchmark of the default no-reference model: `perceptiq score` end to end, v2 beside v1 and NIQE.

Each row runs ``perceptiq score FOLDER --model M --out scores.csv`` in a fresh process on a folder of
JPEG files (decode, scoring and writing included) and reports images/s and the peak resident memory of
that process. Start-up (imports, model loading) is taken out of the throughput: every case runs on 1 and
on ``--images`` files, and images/s = (images - 1) / (time of the large run - time of the 1-image run),
each time the fastest of ``--repeats`` runs (a shared 2-core machine is noisy). The row
``perceptiq_nr_v2 1 crop`` is v2 with ``--option crop_grid=1``: images above its whole-image limit are
judged on one central 512 x 512 crop instead of four, the speed/coverage trade a user can make.

Images: scikit-image's public-domain photos, resized to 2040 x 1152 (the ISRGen-QA SR size of Li et al.,
ISRG-Q report, 2025) and to 500 x 500 (CLIVE's size), saved as JPEG quality 90: 8 photos in 4
rotations, so content repeats every 32 files (each file is still decoded and scored). Threads:
``--threads`` (default 2, the cores of the project's CI machines). With CUDA available, ``--device cuda``
rows are added: JPEGs are decoded on the GPU (nvJPEG through torchvision) and the model runs there, in
float32 and, in the row ``perceptiq_nr_v2 float16``, with its backbone in half precision
(``--option dtype=float16``).

Usage: ``python benchmarks/bench_default_model.py [--images 48] [--threads 2] [--repeats 3]``
(``--images`` 2K files and three times as many 500 x 500 files). Results go to
``benchmarks/results/bench_default_model.json``; the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from skimage import data as skdata

RESULTS = Path(__file__).resolve().parent / "results" / "bench_default_model.json"
SIZES = {"2040x1152": (2040, 1152), "500x500": (500, 500)}
SMALL_FILES_FACTOR = 3
"""500 x 500 runs score this many times ``--images`` files, so start-up noise stays small beside them."""
SCORERS = {  # row label -> perceptiq score arguments
    "perceptiq_nr_v2": ("--model", "perceptiq_nr_v2"),
    "perceptiq_nr_v2 1 crop": ("--model", "perceptiq_nr_v2", "--option", "crop_grid=1"),
    "perceptiq_nr_v2 float16": ("--model", "perceptiq_nr_v2", "--option", "dtype=float16"),
    "perceptiq_nr": ("--model", "perceptiq_nr"),
    "niqe": ("--metric", "niqe"),
}
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "retina",
    "cat",
    "hubble_deep_field",
)
RUNNER = (
    "import resource, sys\n"
    "from perceptiq.cli import app\n"
    "try:\n"
    "    app(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n"
    "    print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def write_images(folder: Path, size: tuple[int, int], count: int) -> Path:
    """``count`` JPEGs of ``size`` (width, height) from scikit-image photos, rotated in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        photo = np.asarray(getattr(skdata, PHOTOS[k % len(PHOTOS)])())
        photo = np.rot90(photo, k // len(PHOTOS)) if photo.ndim == 3 else np.stack([photo] * 3, -1)
        image = Image.fromarray(np.ascontiguousarray(photo[..., :3])).resize(size, Image.Resampling.LANCZOS)
        image.save(folder / f"img{k:03d}.jpg", quality=90)
    return folder


def run_score(folder: Path, name: str, device: str, threads: int, out: Path) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MiB) of one ``perceptiq score`` process."""
    out.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    args = ["score", str(folder), *SCORERS[name], "--out", str(out), "--device", device]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUNNER, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"perceptiq score {name} failed: {done.stderr[-2000:]}")
    scored = len(pd.read_csv(out))
    if scored != len(list(folder.iterdir())):
        raise RuntimeError(f"perceptiq score {name} wrote {scored} rows for the files of {folder}")
    rss = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS_KB"))
    return wall, rss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the fastest counts")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for size_name, size in SIZES.items():
            count = args.images * (SMALL_FILES_FACTOR if size_name == "500x500" else 1)
            many = write_images(root / size_name / "many", size, count)
            one = write_images(root / size_name / "one", size, 1)
            for device in devices:
                for name in SCORERS:
                    if name.endswith("1 crop") and size_name == "500x500":
                        continue  # whole image below the crop limit: the same computation as v2
                    if name.endswith("float16") and device == "cpu":
                        continue  # the CPU stays float32
                    out, threads, repeats = root / "scores.csv", args.threads, range(args.repeats)
                    t_one = min(run_score(one, name, device, threads, out)[0] for _ in repeats)
                    many_runs = [run_score(many, name, device, threads, out) for _ in repeats]
                    t_many, rss = min(t for t, _ in many_runs), max(r for _, r in many_runs)
                    per_second = (count - 1) / max(t_many - t_one, 1e-9)
                    row = {"size": size_name, "device": device, "scorer": name}
                    rows.append({**row, "images_per_s": per_second, "startup_s": t_one, "peak_rss_mib": rss})
                    print(f"{size_name:>10} {device:>4} {name:>22}: {per_second:6.2f} images/s, "
                          f"1-image run {t_one:5.1f} s, peak RSS {rss:6.0f} MiB", flush=True)  # fmt: skip
    for row in rows:
        v1 = next(r for r in rows if r["size"] == row["size"] and r["device"] == row["device"]
                  and r["scorer"] == "perceptiq_nr")  # fmt: skip
        row["speedup_over_v1"] = row["images_per_s"] / v1["images_per_s"]
    print(f"\n{'size':>10} {'device':>6} {'scorer':>22} {'images/s':>9} {'x v1':>6} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['size']:>10} {r['device']:>6} {r['scorer']:>22} {r['images_per_s']:9.2f} "
              f"{r['speedup_over_v1']:6.2f} {r['peak_rss_mib']:9.0f}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"threads": args.threads, "images": args.images, "repeats": args.repeats,
            "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__}  # fmt: skip
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\n-> {RESULTS}")


if __name__ == "__main__":
    main()
