"""Benchmark of the learned model families: images/s and peak memory at three image sizes, side by side.

Every family is scored through :meth:`QualityModel.score`, i.e. under its own input policy (random
crops, centre crop, resize or full resolution), at 224 x 224, 1024 x 1024 and 2040 x 1152 (width x
height; the ISRGen-QA SR size of Li et al., ISRG-Q report, 2025). Rows:

* ``face_lite``: MobileNetV3-Small, 20 random 224 crops (Ma et al., VQualA 2025 FIQA report baseline policy);
* ``hybrid_vit_cnn``: ViT-B/16 + attention/conv head on the 448 centre crop (Li et al., ISRG-Q report, 2025,
  MICV);
* ``t2i_structure``: ConvNeXt-T at 448 (score only), and ``predict`` (score + 512 x 512 heatmap);
* ``ultra_fr``: ConvNeXt-Base + FPN on SR and HR at full resolution, 20 region draws (Li et al., ISRG-Q
  report, 2025,
  2077 Agent); full-reference, so the reference is scored too;
* ``ensemble``: face_lite_mobilenetv3 + hybrid_vit_cnn_small, equal weights;
* ``clip_prompt``, ``rank_rectifier``, ``t2i_alignment``: the CLIP-based families, when importable
  (the CLIP ViT-B/32 variant, else the first registered variant that builds offline; a failure is
  reported in the row).

Weights are random (nothing is downloaded): speed and memory do not depend on the values, except the
UltraR-IQA region proposals, whose count is capped. Each case runs in its own subprocess: the model
is built, the input batch created, then one ``score`` call measures the peak memory, and, when that
call took less than ``--repeat-under`` seconds, ``--repeat`` more calls give the best time.

Peak memory: on CPU the increase of the process's maximum resident set size
(``resource.getrusage(...).ru_maxrss``) during the first call, i.e. the activations and workspace
above the loaded model and input (tracemalloc does not see torch's allocator); on CUDA
``torch.cuda.max_memory_allocated`` during the call, minus the memory allocated before it.

Usage: ``python benchmarks/bench_models.py [--families a,b] [--sizes 224,1024,2040x1152] [--threads 1]
[--device cpu|cuda|all]``. Results go to ``benchmarks/results/bench_models.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "bench_models.json"
SIZES = {"224": (224, 224), "1024": (1024, 1024), "2040x1152": (1152, 2040)}
BATCH = {"224": 4, "1024": 1, "2040x1152": 1}
FAMILY_MODULES = (
    "face_lite",
    "hybrid_vit_cnn",
    "t2i_structure",
    "ultra_fr",
    "ensemble",
    "clip_prompt",
    "rank_rectifier",
    "t2i_alignment",
)
CASES: list[dict[str, Any]] = [
    {"family": "face_lite", "variant": "face_lite_mobilenetv3"},
    {"family": "hybrid_vit_cnn", "variant": "hybrid_vit_cnn_micv"},
    {"family": "t2i_structure", "variant": "t2i_structure_convnext"},
    {"family": "t2i_structure", "variant": "t2i_structure_convnext", "call": "predict"},
    {"family": "ultra_fr", "variant": "ultra_fr_convnext_base"},
    {
        "family": "ensemble",
        "variant": "ensemble",
        "members": ["face_lite_mobilenetv3", "hybrid_vit_cnn_small"],
    },
    {"family": "clip_prompt", "variant": None, "prefer": "clip_prompt_vit_b32"},
    {"family": "rank_rectifier", "variant": None, "prefer": "rank_rectifier_clip_vit_b32"},
    {"family": "t2i_alignment", "variant": None, "prefer": "t2i_alignment_clip_vit_b32"},
]


def _import_families() -> dict[str, str]:
    """Import every family module; returns {module: error} for those that fail."""
    import importlib

    errors = {}
    for name in FAMILY_MODULES:
        try:
            importlib.import_module(f"perceptiq.models.{name}")
        except Exception as err:  # noqa: BLE001 - any import failure is reported, not fatal
            errors[name] = f"{type(err).__name__}: {err}".splitlines()[0]
    return errors


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _build(spec: dict[str, Any]) -> tuple[Any, str]:
    from perceptiq.models._base import MODELS, create_model

    if spec["family"] == "ensemble":
        from perceptiq.models.ensemble import ensemble_config

        return create_model("ensemble", members=ensemble_config(spec["members"]).members), "ensemble"
    if spec["variant"] is not None:
        return create_model(spec["variant"]), spec["variant"]
    errors = []
    names = MODELS.names()
    if spec.get("prefer") in names:  # the preferred variant first, then the others in name order
        names = [spec["prefer"], *(n for n in names if n != spec["prefer"])]
    for name in names:
        if MODELS.create(name).family != spec["family"]:
            continue
        try:
            return create_model(name), name
        except Exception as err:  # noqa: BLE001 - try the next variant, report all failures
            errors.append(f"{name}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    raise RuntimeError("; ".join(errors) or f"no registered variant of family {spec['family']!r}")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """One case in this process (the subprocess side): build, score once for memory, then time."""
    torch.set_num_threads(spec["threads"])
    import_errors = _import_families()
    if spec["family"] in import_errors:
        return {"error": f"import failed: {import_errors[spec['family']]}"}
    device = spec["device"]
    torch.manual_seed(0)
    start = time.perf_counter()
    model, variant = _build(spec)
    model = model.eval().to(device)
    build_s = time.perf_counter() - start
    h, w = spec["size"]
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(spec["batch"], 3, h, w, generator=generator).to(device)
    ref = (
        torch.rand(spec["batch"], 3, h, w, generator=generator).to(device) if model.needs_reference else None
    )
    call = model.predict if spec.get("call") == "predict" else model.score

    def once() -> float:
        _sync(device)
        t0 = time.perf_counter()
        if ref is None:
            call(x)
        else:
            call(x, ref)
        _sync(device)
        return time.perf_counter() - t0

    gc.collect()
    base_rss = _maxrss_mib()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated() / 2**20
    times = [once()]
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20 - base_cuda
    else:
        peak = _maxrss_mib() - base_rss
    if times[0] < spec["repeat_under"]:
        times += [once() for _ in range(spec["repeat"])]
    best = min(times[1:]) if len(times) > 1 else times[0]
    params = sum(p.numel() for p in model.parameters())
    return {
        "variant": variant,
        "params_m": params / 1e6,
        "build_s": build_s,
        "first_call_s": times[0],
        "best_call_s": best,
        "timed_calls": max(1, len(times) - 1),
        "images_per_s": spec["batch"] / best,
        "peak_mib": peak,
        "process_maxrss_mib": _maxrss_mib(),
        "policy": model.input_policy.mode,
    }


def _run_subprocess(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def _row_name(case: dict[str, Any]) -> str:
    return case["family"] + (" (predict)" if case.get("call") == "predict" else "")


def _print(rows: list[dict[str, Any]], device: str) -> None:
    print(f"\n== models on {device} ==")
    header = (
        f"{'family':<26} {'variant':<30} {'size':>10} {'batch':>5} {'params M':>9} "
        f"{'img/s':>9} {'s/img':>8} {'peak MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<26} {'-':<30} {r['size']:>10} {r['batch']:>5}  error: {r['error']}")
            continue
        print(
            f"{r['name']:<26} {r['variant']:<30} {r['size']:>10} {r['batch']:>5} {r['params_m']:>9.2f} "
            f"{r['images_per_s']:>9.3f} {1 / r['images_per_s']:>8.3f} {r['peak_mib']:>9.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--families", default="", help="comma-separated families (default: all)")
    parser.add_argument("--sizes", default="224,1024,2040x1152")
    parser.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per case (1: robust on a shared machine)"
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--repeat-under", type=float, default=20.0, help="repeat only calls faster than this")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per case")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(json.loads(args.worker))))
        return
    wanted = {f for f in args.families.split(",") if f}
    cases = [c for c in CASES if not wanted or c["family"] in wanted]
    sizes = [s for s in args.sizes.split(",") if s]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose from {list(SIZES)}")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    result: dict[str, Any] = {
        "setup": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "sizes_hw": {s: SIZES[s] for s in sizes},
            "batch": {s: BATCH[s] for s in sizes},
            "repeat": args.repeat,
            "repeat_under_s": args.repeat_under,
            "weights": "random (no downloads)",
        },
        "devices": {},
    }
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            result["devices"]["cuda"] = {"skipped": "CUDA is not available on this machine"}
            print("\n== models on cuda == skipped: CUDA is not available on this machine")
            continue
        if device == "cuda":
            result["setup"]["cuda_device"] = torch.cuda.get_device_name(0)
        rows = []
        for case in cases:
            for size in sizes:
                spec = {
                    **case,
                    "size": SIZES[size],
                    "batch": BATCH[size],
                    "device": device,
                    "threads": args.threads,
                    "repeat": args.repeat,
                    "repeat_under": args.repeat_under,
                }
                row = {"name": _row_name(case), "size": size, "batch": BATCH[size]}
                row.update(_run_subprocess(spec, args.timeout))
                rows.append(row)
                print(json.dumps(row), flush=True)
        result["devices"][device] = {"rows": rows}
        _print(rows, device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
