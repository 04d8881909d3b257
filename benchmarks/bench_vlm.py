"""Benchmark of the chat-VLM scorers and trainers: images/s of ``vlm_levels`` and ``vlm_reasoning`` beside
plain transformers doing the same work, and the step time of the ``vq_r1_grpo`` and ``deqa_sft`` trainers.

Rows (each timed after one warm-up call, best of ``--repeat``):

* ``vlm_levels``: perceptiq's batched level-token score (one forward pass over a batch) vs transformers
  called image by image (processor, forward, softmax of the five level logits): the peer a user would write;
* ``vlm_reasoning``: K = ``--samples`` sampled answers per image, perceptiq vs ``generate`` with
  ``num_return_sequences=K`` (the same sampling), at most ``--new-tokens`` tokens per answer;
* ``grpo_step`` / ``deqa_sft_step``: seconds per optimiser step of ``perceptiq train vq_r1_grpo`` (B
  images x K answers) and ``deqa_sft`` (B images), from the trainer's own log, steps 2.. (the first
  includes set-up).

Without ``--checkpoint`` a tiny random-initialised Qwen2-VL is built locally (hidden size 64, two layers;
its processor keeps up to ``--size``^2 pixels, so the vision tokens are those of a real image of that size:
448^2 -> 256 tokens); speeds then measure the pipeline around the model (processor, padding, sampling,
rewards), not a real model's compute. With ``--checkpoint`` (a local ``save_pretrained`` folder or cached
hub id, e.g. Qwen2.5-VL-7B-Instruct on a GPU) the same rows measure that model.

Usage: ``python benchmarks/bench_vlm.py [--checkpoint DIR] [--device cpu|cuda] [--size 448] [--images 8]
[--samples 6] [--new-tokens 32] [--steps 4] [--threads 2]``. Results: ``benchmarks/results/bench_vlm.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_vlm.json"


def _best(fn: Any, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _levels_rows(ckpt: str, images: torch.Tensor, device: str, repeat: int) -> list[dict[str, Any]]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from perceptiq.models import create_model
    from perceptiq.models.vlm_levels import chat_text

    model = create_model("vlm_levels", checkpoint=ckpt).to(device).eval()
    x = images.to(device)

    def ours() -> None:
        with torch.no_grad():
            model(x)

    processor = AutoProcessor.from_pretrained(ckpt, local_files_only=True)
    vlm = AutoModelForImageTextToText.from_pretrained(ckpt, local_files_only=True).to(device).eval()
    text = chat_text(model.processor, model.config.prompt, model.config.answer_prefix)
    ids = model.answer_token_ids(model.config.level_words, model.config.answer_prefix)

    def peer() -> None:
        with torch.no_grad():
            for img in images:
                inputs = processor(text=[text], images=[img], do_rescale=False, return_tensors="pt")
                inputs = inputs.to(device)
                torch.softmax(vlm(**inputs).logits[0, -1, ids], dim=-1)

    n = len(images)
    return [
        {"row": "vlm_levels", "impl": "perceptiq (batched)", "images_per_s": n / _best(ours, repeat)},
        {"row": "vlm_levels", "impl": "transformers, one by one", "images_per_s": n / _best(peer, repeat)},
    ]


def _reasoning_rows(
    ckpt: str, images: torch.Tensor, device: str, repeat: int, samples: int, new_tokens: int
) -> list[dict[str, Any]]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from perceptiq.models import create_model

    model = create_model("vlm_reasoning", checkpoint=ckpt, samples=samples, max_new_tokens=new_tokens)
    model = model.to(device).eval()
    x = images.to(device)

    def ours() -> None:
        model.explain(x)

    processor = AutoProcessor.from_pretrained(ckpt, local_files_only=True)
    vlm = AutoModelForImageTextToText.from_pretrained(ckpt, local_files_only=True).to(device).eval()
    text = model.prompt_text()

    def peer() -> None:
        with torch.no_grad():
            for img in images:
                inputs = processor(text=[text], images=[img], do_rescale=False, return_tensors="pt")
                inputs = inputs.to(device)
                torch.manual_seed(0)  # perceptiq's per-image seed: the same answers, so the same lengths
                out = vlm.generate(
                    **inputs, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new_tokens,
                    num_return_sequences=samples, pad_token_id=processor.tokenizer.pad_token_id,
                )  # fmt: skip
                new = out[:, inputs["input_ids"].shape[1] :]
                processor.tokenizer.batch_decode(new, skip_special_tokens=True)

    n = len(images)
    label = f"vlm_reasoning (K={samples}, {new_tokens} tokens)"
    return [
        {"row": label, "impl": "perceptiq", "images_per_s": n / _best(ours, repeat)},
        {"row": label, "impl": "transformers generate", "images_per_s": n / _best(peer, repeat)},
    ]


def _manifest(folder: Path, n: int, size: int) -> Path:
    from PIL import Image

    rows = []
    for i in range(n):
        path = folder / f"img{i:03d}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        rows.append({"image": str(path), "mos": 1.0 + 4.0 * i / max(n - 1, 1), "split": "train"})
    out = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


def _train_rows(ckpt: str, folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from perceptiq.training.config import load_config
    from perceptiq.training.loop import train

    manifest = _manifest(folder, max(args.images, 4), args.size)
    common = [
        f"model.options.checkpoint={ckpt}", f"data.train={manifest}", "data.batch_size=2", "amp=false",
        "data.num_workers=0", f"max_steps={args.steps}", "checkpoint.every_steps=1000", "log.progress=false",
        "log.tensorboard=false", f"device={args.device}", "schedule.warmup=0",
    ]  # fmt: skip
    rows = []
    recipes = {
        "grpo_step": ("vq_r1_grpo", [f"grpo.num_generations={args.samples}",
                                     f"grpo.max_completion_length={args.new_tokens}"]),
        "deqa_sft_step": ("deqa_sft", []),
    }  # fmt: skip
    for row, (recipe, extra) in recipes.items():
        out = folder / recipe
        train(load_config(recipe, [f"output_dir={out}", *common, *extra]))
        log = pd.read_csv(out / "train_log.csv")
        stamps = log.dropna(subset=["loss"])
        per_step = stamps["step_time"].iloc[1:] if "step_time" in stamps else None
        if per_step is None or per_step.empty:  # transformers' Trainer: total runtime over the steps
            seconds = float(log["train_runtime"].dropna().iloc[-1]) / args.steps
        else:
            seconds = float(per_step.median())
        what = f"2 images x K={args.samples}" if recipe == "vq_r1_grpo" else "2 images"
        rows.append({"row": row, "impl": f"perceptiq train {recipe} ({what})", "seconds_per_step": seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="chat VLM folder or cached hub id (default: tiny)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=448, help="image side in pixels")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-vlm-") as tmp:
        folder = Path(tmp)
        ckpt = args.checkpoint
        if ckpt is None:
            sys.path.insert(0, str(ROOT / "tests"))
            from tiny_vlm import build_tiny_vlm

            ckpt = str(build_tiny_vlm(folder / "tiny", max_pixels=args.size * args.size))
        images = torch.rand(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
        rows = _levels_rows(ckpt, images, args.device, args.repeat)
        rows += _reasoning_rows(ckpt, images, args.device, args.repeat, args.samples, args.new_tokens)
        rows += _train_rows(ckpt, folder, args)
    print(f"{'row':<40} {'implementation':<44} {'value':>12}")
    for r in rows:
        speed = r.get("images_per_s")
        value = f"{speed:.2f} img/s" if speed is not None else f"{r['seconds_per_step']:.2f} s/step"
        print(f"{r['row']:<40} {r['impl']:<44} {value:>12}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "checkpoint": args.checkpoint or "tiny random Qwen2-VL (hidden 64, 2 layers)",
        "device": args.device, "threads": args.threads, "image_size": args.size, "images": args.images,
        "samples": args.samples, "new_tokens": args.new_tokens, "torch": torch.__version__,
        "machine": platform.machine(), "cpu_count": __import__("os").cpu_count(),
    }  # fmt: skip
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
