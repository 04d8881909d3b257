"""Benchmark of perceptiq's classical metrics against pyiqa and piq on the same inputs, in one run.

Metrics: PSNR, SSIM, MS-SSIM (full reference) and NIQE, BRISQUE (no reference). Inputs:

- ``8x512x512``: eight Kodak images (``../shared/data/pristine_natural/kodak24``) centre-cropped to
  512x512 as references, each blurred (Gaussian, sigma 1) with Gaussian noise (sigma 4/255) added
  and rounded to 8 bits as the distorted images;
- ``1x2040x1152``: one Urban100 image upscaled x2 (bicubic) and cropped to 2040x1152 (the ISRGen-QA
  resolution), distorted the same way.

Every row fixes one convention and configures each library to follow it, so the values must agree
(the table prints the largest per-image difference); a peer that has no such option is "n/a" with
the reason. Times are medians of repeats after a warm-up, with ``torch.set_num_threads(2)``; the
speed-up is the fastest peer's median time divided by perceptiq's. Without network, the peers'
parameter files for NIQE and BRISQUE are written at run time into a temporary torch hub directory
from the published parameters in ``../shared/data/params`` (the same numbers those files hold).
``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` for the run (see the comment at the imports).

Target (issue 3): on CPU at least 2x faster than the fastest of pyiqa and piq for each metric at
equal values; on a GPU, report images/s at 2K (``--device cuda``).

Usage: python benchmarks/bench_metrics.py [--device cpu|cuda] [--out benchmarks/results/bench_metrics.json]
       [--all-peers]  (also time pyiqa's float64 RGB variants of SSIM/MS-SSIM, ~30 s per call)
"""

from __future__ import annotations

import os

# Idle OpenMP workers sleep instead of spinning. On a shared machine (other processes on the same
# cores) spinning workers starve the thread doing the work, which slows every library (ours, with
# many small parallel ops, up to 20x); set OMP_WAIT_POLICY=ACTIVE to measure with spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.io  # noqa: E402
import scipy.ndimage  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import perceptiq.metrics.fr  # noqa: E402, F401  (registers the full-reference metrics)
from perceptiq.metrics.base import create_metric  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
Scorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Row:
    """One metric under one convention, with the callables of each library (or why a peer is n/a)."""

    metric: str
    label: str
    convention: str
    perceptiq: Scorer
    peers: dict[str, Scorer | str]
    agree_atol: float
    results: dict[str, dict[str, object]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# inputs


def _load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


def _distort(ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    blurred = scipy.ndimage.gaussian_filter(ref, sigma=(1.0, 1.0, 0.0), mode="reflect")
    noisy = blurred + rng.normal(0.0, 4.0 / 255.0, ref.shape)
    return np.clip(np.round(noisy * 255.0), 0, 255) / 255.0


def _to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().contiguous()


def build_inputs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{name: (distorted, reference)}`` as float32 (B, 3, H, W) in [0, 1] on 8-bit levels."""
    rng = np.random.default_rng(0)
    refs = []
    for i in range(1, 9):
        img = _load(DATA / "pristine_natural" / "kodak24" / f"kodim{i:02d}.webp")
        h, w = img.shape[:2]
        top, left = (h - 512) // 2, (w - 512) // 2
        refs.append(img[top : top + 512, left : left + 512])
    small = (_to_tensor([_distort(r, rng) for r in refs]), _to_tensor(refs))
    base = torch.from_numpy(_load(DATA / "pristine_natural" / "urban100" / "img_001.webp")).permute(2, 0, 1)
    up = F.interpolate(base[None].float(), scale_factor=2.0, mode="bicubic", align_corners=False)
    up = (up.clamp(0, 1) * 255).round() / 255
    top, left = (up.shape[-2] - 1152) // 2, (up.shape[-1] - 2040) // 2
    big_ref = up[0, :, top : top + 1152, left : left + 2040].permute(1, 2, 0).double().numpy()
    big = (_to_tensor([_distort(big_ref, rng)]), _to_tensor([big_ref]))
    return {"8x512x512": small, "1x2040x1152": big}


# ---------------------------------------------------------------------------------------------------
# peers (pyiqa, piq) with their parameter files placed offline


def _libsvm_model(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(sv_coef (n,), sv (n, 36)) of a libsvm text model, the layout pyiqa and piq load."""
    lines = path.read_text().splitlines()
    start = lines.index("SV") + 1
    coefs, vectors = [], []
    for line in lines[start:]:
        parts = line.split()
        if not parts:
            continue
        coefs.append(float(parts[0]))
        vec = np.zeros(36)
        for item in parts[1:]:
            idx, val = item.split(":")
            vec[int(idx) - 1] = float(val)
        vectors.append(vec)
    return torch.tensor(coefs, dtype=torch.float32), torch.tensor(np.stack(vectors), dtype=torch.float32)


def place_peer_parameters(hub_dir: Path) -> None:
    """Write the NIQE/BRISQUE parameter files where pyiqa and piq look for them (no download)."""
    (hub_dir / "pyiqa").mkdir(parents=True, exist_ok=True)
    (hub_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    niqe = np.load(DATA / "params" / "niqe" / "niqe_pristine_params.npz")
    scipy.io.savemat(
        hub_dir / "pyiqa" / "niqe_modelparameters.mat",
        {"mu_prisparam": niqe["mu_pris_param"], "cov_prisparam": niqe["cov_pris_param"]},
    )
    svm = _libsvm_model(DATA / "params" / "brisque" / "brisque_live_allmodel")
    torch.save(svm, hub_dir / "pyiqa" / "brisque_svm_weights.pth")
    torch.save(svm, hub_dir / "checkpoints" / "brisque_svm_weights.pt")


def _pyiqa(name: str, device: torch.device, **options: object) -> Scorer | str:
    try:
        import pyiqa

        model = pyiqa.create_metric(name, device=device, **options)
    except Exception as err:  # a peer that cannot be built is reported, not fatal
        return f"unavailable: {type(err).__name__}: {err}"
    if model.metric_mode == "FR":
        return lambda d, r: model(d, r).flatten()
    return lambda d, r: model(d).flatten()


def build_rows(all_peers: bool, device: torch.device) -> list[Row]:
    import piq

    slow = "not timed: float64 RGB variant, ~30 s per call on 2 cores (use --all-peers)"
    no_lum = "n/a: piq has no luminance option for this metric"
    return [
        Row(
            "psnr",
            "RGB",
            "RGB channels, peak 1 (scikit-image peak_signal_noise_ratio)",
            create_metric("psnr"),
            {
                "pyiqa": _pyiqa("psnr", device),
                "piq": lambda d, r: piq.psnr(d, r, data_range=1.0, reduction="none"),
            },
            1e-3,
        ),
        Row(
            "ssim",
            "RGB",
            "RGB channel mean, Gaussian 11/1.5, no downsampling (scikit-image structural_similarity)",
            create_metric("ssim", color="rgb"),
            {
                "pyiqa": _pyiqa("ssimc", device) if all_peers else slow,
                "piq": lambda d, r: piq.ssim(d, r, data_range=1.0, downsample=False, reduction="none"),
            },
            2e-4,
        ),
        Row(
            "ssim",
            "lum8",
            "luminance rounded to 8-bit levels, no downsampling (ssim.m; pyiqa default)",
            create_metric("ssim", color="gray", quantize=True),
            {"pyiqa": _pyiqa("ssim", device), "piq": no_lum},
            2e-4,
        ),
        Row(
            "ms_ssim",
            "RGB",
            "RGB channel mean, product of 5 scales (piq default)",
            create_metric("ms_ssim", color="rgb"),
            {
                "pyiqa": _pyiqa("ms_ssim", device, test_y_channel=False) if all_peers else slow,
                "piq": lambda d, r: piq.multi_scale_ssim(d, r, data_range=1.0, reduction="none"),
            },
            2e-4,
        ),
        Row(
            "ms_ssim",
            "lum8",
            "luminance rounded to 8-bit levels, product of 5 scales (pyiqa default)",
            create_metric("ms_ssim", color="gray", quantize=True),
            {"pyiqa": _pyiqa("ms_ssim", device), "piq": no_lum},
            2e-4,
        ),
        Row(
            "niqe",
            "lum8",
            "luminance rounded to 8-bit levels, pristine model of the NIQE release (pyiqa default)",
            _nr_metric("niqe"),
            {"pyiqa": _pyiqa("niqe", device), "piq": "n/a: piq has no NIQE"},
            2e-2,
        ),
        Row(
            "brisque",
            "lum",
            "luminance on the 0-255 scale, LIVE SVR of the BRISQUE release (each library's default)",
            _nr_metric("brisque"),
            {
                "pyiqa": _pyiqa("brisque", device),
                "piq": lambda d, r: piq.brisque(d, data_range=1.0, reduction="none"),
            },
            5e-2,
        ),
    ]


def _nr_metric(name: str) -> Scorer:
    import perceptiq.metrics.nr  # noqa: F401  (registers NIQE and BRISQUE)

    metric = create_metric(name)
    return lambda d, r: metric(d)


# ---------------------------------------------------------------------------------------------------
# timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_row(row: Row, inputs: dict[str, tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> None:
    """Warm up, then time every implementation round-robin, the same number of times (3 to 7)."""
    impls: dict[str, Scorer] = {"perceptiq": row.perceptiq}
    impls.update({k: v for k, v in row.peers.items() if callable(v)})
    for input_name, (dist, ref) in inputs.items():
        dist, ref = dist.to(device), ref.to(device)
        values, times, warm = {}, {k: [] for k in impls}, {}
        with torch.no_grad():
            for name, fn in impls.items():
                _sync(device)
                start = time.perf_counter()
                values[name] = fn(dist, ref).double().cpu()
                _sync(device)
                warm[name] = time.perf_counter() - start
            # interleaved repeats, as many for every library, so that load changes hit all alike
            repeats = max(3, min(7, int(6.0 / max(warm.values()))))
            for _ in range(repeats):
                for name, fn in impls.items():
                    _sync(device)
                    start = time.perf_counter()
                    fn(dist, ref)
                    _sync(device)
                    times[name].append(time.perf_counter() - start)
        result: dict[str, object] = {"batch": int(dist.shape[0])}
        for name in impls:
            median = statistics.median(times[name])
            result[name] = {
                "mean_value": float(values[name].mean()),
                "max_abs_diff_vs_perceptiq": float((values[name] - values["perceptiq"]).abs().max()),
                "median_s": median,
                "min_s": min(times[name]),
                "repeats": len(times[name]),
                "images_per_s": dist.shape[0] / median,
            }
        peer_times = [result[p]["median_s"] for p in row.peers if p in result]
        peer_mins = [result[p]["min_s"] for p in row.peers if p in result]
        ours = result["perceptiq"]
        result["speedup_vs_fastest_peer"] = min(peer_times) / ours["median_s"] if peer_times else None
        result["speedup_vs_fastest_peer_min"] = min(peer_mins) / ours["min_s"] if peer_mins else None
        result["values_agree"] = all(
            result[p]["max_abs_diff_vs_perceptiq"] <= row.agree_atol for p in row.peers if p in result
        )
        row.results[input_name] = result


# ---------------------------------------------------------------------------------------------------
# report


def _cell(result: dict[str, object], peer: str, reason: Scorer | str | None) -> str:
    if peer not in result:
        return str(reason).split(":")[0] if reason is not None else "-"
    r = result[peer]
    return f"{r['median_s'] * 1e3:9.1f} ms  {r['mean_value']:8.4f}"


def report(rows: list[Row], device: torch.device, console: Console) -> None:
    threads = torch.get_num_threads()
    table = Table(
        title=f"perceptiq vs pyiqa vs piq on {device.type}, {threads} threads (median time, mean value)"
    )
    for col in ("metric", "conv.", "input", "perceptiq", "pyiqa", "piq", "max |Δ|", "speed-up", "(on min)"):
        table.add_column(col, justify="right" if col not in ("metric", "conv.", "input") else "left")
    for row in rows:
        for input_name, res in row.results.items():
            speed = res["speedup_vs_fastest_peer"]
            diffs = [res[p]["max_abs_diff_vs_perceptiq"] for p in row.peers if p in res]
            diff = f"{max(diffs):.1e}" + ("" if res["values_agree"] else " (!)") if diffs else "-"
            table.add_row(
                row.metric,
                row.label,
                input_name,
                _cell(res, "perceptiq", None),
                _cell(res, "pyiqa", row.peers.get("pyiqa")),
                _cell(res, "piq", row.peers.get("piq")),
                diff,
                f"{speed:.1f}x" if speed is not None else "-",
                f"{res['speedup_vs_fastest_peer_min']:.1f}x" if speed is not None else "-",
            )
    console.print(table)
    console.print(
        "speed-up = fastest peer's median time / perceptiq's median time; '(on min)' uses the fastest repeat "
        "of each, which is less sensitive to other processes on the machine."
    )
    for row in rows:
        console.print(
            f"{row.metric} {row.label}: {row.convention}; values agree if max |Δ| <= {row.agree_atol:g}"
        )
        for peer, why in row.peers.items():
            if not callable(why):
                console.print(f"    {peer}: {why}")
    if device.type == "cuda":
        for row in rows:
            res = row.results.get("1x2040x1152")
            if res:
                console.print(
                    f"{row.metric} {row.label}: {res['perceptiq']['images_per_s']:.1f} images/s at 2040x1152"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_metrics.json")
    parser.add_argument(
        "--all-peers", action="store_true", help="also time pyiqa's slow float64 RGB variants"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    device = torch.device(args.device)
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as hub_dir:
        torch.hub.set_dir(hub_dir)  # before pyiqa is imported: it reads the hub dir at import time
        place_peer_parameters(Path(hub_dir))
        inputs = build_inputs()
        rows = build_rows(args.all_peers, device)
        load_before = os.getloadavg()
        for row in rows:
            console.print(f"[dim]timing {row.metric} {row.label}[/dim]")
            time_row(row, inputs, device)
        load_after = os.getloadavg()
    report(rows, device, console)
    console.print(
        f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    payload = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "processor": platform.processor(),
        "load_average_before_after": [load_before[0], load_after[0]],
        "rows": [
            {
                "metric": r.metric,
                "label": r.label,
                "convention": r.convention,
                "peers_not_timed": {k: v for k, v in r.peers.items() if not callable(v)},
                "agree_atol": r.agree_atol,
                "results": r.results,
            }
            for r in rows
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
