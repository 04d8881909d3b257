"""The trainer: recipes (strict YAML), lr schedules, batch plans, objective, checkpoints, exact resume,
kill -9 resume, DDP with 2 gloo processes, and every packaged recipe for a few steps on tiny models.

References: torch's own LR schedulers (LinearLR/SequentialLR/CosineAnnealingLR/StepLR) and hand values for
``lr_at``; numpy/scipy re-computations of the losses; an uninterrupted run for resumption; a one-process
run for DDP; the teacher's own ``score`` for pseudo-labels.
"""

from __future__ import annotations

import csv
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
import yaml
from PIL import Image
from scipy.stats import norm

from perceptiq.errors import DataFileError, InputError
from perceptiq.models import create_model, load_model
from perceptiq.training import checkpoint as ckpt
from perceptiq.training.components import build_model, lr_at
from perceptiq.training.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config,
    list_recipes,
    load_config,
)
from perceptiq.training.data import (
    ManifestDataset,
    augment_generator,
    crop_and_flip,
    grouped_batches,
    shuffled_batches,
    single_dataset_batches,
)
from perceptiq.training.loop import train
from perceptiq.training.objective import build_objective

FACE_TINY = {"backbone": "mobilenetv3_small_050", "head_hidden": 8, "dropout": 0.0, "input_size": 32}
RECIPES = [
    "mse_plcc", "l1rank", "face_distill", "clip_prompt_qaveteran", "rectifier_calibration", "default_nr",
    "default_nr_v2",
]  # fmt: skip
CLI_CODE = "from perceptiq.cli._app import app; import perceptiq.cli.train; app()"


@pytest.fixture(autouse=True)
def one_thread():
    """Two threads on two loaded cores are slower than one; restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_images(
    folder: Path,
    n: int,
    *,
    seed: int = 0,
    methods: int = 0,
    mos_scale: float = 4.0,
    shape: tuple[int, int] = (36, 40),
) -> pd.DataFrame:
    """Grey ramps with Gaussian noise; MOS falls linearly with the noise level (a learnable target)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ramp = np.tile(np.linspace(0, 255, shape[1])[None, :, None], (shape[0], 1, 3))
    rows = []
    for i in range(n):
        noise = rng.uniform(0, 1)
        pixels = np.clip(ramp + rng.normal(0, 80 * noise, ramp.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:03d}.png")
        row = {"image": str(folder / f"img{i:03d}.png"), "mos": 1 + mos_scale * (1 - noise)}
        if methods:
            row["method"] = f"m{i % methods}"
        rows.append(row)
    return pd.DataFrame(rows)


def make_manifest(
    root: Path, n: int = 24, *, methods: int = 0, mos_scale: float = 4.0, shape: tuple[int, int] = (36, 40)
) -> Path:
    """Manifest with every 4th image in the val split."""
    frame = make_images(root / "images", n, methods=methods, mos_scale=mos_scale, shape=shape)
    frame["split"] = ["val" if i % 4 == 0 else "train" for i in range(n)]
    path = root / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


def face_config(manifest: Path, out: Path, **changes) -> TrainConfig:
    data = {
        "name": "tiny",
        "epochs": 2,
        "output_dir": str(out),
        "model": {"name": "face_lite_mobilenetv3", "options": FACE_TINY},
        "data": {"train": str(manifest), "crop_size": 32, "batch_size": 4, "num_workers": 0},
        "optim": {"lr": 1e-3},
        "loss": [{"name": "mse"}],
        "eval": {"protocol_options": {"mappings": []}},
        "log": {"progress": False, "tensorboard": False},
    }
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            data.setdefault(section, {})[sub] = value
        else:
            data[section] = value
    return config_from_dict(data)


def log_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return [{k: v for k, v in r.items() if k != "time"} for r in csv.DictReader(fh)]


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------------------------ schedules


def _torch_lrs(base: float, n: int, make) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base)
    sched = make(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def _schedule_cfg(lr: float, **schedule) -> TrainConfig:
    return config_from_dict({"optim": {"lr": lr}, "schedule": schedule, "loss": [{"name": "mse"}]})


def test_lr_at_warmup_then_cosine_matches_hand_values_and_torch():
    cfg = _schedule_cfg(0.1, name="cosine", warmup=3, warmup_start_factor=0.1, min_lr=0.001)
    got = [lr_at(s, cfg, total_steps=13, steps_per_epoch=5) for s in range(13)]
    # hand values: LinearLR 0.1 -> 1 over 3 steps, then cosine from 0.1 to 0.001 over the other 10
    assert got[0] == pytest.approx(0.01)
    assert got[1] == pytest.approx(0.1 * (0.1 + 0.9 / 3))
    assert got[3] == pytest.approx(0.1)
    assert got[8] == pytest.approx((0.1 + 0.001) / 2)  # half way through the cosine
    assert got[12] == pytest.approx(0.001 + 0.099 * (1 + math.cos(math.pi * 9 / 10)) / 2)

    def make(opt):
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=3)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
        return torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[3])

    np.testing.assert_allclose(got, _torch_lrs(0.1, 13, make), rtol=1e-10)


def test_lr_at_per_epoch_step_and_periodic_cosine_match_torch():
    cfg = _schedule_cfg(0.5, name="step", unit="epochs", step_size=2, gamma=0.3)
    per_epoch = _torch_lrs(0.5, 7, lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.3))
    got = [lr_at(s, cfg, total_steps=28, steps_per_epoch=4) for s in range(28)]
    assert got == pytest.approx([per_epoch[s // 4] for s in range(28)], rel=1e-12)
    assert got[16] == pytest.approx(0.5 * 0.3**2)  # epoch 4: two decays
    # CosineAnnealingLR with a period shorter than the run (004 MediaForensics: period 5) rises again after T
    cfg = _schedule_cfg(1e-3, name="cosine", unit="steps", period=5)
    got = [lr_at(s, cfg, total_steps=12, steps_per_epoch=3) for s in range(12)]
    expected = _torch_lrs(1e-3, 12, lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
    assert got[5] == pytest.approx(0.0, abs=1e-18)
    assert got[10] == pytest.approx(1e-3)
    constant = _schedule_cfg(0.2, name="constant", warmup=2, warmup_start_factor=0.5)
    assert [lr_at(s, constant, total_steps=4, steps_per_epoch=1) for s in range(4)] == pytest.approx(
        [0.1, 0.15, 0.2, 0.2]
    )


# ---------------------------------------------------------------------------------------- strict YAML


def test_unknown_duplicate_and_mistyped_keys_name_the_file_and_key(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("loss: [{name: mse}]\noptim:\n  lr: 1e-3\n  lrr: 2\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml: optim\.lrr: unknown key; did you mean 'lr'\?"):
        load_config(path)
    path.write_text("loss: [{name: mse}]\noptim:\n  lr: 0.1\n  weight_decay: 0\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml: line 5: duplicate key 'lr' \(first on line 3\)"):
        load_config(path)
    path.write_text("loss: [{name: mse, weight: heavy}]\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml: loss\.0\.weight: expected float, got 'heavy'"):
        load_config(path)
    path.write_text("loss: [{name: mse}]\nschedule: {name: linear}\n")
    with pytest.raises(ConfigError, match=r"schedule\.name: must be one of 'constant' \| 'cosine' \| 'step'"):
        load_config(path)
    path.write_text("loss: [{name: mse}]\noptim: {lr: 1e-3}\n")  # YAML 1.1 reads 1e-3 as a string
    assert load_config(path).optim.lr == 1e-3
    with pytest.raises(ConfigError, match=r"--set data\.batchsize=3: data\.batchsize: unknown key"):
        load_config(path, ["data.batchsize=3"])
    with pytest.raises(ConfigError, match="no such file and no packaged recipe.*did you mean 'mse_plcc'"):
        load_config("mse_plc")
    with pytest.raises(ConfigError, match="loss: needs at least one term"):
        config_from_dict({})


def test_overrides_reach_nested_sections_lists_and_dicts():
    raw = {"loss": [{"name": "mse"}, {"name": "plcc", "weight": 0.5}], "model": {"options": {"a": 1}}}
    out = apply_overrides(
        raw, ["loss.1.weight=2", "model.options.backbone=tiny", "optim.betas=[0.8, 0.9]", "data.val=null"]
    )
    cfg = config_from_dict(out)
    assert cfg.loss[1].weight == 2.0
    assert cfg.loss[0].weight == 1.0
    assert cfg.model.options == {"a": 1, "backbone": "tiny"}
    assert cfg.optim.betas == (0.8, 0.9)
    assert cfg.data.val is None
    assert raw["loss"][1]["weight"] == 0.5  # the input is not changed
    with pytest.raises(ConfigError, match=r"loss\.5: index 5 out of range"):
        apply_overrides(raw, ["loss.5.weight=1"])


@pytest.mark.parametrize("name", RECIPES)
def test_packaged_recipes_load_and_round_trip(name, tmp_path):
    assert set(RECIPES) <= set(list_recipes())
    cfg = load_config(name)
    assert cfg.name == name
    assert load_config(dump_config(cfg, tmp_path / "again.yaml")) == cfg
    assert yaml.safe_load((tmp_path / "again.yaml").read_text()) == config_to_dict(cfg)


# ------------------------------------------------------------------------------------- data and losses


def test_ranks_together_see_the_one_process_batches():
    one = shuffled_batches(23, 6, seed=3, epoch=1)
    ranks = [shuffled_batches(23, 3, seed=3, epoch=1, rank=r, world_size=2) for r in range(2)]
    assert len(one) == 3
    assert all(len(r) == 3 for r in ranks)
    for step, batch in enumerate(one):
        assert sorted(batch) == sorted(ranks[0][step] + ranks[1][step])
    assert shuffled_batches(23, 6, seed=3, epoch=2) != one  # a new order every epoch
    image = torch.rand(1, 3, 40, 50)
    a = crop_and_flip(image, 32, generator=augment_generator(0, 1, 7), hflip=True)
    b = crop_and_flip(image, 32, generator=augment_generator(0, 1, 7), hflip=True)
    assert torch.equal(a, b)
    assert a.shape == (3, 32, 32)
    assert torch.equal(crop_and_flip(image, 32), image[0, :, 4:36, 9:41])  # centre crop


def test_grouped_batches_hold_whole_groups_of_distinct_methods():
    groups = np.array([0] * 10 + [1] * 9 + [2] * 7 + [3] * 2 + [-1] * 5)  # method 3 too small, -1 unranked
    labelled = np.arange(28, 33)
    batches = grouped_batches(groups, group_size=3, groups_per_batch=2, seed=0, epoch=0, labelled=labelled,
                              labelled_per_batch=1)  # fmt: skip
    assert len(batches) == (3 + 3 + 2) // 2
    for batch in batches:
        grouped, extra = batch[:6], batch[6:]
        methods = [groups[grouped[:3]], groups[grouped[3:]]]
        assert all(len(set(m)) == 1 for m in methods)
        assert methods[0][0] != methods[1][0]
        assert len(extra) == 1
        assert extra[0] in labelled
    two = [grouped_batches(groups, group_size=3, groups_per_batch=2, seed=0, epoch=0, rank=r, world_size=2)
           for r in range(2)]  # fmt: skip
    alone = grouped_batches(groups, group_size=3, groups_per_batch=2, seed=0, epoch=0)
    assert two[0] == alone[0::2][:2]
    assert two[1] == alone[1::2][:2]


def test_single_dataset_batches_never_mix_datasets_and_split_across_processes():
    names = np.array(["koniq"] * 13 + ["clive"] * 9 + ["tiny"] * 1)
    members = {n: np.flatnonzero(names == n) for n in sorted(set(names))}
    batches = single_dataset_batches(members, 4, seed=3, epoch=1)
    assert len(batches) == 13 // 4 + 9 // 4  # full batches only; a one-row dataset cannot form a pair
    for batch in batches:
        assert len(batch) == 4
        assert len(set(names[batch])) == 1
    assert batches == single_dataset_batches(members, 4, seed=3, epoch=1)
    assert batches != single_dataset_batches(members, 4, seed=3, epoch=2)
    two = [single_dataset_batches(members, 4, seed=3, epoch=1, rank=r, world_size=2) for r in range(2)]
    assert two[0] == batches[0::2][:2]
    assert two[1] == batches[1::2][:2]


def test_multi_dataset_training_keeps_each_batch_on_one_mos_scale(tmp_path, monkeypatch):
    manifest = make_manifest(tmp_path / "data", n=24)
    frame = pd.read_csv(manifest)
    frame["dataset"] = np.where(np.arange(24) % 2 == 0, "small_scale", "large_scale")
    frame.loc[frame["dataset"] == "large_scale", "mos"] *= 25.0  # 1-5 and 25-125: never compared
    frame.to_csv(manifest, index=False)
    seen: list[set[str]] = []
    original = ManifestDataset.__getitem__

    def spy(self, index):
        item = original(self, index)
        if self.train:
            seen.append({frame.loc[frame["image"] == self.paths[index], "dataset"].item()})
        return item

    monkeypatch.setattr(ManifestDataset, "__getitem__", spy)
    cfg = face_config(manifest, tmp_path / "run", data__group_by="dataset", data__batch_size=3,
                      loss=[{"name": "plcc"}, {"name": "pairwise_logistic_rank"}])  # fmt: skip
    result = train(cfg)
    rows = log_rows(tmp_path / "run" / "train_log.csv")
    train_rows = frame[frame["split"] == "train"]
    per_epoch = sum(n // 3 for n in train_rows["dataset"].value_counts())
    assert len(rows) == result.step == 2 * per_epoch
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    batches = [set().union(*seen[k : k + 3]) for k in range(0, len(seen), 3)]
    assert all(len(b) == 1 for b in batches)
    without = face_config(manifest, tmp_path / "bad", data__group_by="dataset")
    frame.drop(columns="dataset").to_csv(manifest, index=False)
    with pytest.raises(InputError, match="needs a 'dataset' column"):
        train(without)


def test_rows_without_a_usable_mos_or_image_are_found_by_hand_rule(tmp_path):
    from perceptiq.data.manifest import bad_mos_rows, screen_rows

    paths = [tmp_path / f"im{i}.png" for i in range(5)]
    for i in (0, 4):
        paths[i].write_bytes(b"")  # rows 1-4 (1-based 2-4) name no file
    frame = pd.DataFrame({"image": [str(p) for p in paths], "mos": [1.0, np.nan, np.inf, 2.0, np.nan]})
    needed = np.array([True, True, True, True, False])  # the last row has another target
    np.testing.assert_array_equal(bad_mos_rows(frame, needed), [False, True, True, False, False])
    np.testing.assert_array_equal(bad_mos_rows(frame.drop(columns="mos")), [True] * 5)
    with pytest.raises(DataFileError) as err:
        screen_rows(frame, "m.csv", mos_needed=needed)
    assert str(err.value) == (
        "m.csv: 2 row(s) with missing or non-finite MOS: row 2 (im1.png), row 3 (im2.png); "
        "1 row(s) with an image file that does not exist: row 4 (im3.png)"
    )
    kept, notes = screen_rows(frame, "m.csv", mos_needed=needed, drop=True)
    assert kept.index.tolist() == [0, 4]
    assert notes == [
        "dropped 2 rows with missing or non-finite MOS from m.csv",
        "dropped 1 row with an image file that does not exist from m.csv",
    ]


def _broken_manifest(root: Path) -> Path:
    """16 images, every 4th in val; training row 2 without a MOS, training row 6's image gone, validation
    row 5 with an infinite MOS."""
    manifest = make_manifest(root, n=16)
    frame = pd.read_csv(manifest)
    frame.loc[1, "mos"] = np.nan
    frame.loc[5, "image"] = str(root / "images" / "gone.png")
    frame.loc[4, "mos"] = np.inf
    frame.to_csv(manifest, index=False)
    return manifest


def test_training_rows_without_a_mos_or_image_are_refused_or_dropped_with_a_note(tmp_path, caplog):
    manifest = _broken_manifest(tmp_path / "data")
    common = {"epochs": 1, "data__batch_size": 3}
    with pytest.raises(DataFileError) as err:
        train(face_config(manifest, tmp_path / "refused", **common))
    message = str(err.value)
    assert message.startswith(f"{manifest}: 1 row(s) with missing or non-finite MOS: row 2 (img001.png)")
    assert "row 6 (gone.png)" in message
    assert "data.drop_invalid=true" in message
    caplog.set_level("WARNING", logger="perceptiq.training")
    result = train(face_config(manifest, tmp_path / "dropped", **common, data__drop_invalid=True))
    notes = [r.getMessage() for r in caplog.records if r.name == "perceptiq.training"]
    assert notes.count(f"dropped 1 row with missing or non-finite MOS from {manifest}") == 2  # train + val
    assert f"dropped 1 row with an image file that does not exist from {manifest}" in notes
    assert result.step == (12 - 2) // 3  # 12 training rows, 2 dropped, batches of 3
    assert len(log_rows(tmp_path / "dropped" / "eval_log.csv")) == 1


def test_objective_is_the_weighted_sum_and_skips_rows_without_a_target():
    from perceptiq.training.config import LossTerm

    pred = torch.tensor([0.2, 1.5, -0.3, 2.0], requires_grad=True)
    mos = torch.tensor([0.0, 1.0, float("nan"), 3.0])
    group = torch.tensor([0, 0, 1, -1])
    terms = [LossTerm("mse", 0.5), LossTerm("l1", 2.0), LossTerm("group_mean_fidelity", 3.0, "method")]
    objective = build_objective(terms, group_scores=torch.tensor([1.0, 2.0]))
    total, parts = objective(pred, {"mos": mos, "group": group})
    p, m = np.array([0.2, 1.5, 2.0]), np.array([0.0, 1.0, 3.0])
    mse, l1 = np.mean((p - m) ** 2), np.mean(np.abs(p - m))
    prob = norm.cdf(((0.2 + 1.5) / 2 - (-0.3)) / math.sqrt(2))  # 002 eq. 4, method 1 ranks higher: r = 0
    fidelity = 1 - math.sqrt(prob * 0 + 1e-8) - math.sqrt((1 - prob) * 1 + 1e-8)  # eq. 5
    assert parts["mse"].item() == pytest.approx(mse, rel=1e-6)
    assert parts["l1"].item() == pytest.approx(l1, rel=1e-6)
    assert parts["group_mean_fidelity"].item() == pytest.approx(fidelity, rel=1e-5)
    assert total.item() == pytest.approx(0.5 * mse + 2 * l1 + 3 * fidelity, rel=1e-5)
    total.backward()
    assert torch.isfinite(pred.grad).all()
    with pytest.raises(InputError, match="target must be 'method'"):
        build_objective([LossTerm("group_mean_fidelity", 1.0, "mos")])
    with pytest.raises(InputError, match="needs data.method_scores"):
        build_objective([LossTerm("group_mean_fidelity", 1.0, "method")])


# ------------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_writes_are_atomic_and_loading_falls_back(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    ckpt.save_checkpoint(folder, 2, {"step": 2, "w": torch.arange(3)})
    ckpt.save_checkpoint(folder, 4, {"step": 4, "w": torch.arange(4)})

    def dies_half_way(obj, fh):  # a crash in the middle of writing
        fh.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(folder, 6, {"step": 6})
    monkeypatch.undo()
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["step_000000002.pt", "step_000000004.pt"]
    assert not list(folder.glob(".*.tmp"))
    (folder / ".step_000000008.pt.abc.tmp").write_bytes(b"left by kill -9")
    ckpt.checkpoint_path(folder, 8).write_bytes(b"garbage")  # e.g. a disk that lost the file's content
    path, state = ckpt.load_latest_checkpoint(folder)
    assert path.name == "step_000000004.pt"
    assert torch.equal(state["w"], torch.arange(4))
    assert not list(folder.glob(".*.tmp"))
    ckpt.save_checkpoint(folder, 10, {"step": 10}, keep_last=2)
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["step_000000008.pt", "step_000000010.pt"]


def test_random_states_round_trip():
    import random

    saved = ckpt.rng_state()
    first = (random.random(), np.random.rand(), torch.rand(2))  # noqa: NPY002 - the global state
    ckpt.set_rng_state(saved)
    again = (random.random(), np.random.rand(), torch.rand(2))  # noqa: NPY002
    assert first[:2] == again[:2]
    assert torch.equal(first[2], again[2])


# ------------------------------------------------------------------------------------------------ resume


def test_resumed_run_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    manifest = make_manifest(tmp_path / "data")
    common = {
        "epochs": 2,
        "amp": True,  # bfloat16 autocast on the CPU
        "model": {"name": "face_lite_mobilenetv3", "options": {**FACE_TINY, "dropout": 0.2}},  # RNG in use
        "data__batch_size": 2,
        "optim__accumulation_steps": 2,  # 9 micro-batches per epoch: 4 steps, the 9th batch is dropped
        "optim__grad_clip": 1.0,
        "schedule": {"name": "cosine", "warmup": 2},
        "loss": [{"name": "mse_plcc"}, {"name": "l1_rank", "weight": 0.5}],
        "ema": {"enabled": True, "decay": 0.9},
        "swa": {"enabled": True},
        "checkpoint": {"every_steps": 3, "keep_last": 1},
    }
    full = train(face_config(manifest, tmp_path / "full", **common))
    part = train(face_config(manifest, tmp_path / "cut", **common), stop_after=7)  # "killed" after step 7
    assert part.interrupted
    assert part.step == 7
    saved = ckpt.load_latest_checkpoint(tmp_path / "cut" / "checkpoints")[1]
    assert saved["state"]["step"] == 6
    assert saved["state"]["batch_in_epoch"] == 4
    # the resumed half loads its data with a worker process: the data do not depend on where they load
    rest = train(face_config(manifest, tmp_path / "cut", **{**common, "data__num_workers": 1}), resume=True)
    assert full.step == rest.step == 8
    assert not rest.interrupted
    rows = log_rows(tmp_path / "full" / "train_log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    # the loss and lr of every step; the rows logged by the "killed" run after its checkpoint were redone
    assert rows == log_rows(tmp_path / "cut" / "train_log.csv")
    assert log_rows(tmp_path / "full" / "eval_log.csv") == log_rows(tmp_path / "cut" / "eval_log.csv")
    for sub in ("final", "ema", "swa", "best"):
        assert same_weights(load_model(tmp_path / "full" / sub), load_model(tmp_path / "cut" / sub)), sub
    last_full = ckpt.load_latest_checkpoint(tmp_path / "full" / "checkpoints")[1]
    last_cut = ckpt.load_latest_checkpoint(tmp_path / "cut" / "checkpoints")[1]
    moments = zip(
        last_full["optimizer"]["state"].values(), last_cut["optimizer"]["state"].values(), strict=True
    )
    for a, b in moments:
        assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(InputError, match="already holds checkpoints: pass --resume"):
        train(face_config(manifest, tmp_path / "full", **common))


# A tiny model family (no timm: a process that imports it starts faster), written as a module for the
# subprocesses only, so that the test session's model registry stays as the package defines it.
TINY_FAMILY = """
from dataclasses import dataclass

from torch import nn

from perceptiq.models._base import ModelConfig, QualityModel, register_family, register_model


@dataclass
class TinyConvConfig(ModelConfig):
    family = "tiny_conv_iqa"
    width: int = 8
    dropout: float = 0.0


@register_family("tiny_conv_iqa")
class TinyConv(QualityModel):
    config_class = TinyConvConfig

    def __init__(self, config):
        super().__init__(config)
        self.net = nn.Sequential(
            nn.Conv2d(3, config.width, 3, stride=2, padding=1), nn.BatchNorm2d(config.width), nn.ReLU(),
            nn.Conv2d(config.width, config.width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(config.width, 1),
        )

    def forward(self, images, reference=None):
        return self.net(images).squeeze(-1)


@register_model("tiny_conv_iqa")
def tiny_conv_iqa():
    return TinyConvConfig()
"""


def tiny_family(folder: Path) -> dict:
    """Write the tiny family module into ``folder``; the model section of a recipe that imports it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny_conv_family.py").write_text(TINY_FAMILY)
    return {"name": "tiny_conv_iqa", "imports": ["tiny_conv_family"]}


@pytest.mark.slow
def test_kill_9_of_a_real_process_then_resume(tmp_path):
    manifest = make_manifest(tmp_path / "data")
    recipe = {
        "name": "killed",
        "epochs": 1000,  # never ends by itself: it is killed
        "model": tiny_family(tmp_path / "modules"),
        "data": {"train": str(manifest), "crop_size": 32, "batch_size": 3, "num_workers": 0},
        "schedule": {"name": "constant"},  # so that the resumed run may set max_steps
        "loss": [{"name": "mse"}],
        "eval": {"protocol_options": {"mappings": []}, "every_epochs": 1000},
        "checkpoint": {"every_steps": 3, "keep_last": 2},
        "log": {"progress": False, "tensorboard": False},
    }
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    pythonpath = os.pathsep.join([str(tmp_path / "modules"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": pythonpath}
    command = [sys.executable, "-c", CLI_CODE, "train", str(path), "--out", str(out), "--allow-imports"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while (
        not ckpt.list_checkpoints(out / "checkpoints") and proc.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    output = proc.communicate()[0].decode()
    assert proc.returncode == -signal.SIGKILL, output
    found = ckpt.load_latest_checkpoint(out / "checkpoints")
    assert found is not None, output
    step = found[1]["step"]
    result = subprocess.run(
        [*command, "--resume", "--set", f"max_steps={step + 4}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resumed from {found[0]}" in result.stdout + result.stderr
    steps = [int(r["step"]) for r in log_rows(out / "train_log.csv")]
    assert steps == list(range(1, step + 5))  # rows logged after the checkpoint by the killed run are redone
    assert json.loads((out / "summary.json").read_text())["steps"] == step + 4
    assert (out / "final" / "model.safetensors").exists()


# --------------------------------------------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, port: int, modules: str, one: TrainConfig, two: TrainConfig) -> None:
    """Rank 0 first trains alone (the reference), then both ranks train together, set up as by torchrun.

    Rank 1 waits in the rendezvous of ``init_process_group`` meanwhile."""
    sys.path.insert(0, modules)
    torch.set_num_threads(1)
    if rank == 0:
        train(one, allow_imports=True)
    os.environ.update(
        {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
         "MASTER_PORT": str(port)}
    )  # fmt: skip
    train(two, allow_imports=True)


@pytest.mark.slow
def test_ddp_two_gloo_processes_give_the_one_process_losses(tmp_path):
    """MSE is a mean over images, so the mean of two half-batch losses is the whole-batch loss, and DDP's mean
    of the two gradients is the whole-batch gradient. BatchNorm would normalise each half with its own
    statistics, so it is frozen (model.freeze_norm); dropout is off (each process draws its own masks)."""
    manifest = make_manifest(
        tmp_path / "data", n=32, mos_scale=0.5
    )  # MSE of order 1: 1e-6 is ~10 float32 ulps
    model = {**tiny_family(tmp_path / "modules"), "freeze_norm": True}
    common = {"epochs": 2, "model": model, "optim": {"lr": 3e-3}, "checkpoint": {"every_steps": 100}}
    one = face_config(manifest, tmp_path / "one", **common, data__batch_size=8)
    two = face_config(manifest, tmp_path / "two", **common, data__batch_size=4)  # per process
    modules = str(tmp_path / "modules")
    torch.multiprocessing.spawn(_ddp_worker, args=(_free_port(), modules, one, two), nprocs=2, join=True)
    single, double = (
        log_rows(tmp_path / "one" / "train_log.csv"),
        log_rows(tmp_path / "two" / "train_log.csv"),
    )
    assert [int(r["step"]) for r in double] == [1, 2, 3, 4, 5, 6]
    losses = [float(r["loss"]) for r in double]
    np.testing.assert_allclose(losses, [float(r["loss"]) for r in single], rtol=0, atol=1e-6)
    assert losses[-1] < losses[0]  # it learns: the comparison is not between two idle runs
    assert len(log_rows(tmp_path / "two" / "eval_log.csv")) == 2  # rank 0 evaluated each epoch


# ------------------------------------------------------------------------------------------------ recipes


def _tiny_clip_options() -> dict:
    pytest.importorskip("transformers")
    from perceptiq.models._image_text import word_vocabulary
    from perceptiq.models.clip_prompt import quality_prompts

    vocab = list(word_vocabulary(quality_prompts()))
    n = len(vocab) + 4
    text = {"vocab_size": n, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 12, "pad_token_id": 0, "bos_token_id": 2,
            "eos_token_id": n - 1}  # fmt: skip
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    return {"text": text, "vision": vision, "words": {"tokenizer": "words", "tokenizer_vocab": vocab}}


def _recipe_overrides(name: str, tmp_path: Path) -> tuple[list[str], int]:
    """Overrides that shrink a packaged recipe to a tiny model and generated images; and the epochs."""
    sets = ["epochs=2", "amp=false", "data.num_workers=0", "data.crop_size=32", "data.resize_short=0",
            "log.progress=false", "eval.protocol_options={}"]  # fmt: skip
    face = f"model.options={json.dumps({**FACE_TINY})}"
    if name in ("mse_plcc", "l1rank"):
        sets += [face, "data.batch_size=4", f"data.train={make_manifest(tmp_path / 'data')}"]
    elif name == "face_distill":
        from perceptiq.functional.patches import InputPolicy
        from perceptiq.models import save_model

        teacher = create_model("face_lite_mobilenetv3", **FACE_TINY, input_policy=InputPolicy(mode="full"))

        save_model(teacher, tmp_path / "teacher")
        make_images(tmp_path / "unlabelled", 8, seed=5)
        sets += [face, "data.batch_size=4", f"data.train={make_manifest(tmp_path / 'data')}",
                 f"distill.teacher={tmp_path / 'teacher'}",
                 f"distill.unlabelled={tmp_path / 'unlabelled'}"]  # fmt: skip
    elif name == "clip_prompt_qaveteran":
        tiny = _tiny_clip_options()
        siglip2 = {
            "text_config": tiny["text"],
            "vision_config": {**tiny["vision"], "patch_size": 8, "num_patches": 16},
        }
        policy = {"mode": "resize_budget", "patch_size": 8, "max_patches": 24, "allow_upscale": True,
                  "interpolation": "bilinear"}  # fmt: skip
        options = {"backbone_config": siglip2, "max_num_patches": 24, "input_policy": policy, **tiny["words"]}
        sets += [f"model.options={json.dumps(options)}", "model.forward_choices={max_num_patches: [16, 24]}",
                 "data.batch_size=4", "optim.lr=1e-3",
                 f"data.train={make_manifest(tmp_path / 'data')}"]  # fmt: skip
    elif name == "rectifier_calibration":
        tiny = _tiny_clip_options()
        clip = {"projection_dim": 16, "text_config": tiny["text"],
                "vision_config": {**tiny["vision"], "image_size": 32, "patch_size": 8}}  # fmt: skip
        base = {"arch": "clip", "backbone_config": clip, **tiny["words"]}
        extractor = {"img_size": 32, "depth": 1, "embed_dim": 16, "num_heads": 2}
        options = {"base": "clip_prompt_vit_b32", "base_options": base, "extractor": "vit_tiny_patch16_224",
                   "extractor_kwargs": extractor}  # fmt: skip
        manifest = make_manifest(tmp_path / "data", n=32, methods=3)
        frame = pd.read_csv(manifest)
        frame.loc[frame["method"] != "m0", "mos"] = np.nan  # SR outputs of ranked methods have no MOS ...
        frame.loc[frame["method"] == "m0", "method"] = np.nan  # ... and the labelled images no method
        frame.to_csv(manifest, index=False)
        ranking = {"ranking": [{"item": "m1", "score": 0.7}, {"item": "m2", "score": -0.7}]}  # `rank --json`
        (tmp_path / "ranking.json").write_text(json.dumps(ranking))
        sets += [f"model.options={json.dumps(options)}", f"data.train={manifest}", "optim.lr=1e-2",
                 f"data.method_scores={tmp_path / 'ranking.json'}", "data.group_size=3", "data.batch_size=6",
                 "data.labelled_per_batch=2"]  # fmt: skip
    elif name == "default_nr":  # the real model (tens of thousands of parameters) on 64x72 images
        manifest = make_manifest(tmp_path / "data", shape=(64, 72))
        sets += [f"data.train={manifest}", "data.train_split=train", "data.batch_size=4",
                 f"data.descriptor_cache={tmp_path / 'descriptors'}"]  # fmt: skip
    elif name == "default_nr_v2":  # the frozen ImageNet backbone, two of its blocks pooled, a small head
        manifest = make_manifest(tmp_path / "data", shape=(64, 72))
        options = {"stages": ["blocks.0.0", "blocks.2.1"], "hidden": 8}
        sets += [f"data.train={manifest}", "data.train_split=train", "data.batch_size=4",
                 f"model.options={json.dumps(options)}",
                 f"data.descriptor_cache={tmp_path / 'descriptors'}"]  # fmt: skip
    return sets, 2


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_trains_a_tiny_model(name, tmp_path):
    sets, epochs = _recipe_overrides(name, tmp_path)
    cfg = load_config(name, sets + [f"output_dir={tmp_path / 'run'}"])
    torch.manual_seed(cfg.seed)
    initial = build_model(cfg.model)  # the loop seeds the same way before building the model
    result = train(cfg)
    out = tmp_path / "run"
    rows = log_rows(out / "train_log.csv")
    assert len(rows) == result.step > 0
    assert result.epoch == epochs
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    assert [r["epoch"] for r in log_rows(out / "eval_log.csv")] == [str(e) for e in range(epochs)]
    evaluations = json.loads((out / "summary.json").read_text())["evaluations"]
    assert len(evaluations) == epochs
    assert all(math.isfinite(e["srcc"]) for e in evaluations)
    trained = load_model(out / "final")
    before = dict(initial.named_parameters())
    for key, param in trained.named_parameters():
        if before[key].requires_grad:
            assert not torch.equal(param, before[key]), f"{name}: {key} did not change"
        else:
            assert torch.equal(param, before[key]), f"{name}: frozen {key} changed"
    if name == "face_distill":  # pseudo-labels are the teacher's scores of the unlabelled images
        from perceptiq.io.images import read_image

        pseudo = pd.read_csv(out / "pseudo_labels.csv")
        teacher = load_model(tmp_path / "teacher")
        assert len(pseudo) == 8
        assert set(pseudo["dataset"]) == {"pseudo"}
        expected = [teacher.score(read_image(p)).item() for p in pseudo["image"]]
        np.testing.assert_allclose(pseudo["mos"], expected, rtol=1e-6)
        assert "mse_teacher" in rows[0]
    if name == "l1rank":
        assert (out / "swa" / "model.safetensors").exists()
    if name == "rectifier_calibration":
        assert {"group_mean_fidelity", "fidelity"} <= set(rows[0])
    if name.startswith("default_nr"):  # trained on cached descriptors, standardised with the training rows
        frame = pd.read_csv(cfg.data.train)
        train_mos = frame.loc[frame["split"] == "train", "mos"]
        assert float(trained.target_mean) == pytest.approx(train_mos.mean(), rel=1e-3)
        assert float(trained.target_std) == pytest.approx(train_mos.std(), rel=1e-3)
        assert len(list((tmp_path / "descriptors").glob("*.npy"))) == len(frame)
        from perceptiq.io.images import read_image

        image = read_image(frame["image"][0])
        trained.eval()
        direct = trained.score(image)  # pixels in, same score as from the cached descriptor
        cached = trained(trained.features(image))
        torch.testing.assert_close(direct, cached.to(direct.dtype))


def test_descriptor_views_augment_training_and_validation_sees_the_full_image(tmp_path):
    from perceptiq.functional.nr.quality_features import quality_features
    from perceptiq.io.images import read_image

    manifest = make_manifest(tmp_path / "data", n=12, shape=(80, 80))
    views = ["full", "hflip", "crop_br"]
    sets = [f"data.train={manifest}", "data.train_split=train", "data.batch_size=4", "epochs=2",
            f"data.descriptor_cache={tmp_path / 'cache'}", f"data.descriptor_views={json.dumps(views)}",
            "log.progress=false", f"output_dir={tmp_path / 'run'}"]  # fmt: skip
    cfg = load_config("default_nr", sets)
    train(cfg)
    frame = pd.read_csv(manifest)
    train_paths = frame.loc[frame["split"] == "train", "image"]
    n_train, n_val = len(train_paths), int((frame["split"] == "val").sum())
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3 * n_train + n_val  # validation: full only
    described = []  # independent reference: the descriptor of each view cut by hand (0.9 x 80 = 72)
    for path in train_paths:
        pixels = read_image(path)
        described += [quality_features(v) for v in (pixels, pixels.flip(-1), pixels[..., 8:, 8:])]
    described = torch.cat(described).double()
    trained = load_model(tmp_path / "run" / "final")
    torch.testing.assert_close(trained.feature_mean, described.mean(0).to(trained.feature_mean.dtype))
    assert float(trained.target_mean) == pytest.approx(frame.loc[frame["split"] == "train", "mos"].mean())
    with pytest.raises(ConfigError, match="descriptor_views"):
        load_config("default_nr", ['data.descriptor_views=["crop_centre"]'])
    with pytest.raises(ConfigError, match="distinct names"):
        load_config("default_nr", ['data.descriptor_views=["full", "full"]'])
    with pytest.raises(ConfigError, match="needs data.descriptor_cache"):
        load_config("default_nr", ['data.descriptor_views=["full", "hflip"]', "data.descriptor_cache=null"])


def test_a_training_row_is_drawn_as_one_view_per_epoch_deterministically():
    descriptors = torch.arange(5 * 3 * 2, dtype=torch.float64).reshape(5, 3, 2)  # (rows, views, D)
    frame = pd.DataFrame({"image": [f"im{i}.png" for i in range(5)], "mos": np.arange(5.0)})
    train_set = ManifestDataset(frame, crop_size=0, train=True, seed=3, descriptors=descriptors)
    drawn = []
    for epoch in range(40):
        train_set.set_epoch(epoch)
        item = train_set[2]
        view = int(item["image"][0] - descriptors[2, 0, 0]) // 2
        torch.testing.assert_close(item["image"], descriptors[2, view])
        torch.testing.assert_close(train_set[2]["image"], item["image"])  # same (seed, epoch, row)
        drawn.append(view)
    assert set(drawn) == {0, 1, 2}
    val_set = ManifestDataset(frame, crop_size=0, train=False, descriptors=descriptors)
    assert all(torch.equal(val_set[i]["image"], descriptors[i, 0]) for i in range(5))


def test_cli_trains_lists_recipes_and_reports_errors(tmp_path):
    from typer.testing import CliRunner

    import perceptiq.cli.train  # noqa: F401  (registers the command)
    from perceptiq.cli._app import app

    runner = CliRunner()
    listed = runner.invoke(app, ["train", "--list"])
    assert listed.exit_code == 0
    assert set(RECIPES) <= set(listed.output.split())
    keys = runner.invoke(app, ["train", "--help-config"], terminal_width=200)
    assert keys.exit_code == 0
    assert "schedule.warmup_start_factor" in keys.output
    manifest = make_manifest(tmp_path / "data", n=12)
    sets = [f"data.train={manifest}", f"model.options={json.dumps(FACE_TINY)}", "data.num_workers=0",
            "data.crop_size=32", "data.batch_size=3", "epochs=1", "amp=false", "log.progress=true",
            "log.tensorboard=true"]  # fmt: skip
    args = ["train", "mse_plcc", "--out", str(tmp_path / "run")]
    for item in sets:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trained 3 steps (1 epochs)" in result.output
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert load_config(tmp_path / "run" / "config.yaml").data.train == str(manifest)
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "already holds checkpoints" in again.output
    bad = runner.invoke(app, ["train", "mse_plcc", "--set", "optim.lrr=1"])
    assert bad.exit_code == 1
    assert "optim.lrr: unknown key" in bad.output
    teacher_args = [
        *args[:2],
        "--out",
        str(tmp_path / "t"),
        *args[4:],
        "--set",
        "loss=[{name: mse, target: teacher}]",
    ]
    no_teacher = runner.invoke(app, teacher_args)
    assert no_teacher.exit_code == 1
    assert "needs distill.teacher" in no_teacher.output
    broken = _broken_manifest(tmp_path / "broken")
    refused = runner.invoke(
        app, [*args[:2], "--out", str(tmp_path / "b"), *args[4:], "--set", f"data.train={broken}"]
    )
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        f"error: {broken}: 1 row(s) with missing or non-finite MOS: row 2 (img001.png); 1 row(s) with an "
        "image file that does not exist: row 6 (gone.png); fix them, or set data.drop_invalid=true to drop "
        "them"
    ]
