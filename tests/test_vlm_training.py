"""Chat-VLM trainers: GRPO on TRL (recipe vq_r1_grpo) and DeQA level-token fine-tuning (recipe deqa_sft), run
for a few steps on a tiny random Qwen2-VL on CPU. The rewards and advantages the trainer used are checked
against perceptiq.training.rl on the same completions, the DeQA loss against a hand computation, resume of a
killed run against the uninterrupted run, and the two-process layout (whole groups on one device, one dataset
per generation batch) with torchrun."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("trl")
pytest.importorskip("peft")

from perceptiq.errors import InputError  # noqa: E402
from perceptiq.functional.levels import mos_to_level_index  # noqa: E402
from perceptiq.losses.distribution import deqa_soft_label  # noqa: E402
from perceptiq.models import create_model  # noqa: E402
from perceptiq.training.config import load_config  # noqa: E402
from perceptiq.training.loop import train  # noqa: E402
from perceptiq.training.rl import fidelity_reward, format_reward, group_advantages, parse_answer  # noqa: E402
from perceptiq.training.vlm_data import grouped_generation_order, vlm_training_rows  # noqa: E402
from perceptiq.training.vlm_sft import LevelAnswerCollator, deqa_token_loss  # noqa: E402
from tiny_vlm import build_tiny_vlm  # noqa: E402

K = 2
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return build_tiny_vlm(tmp_path_factory.mktemp("qwen2_vl"))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """12 small images in two datasets on different MOS scales (1-5 and 0-100), 8 train and 4 val rows."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("vlm_data")
    rows = []
    for i in range(12):
        path = folder / f"img{i:02d}.png"
        pixels = np.random.default_rng(i).integers(0, 256, (48 + 4 * i, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        dataset, mos = ("koniq", 1.0 + 0.7 * (i % 6)) if i < 6 else ("spaq", 12.0 * (i % 6) + 5.0)
        rows.append({"image": str(path), "mos": mos, "mos_std": 0.4 if i < 6 else 9.0, "dataset": dataset,
                     "split": "train" if i % 6 < 4 else "val"})  # fmt: skip
    out = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


def _grpo(checkpoint: Path, manifest: Path, out: Path, *extra: str) -> list[str]:
    return [
        f"output_dir={out}", f"model.options.checkpoint={checkpoint}", f"data.train={manifest}",
        "data.batch_size=2", f"grpo.num_generations={K}", "grpo.max_completion_length=6",
        "model.options.max_new_tokens=6", "amp=false", "data.num_workers=0", "checkpoint.every_steps=1",
        "checkpoint.keep_last=3", "log.progress=false", "log.tensorboard=false", *extra,
    ]  # fmt: skip


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ------------------------------------------------------------------------------------------ data layout


def test_training_rows_rescale_each_dataset_to_one_to_five(manifest):
    rows = vlm_training_rows(str(manifest), "train")
    raw = pd.read_csv(manifest)
    for name, part in raw.groupby("dataset"):
        low, high = part["mos"].min(), part["mos"].max()
        train = part[part["split"] == "train"]
        got = rows[rows["dataset"] == name]
        np.testing.assert_allclose(got["mos"], 4 * (train["mos"].to_numpy() - low) / (high - low) + 1)
        np.testing.assert_allclose(got["std"], 4 * train["mos_std"].to_numpy() / (high - low))
    assert rows["mos"].between(1, 5).all()


def test_generation_order_keeps_groups_whole_and_one_dataset_per_batch():
    datasets = ["a"] * 7 + ["b"] * 5
    order = grouped_generation_order(
        datasets, images_per_batch=2, num_generations=3, repeat_count=2, seed=0, epoch=1
    )
    block = 2 * 3
    batches = [order[i : i + block] for i in range(0, len(order), block)]
    assert len(batches) == 2 * (7 // 2 + 5 // 2)  # incomplete batches dropped, each batch twice
    for first, again in zip(batches[::2], batches[1::2], strict=True):
        assert first == again  # one generation reused by repeat_count optimiser steps
    for batch in batches:
        assert len({datasets[i] for i in batch}) == 1
        groups = [batch[j : j + 3] for j in range(0, block, 3)]
        assert all(len(set(g)) == 1 for g in groups)
        assert len({g[0] for g in groups}) == 2
    seen = [b[0] for b in batches[::2] for b in (b[0:3], b[3:6])]
    assert len(seen) == len(set(seen))  # each image at most once per epoch
    assert order == grouped_generation_order(datasets, images_per_batch=2, num_generations=3, repeat_count=2,
                                             seed=0, epoch=1)  # fmt: skip
    assert order != grouped_generation_order(datasets, images_per_batch=2, num_generations=3, repeat_count=2,
                                             seed=0, epoch=2)  # fmt: skip


def test_packaged_recipes_have_the_papers_settings():
    grpo = load_config("vq_r1_grpo")
    assert (grpo.trainer, grpo.model.name) == ("grpo", "vlm_reasoning")
    g = grpo.grpo
    assert (g.num_generations, g.beta, g.epsilon, g.temperature, g.max_completion_length) == (
        6,
        0.04,
        0.2,
        1.0,
        256,
    )
    assert (grpo.optim.lr, g.loss_type, g.reward, g.format_weight) == (1e-6, "grpo", "fidelity", 1.0)
    sft = load_config("deqa_sft")
    assert (sft.trainer, sft.model.name, sft.deqa.weight_softkl) == ("deqa_sft", "vlm_levels", 1.0)


def test_chat_vlm_recipes_refuse_supervised_only_keys(checkpoint, manifest, tmp_path):
    with pytest.raises(InputError, match="loss"):
        load_config("vq_r1_grpo", ["loss=[{name: mse}]"])
    with pytest.raises(InputError, match="num_generations"):
        load_config("vq_r1_grpo", ["grpo.num_generations=1"])
    cfg = load_config("vq_r1_grpo", _grpo(checkpoint, manifest, tmp_path, "model.name=vlm_levels"))
    with pytest.raises(InputError, match="vlm_reasoning"):
        train(cfg)


# ---------------------------------------------------------------------------------------------- GRPO


def test_grpo_rewards_and_advantages_are_those_of_training_rl(checkpoint, manifest, tmp_path):
    out = tmp_path / "run"
    cfg = load_config("vq_r1_grpo", _grpo(checkpoint, manifest, out, "max_steps=3", "grpo.format_weight=0.5"))
    result = train(cfg)
    assert result.step == 3
    rows = _log(out / "completions.jsonl")
    assert sorted({r["step"] for r in rows}) == [0, 1, 2]
    assert len(rows) == 3 * 2 * K
    train_rows = vlm_training_rows(str(manifest), "train").set_index("image")
    for step in range(3):
        batch = [r for r in rows if r["step"] == step]
        assert len({r["dataset"] for r in batch}) == 1
        for r in batch:
            assert r["mos"] == pytest.approx(train_rows.loc[r["image"], "mos"])
            parsed = parse_answer(r["completion"])
            if parsed.ok:
                assert r["score"] == pytest.approx(parsed.value)
            else:  # the reference's random integer fallback
                assert r["score"] in {1.0, 2.0, 3.0, 4.0, 5.0}
        scores = torch.tensor([r["score"] for r in batch], dtype=torch.float64).reshape(-1, K)
        mos = torch.tensor([r["mos"] for r in batch[::K]], dtype=torch.float64)
        expected = fidelity_reward(scores, mos).reshape(-1)
        np.testing.assert_allclose([r["ranking_reward"] for r in batch], expected.numpy(), rtol=1e-6)
        fmt = [format_reward(r["completion"]) for r in batch]
        assert [r["format_reward"] for r in batch] == fmt
        total = expected + 0.5 * torch.tensor(fmt, dtype=torch.float64)
        advantages = group_advantages(total, K)
        np.testing.assert_allclose([r["advantage"] for r in batch], advantages.numpy(), atol=2e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["validation"]["images"] == 4
    model = create_model("vlm_reasoning", checkpoint=summary["final"], max_new_tokens=4)
    assert model.has_trained_weights
    assert model(torch.rand(1, 3, 56, 56)).shape == (1,)


def test_grpo_failure_reward_option_scores_malformed_answers_with_it(checkpoint, manifest, tmp_path):
    out = tmp_path / "run"
    extra = ("max_steps=1", "grpo.malformed=failure_reward", "grpo.failure_reward=-0.25")
    train(load_config("vq_r1_grpo", _grpo(checkpoint, manifest, out, *extra)))
    rows = _log(out / "completions.jsonl")
    for r in rows:
        if not parse_answer(r["completion"]).ok:
            assert r["score"] is None
            assert r["ranking_reward"] == -0.25


def test_grpo_with_lora_saves_a_merged_model(checkpoint, manifest, tmp_path):
    out = tmp_path / "run"
    extra = ("max_steps=1", "lora.enabled=true", "lora.r=4", "optim.lr=0.05", "data.train_split=train")
    train(load_config("vq_r1_grpo", _grpo(checkpoint, manifest, out, *extra)))
    from safetensors.torch import load_file

    saved = load_file(out / "final" / "model.safetensors")
    assert not any("lora" in key for key in saved)
    base = load_file(checkpoint / "model.safetensors")
    assert set(saved) == set(base)


def test_grpo_resume_after_sigkill_repeats_the_uninterrupted_run(checkpoint, manifest, tmp_path):
    steps = ("max_steps=6", "optim.lr=1e-3")  # a step moves weights by ~1e-3: a lost restore would show
    full, killed = tmp_path / "full", tmp_path / "killed"
    train(load_config("vq_r1_grpo", _grpo(checkpoint, manifest, full, *steps)))
    sets = [f"--set={s}" for s in _grpo(checkpoint, manifest, killed, *steps)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "perceptiq", "train", "vq_r1_grpo", *sets],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not (killed / "checkpoints" / "checkpoint-2").exists():
        assert proc.poll() is None, "the run ended before its second checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "final").exists()
    result = train(load_config("vq_r1_grpo", _grpo(checkpoint, manifest, killed, *steps)), resume=True)
    assert result.step == 6
    assert _log(killed / "completions.jsonl") == _log(full / "completions.jsonl")
    from safetensors.torch import load_file

    a, b = load_file(full / "final" / "model.safetensors"), load_file(killed / "final" / "model.safetensors")
    assert set(a) == set(b)
    for key in a:  # equal up to float rounding (the optimiser state round trip)
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_grpo_on_two_processes_keeps_groups_whole_on_one_device(checkpoint, manifest, tmp_path):
    out = tmp_path / "ddp"
    sets = [f"--set={s}" for s in _grpo(checkpoint, manifest, out, "max_steps=2", "data.batch_size=1")]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        f"--master-port={port}",
    ]
    done = subprocess.run(
        [*torchrun, "-m", "perceptiq", "train", "vq_r1_grpo", *sets],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [_log(out / f"completions_rank{r}.jsonl") for r in (0, 1)]
    for step in (0, 1):
        per_rank = [[r for r in rows if r["step"] == step] for rows in ranks]
        assert all(len(rows) == K for rows in per_rank)  # one image (its whole group) per device
        assert len({r["image"] for r in per_rank[0]}) == 1
        assert {r["image"] for r in per_rank[0]}.isdisjoint({r["image"] for r in per_rank[1]})
        assert len({r["dataset"] for rows in per_rank for r in rows}) == 1  # one dataset per generation
        for rows in per_rank:  # no partner image on the device: no ranking reward, as the reference
            assert all(r["ranking_reward"] is None for r in rows)
    assert (out / "final" / "model.safetensors").exists()


# ------------------------------------------------------------------------------------------- DeQA SFT


def test_deqa_token_loss_matches_a_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11)
    labels = torch.full((2, 6), -100)
    labels[0, 3:5], labels[1, 4:6] = torch.tensor([7, 2]), torch.tensor([1, 9])
    positions = torch.tensor([5, 3])
    level_ids = [4, 5, 6, 7, 8]
    soft = torch.tensor([[0.1, 0.2, 0.4, 0.2, 0.1], [0.0, 0.0, 0.5, 0.5, 0.0]])
    got = deqa_token_loss(logits, labels, positions, soft, level_ids, weight_softkl=0.7)
    logp = torch.log_softmax(logits, dim=-1)
    ce_terms = [-logp[0, 2, 7], -logp[0, 3, 2], -logp[1, 3, 1], -logp[1, 4, 9]]
    ce = sum(ce_terms) / 4
    kl = 0.0
    for i, pos in enumerate(positions.tolist()):
        for j, tok in enumerate(level_ids):
            if soft[i, j] > 0:
                kl += soft[i, j] * (math.log(soft[i, j]) - logp[i, pos - 1, tok])
    assert float(got) == pytest.approx(float(ce + 0.7 * kl / 2), rel=1e-5)


def test_collator_masks_the_prompt_and_the_level_token(checkpoint, manifest):
    from PIL import Image

    model = create_model("vlm_levels", checkpoint=str(checkpoint))
    collator = LevelAnswerCollator(model, "The quality of the image is {level}.")
    image = Image.fromarray(np.zeros((56, 56, 3), dtype=np.uint8))
    soft = [0.1, 0.2, 0.3, 0.2, 0.2]
    batch = collator(
        [{"image": image, "level": 4, "soft_label": soft}, {"image": image, "level": 1, "soft_label": soft}]
    )
    tok = model.tokenizer
    for i, word in enumerate(["good", "bad"]):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        pos = int(batch["level_positions"][i])
        assert tok.convert_ids_to_tokens(int(ids[pos])) == word
        assert labels[pos] == -100
        kept = tok.convert_ids_to_tokens(ids[labels != -100].tolist())
        assert kept == ["The", "quality", "of", "the", "image", "is", ".", "<|im_end|>"]
    with pytest.raises(InputError, match="answer_prefix"):
        LevelAnswerCollator(model, "It is {level}.")


def test_deqa_sft_run_trains_on_soft_labels_and_saves_a_vlm_levels_model(checkpoint, manifest, tmp_path):
    out = tmp_path / "sft"
    sets = [
        f"output_dir={out}", f"model.options.checkpoint={checkpoint}", f"data.train={manifest}",
        "data.batch_size=2", "max_steps=3", "amp=false", "data.num_workers=0", "log.progress=false",
        "log.tensorboard=false", "schedule.warmup=0", "optim.lr=1e-3",
    ]  # fmt: skip
    result = train(load_config("deqa_sft", sets))
    assert result.step == 3
    assert math.isfinite(result.last_loss)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["validation"]["images"] == 4
    assert summary["validation"]["unscored_images"] == 0
    trained = create_model("vlm_levels", checkpoint=summary["final"], weighting="deqa")
    assert trained.has_trained_weights
    before = create_model("vlm_levels", checkpoint=str(checkpoint), weighting="deqa")
    x = torch.rand(1, 3, 56, 56)
    assert not torch.equal(trained.level_probabilities(x), before.level_probabilities(x))


def test_soft_labels_follow_each_datasets_range(manifest):
    from perceptiq.training.vlm_sft import soft_labels_and_levels

    rows = vlm_training_rows(str(manifest), "train")
    soft, levels = soft_labels_and_levels(rows, "pdf")
    raw = pd.read_csv(manifest)
    for name, part in raw.groupby("dataset"):
        low, high = part["mos"].min(), part["mos"].max()
        at = np.flatnonzero(rows["dataset"].to_numpy() == name)
        mos = torch.tensor(rows["mos_raw"].to_numpy()[at])
        std = torch.tensor(rows["std_raw"].to_numpy()[at])
        want = deqa_soft_label(mos, std, min_mos=low, max_mos=high, order="descending")
        np.testing.assert_allclose(soft[at], want.numpy())
        np.testing.assert_array_equal(levels[at], mos_to_level_index(mos, low, high).numpy())
