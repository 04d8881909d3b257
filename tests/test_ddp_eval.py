"""Validation sharded across DDP ranks: 2 CPU processes (gloo) give the SRCC of one process.

Reference: ``scipy.stats.spearmanr`` of the same model's predictions on all images, computed in one
process. Seven images over two ranks: shares of 4 and 3, no padding duplicate.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from scipy.stats import spearmanr

from perceptiq.evaluation.protocols import create_protocol
from perceptiq.training.components import evaluate
from perceptiq.training.config import TrainConfig
from perceptiq.training.config.sections import DataSection, EvalSection
from perceptiq.training.data import ManifestDataset
from perceptiq.training.runtime import DistInfo, gather_by_index, shard_indices

N_IMAGES = 7


def _net() -> torch.nn.Module:
    torch.manual_seed(0)  # the same weights in every process
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 1),
    )


def _setup(folder: str) -> tuple[ManifestDataset, TrainConfig]:
    frame = pd.read_csv(os.path.join(folder, "manifest.csv"))
    cfg = TrainConfig(data=DataSection(crop_size=32, num_workers=0), eval=EvalSection(batch_size=2))
    return ManifestDataset(frame, crop_size=32, train=False), cfg


def _rank(rank: int, port: int, folder: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    from perceptiq.training.runtime import setup_distributed

    env = setup_distributed("cpu")
    dataset, cfg = _setup(folder)
    share = shard_indices(len(dataset), env)
    gathered = gather_by_index(share, share.astype(float) * 10, len(dataset), env)
    result = evaluate(
        _net(), dataset, cfg, env.device, contextlib.nullcontext, create_protocol("generic"), env
    )
    if env.is_main:
        report = {"share": share.tolist(), "gathered": gathered.tolist(), "stats": result.statistics}
        with open(os.path.join(folder, "rank0.json"), "w") as fh:
            json.dump(report, fh)
    else:
        assert result is None
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(N_IMAGES):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"v{i}.png")
        rows.append({"image": str(tmp_path / f"v{i}.png"), "mos": float(rng.uniform(1, 5))})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path


def test_gathered_srcc_over_two_ranks_equals_one_process(folder):
    mp.spawn(_rank, args=(_free_port(), str(folder)), nprocs=2, join=True)
    report = json.loads((folder / "rank0.json").read_text())
    assert report["share"] == [0, 2, 4, 6]
    assert report["gathered"] == [i * 10.0 for i in range(N_IMAGES)]  # every item once, in order
    dataset, _ = _setup(str(folder))
    net = _net().eval()
    with torch.no_grad():
        pred = [float(net(dataset[i]["image"][None])[0, 0]) for i in range(N_IMAGES)]
    expected = spearmanr(pred, dataset.mos).statistic
    assert len(set(np.round(pred, 6))) == N_IMAGES  # no ties: the SRCC depends on every share
    assert report["stats"]["srcc"] == pytest.approx(expected, abs=1e-12)


def test_one_process_shares_everything():
    env = DistInfo()
    assert shard_indices(5, env).tolist() == [0, 1, 2, 3, 4]
    assert shard_indices(5, DistInfo(rank=1, world_size=2)).tolist() == [1, 3]
    assert gather_by_index(np.array([1, 0]), np.array([3.0, 4.0]), 2, env).tolist() == [4.0, 3.0]
    with pytest.raises(RuntimeError, match="cover 1 of 2"):
        gather_by_index(np.array([0]), np.array([1.0]), 2, env)
