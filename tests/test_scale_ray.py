"""`perceptiq score --engine ray` against the one-machine runner, on a local 2-CPU Ray.

Reference: the single-process output of `perceptiq score` (same command without --engine ray) over the
same files; the Ray output must equal it row for row (images, errors, sizes, scores within 1e-5).
Ray starts once for the module; a driver killed with SIGKILL runs in a subprocess joined to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import REPO
from perceptiq.cli import app
from perceptiq.errors import InputError

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")  # imported before any CliRunner: its log handler keeps the real stderr

torch.set_num_threads(1)  # as each actor: the same float32 summation order, hence the same scores
runner = CliRunner()
COMPARED = ["image", "error", "reference", "height", "width", "scorer"]


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127 + 60 * np.sin(xx / (5.0 + seed)) * np.cos(yy / 9.0)
    return np.clip(base[..., None] + rng.normal(0, 10 + seed, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Seven photos of two sizes (PNG, JPEG, 16-bit grey, RGBA) and three broken files."""
    out = tmp_path_factory.mktemp("imgs")
    for i in range(4):
        Image.fromarray(_photo(96, 128, i)).save(out / f"p{i}.png")
    Image.fromarray(_photo(112, 144, 4)).save(out / "j4.jpg", quality=85)
    Image.fromarray(_photo(96, 128, 5)[..., 0].astype(np.uint16) * 257).save(out / "g5.png")
    rgba = np.dstack([_photo(96, 128, 6), np.full((96, 128), 180, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(out / "a6.png")
    (out / "broken.png").write_bytes(b"not an image at all")
    (out / "empty.jpg").write_bytes(b"")
    (out / "cut.jpg").write_bytes((out / "j4.jpg").read_bytes()[:300])
    return out


def _score(*args: str) -> pd.DataFrame:
    result = runner.invoke(app, ["score", *args])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    out = Path(args[args.index("-o") + 1])
    return pd.read_csv(out)


def _assert_same(ray_rows: pd.DataFrame, local: pd.DataFrame) -> None:
    assert list(ray_rows.columns) == list(local.columns)
    assert len(ray_rows) == len(local)
    pd.testing.assert_frame_equal(ray_rows[COMPARED], local[COMPARED])
    np.testing.assert_allclose(ray_rows["score"], local["score"], rtol=0, atol=1e-5)


def test_ray_output_equals_single_process_with_error_rows(ray_address, folder, tmp_path):
    local = _score(str(folder), "-m", "brisque", "-o", str(tmp_path / "local.csv"))
    on_ray = _score(str(folder), "-m", "brisque", "-o", str(tmp_path / "ray.csv"), "--engine", "ray")
    _assert_same(on_ray, local)
    errors = on_ray.set_index(on_ray["image"].map(lambda p: Path(p).name))["error"]
    assert errors.notna().sum() == 3
    assert "empty" in errors["empty.jpg"]
    assert errors[["p0.png", "j4.jpg", "g5.png", "a6.png"]].isna().all()
    assert not (tmp_path / "ray.csv.shards").exists()  # shards folded into the one output


def test_full_reference_with_missing_reference_and_url_inputs(ray_address, folder, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    for name in ("p0.png", "p1.png", "j4.jpg"):  # p2, p3 ... have no reference: error rows
        Image.fromarray(_photo(96 if name != "j4.jpg" else 112, 128 if name != "j4.jpg" else 144, 9)).save(
            refs / name
        )
    args = ["-m", "ssim", "--ref", str(refs)]
    local = _score(str(folder), *args, "-o", str(tmp_path / "local.jsonl.csv"))
    on_ray = _score(str(folder), *args, "-o", str(tmp_path / "ray.csv"), "--engine", "ray", "--actors", "2")
    _assert_same(on_ray, local)
    assert on_ray["score"].notna().sum() == 3
    assert on_ray["error"].str.contains("no reference").sum() == 4


def test_sigkilled_run_resumes_with_each_image_once(ray_address, tmp_path):
    images = tmp_path / "many"
    images.mkdir()
    for i in range(14):
        Image.fromarray(_photo(192, 256, i % 7)).save(images / f"m{i:02d}.png")
    (images / "zz_broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "killed.csv"
    command = [sys.executable, "-m", "perceptiq", "score", str(images), "-m", "brisque", "-o", str(out)]
    command += ["--engine", "ray", "--address", ray_address, "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = Path(str(out) + ".shards")
    deadline = time.monotonic() + 60
    while not list(shards.glob("*.parquet")) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    written = len(list(shards.glob("*.parquet")))
    assert 1 <= written < 15, "the run must be killed after its first shard and before its end"
    assert not out.exists() or out.stat().st_size == 0  # rows reach the output only at the end
    refused = runner.invoke(app, ["score", str(images), "-m", "brisque", "-o", str(out), "--engine", "ray"])
    assert refused.exit_code == 1
    assert "--resume" in refused.output
    resumed = _score(str(images), "-m", "brisque", "-o", str(out), "--engine", "ray", "--resume")
    local = _score(str(images), "-m", "brisque", "-o", str(tmp_path / "local.csv"))
    assert resumed["image"].is_unique
    _assert_same(resumed, local)
    assert not shards.exists()


def test_default_model_on_ray_equals_single_process(ray_address, tmp_path):
    for i in range(3):
        Image.fromarray(_photo(64 + 16 * i, 80, i)).save(tmp_path / f"t{i}.png")
    files = [str(tmp_path / f"t{i}.png") for i in range(3)]
    local = _score(*files, "-o", str(tmp_path / "local.csv"))
    on_ray = _score(*files, "-o", str(tmp_path / "ray.csv"), "--engine", "ray")
    assert on_ray["score"].notna().all()
    _assert_same(on_ray, local)


def test_pool_leaves_cpus_to_decode_tasks():
    from perceptiq.scale.ray_engine import pool_size

    assert pool_size(2, 0, cuda=False) == pool_size(2, 0, cuda=False, actors=1)
    two = pool_size(2, 0, cuda=False)
    assert (two.actors, two.cpus, two.threads) == (1, 1.0, 1)  # one CPU of two left for decoding
    four = pool_size(2, 0, cuda=False, actors=4)
    assert (four.cpus, four.threads) == (0.25, 1)
    big = pool_size(16, 0, cuda=False)
    assert (big.actors, big.cpus * big.actors) == (6, 12.0)  # 4 of 16 CPUs kept for decoding
    gpu = pool_size(16, 2, cuda=True, gpus_per_actor=0.5)
    assert (gpu.actors, gpu.gpus, gpu.cpus) == (4, 0.5, 1.0)
    with pytest.raises(InputError, match="leave no CPU to decode"):
        pool_size(2, 0, cuda=False, actors=2, cpus_per_actor=1)
    with pytest.raises(InputError, match="GPU"):
        pool_size(16, 1, cuda=True, actors=2)


def test_missing_ray_is_a_one_line_error(monkeypatch, folder):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = runner.invoke(app, ["score", str(folder), "-m", "brisque", "--engine", "ray"])
    assert result.exit_code == 1
    assert "pip install 'perceptiq[scale]'" in result.output
    assert "Traceback" not in result.output
    local_only = runner.invoke(app, ["score", str(folder), "-m", "brisque", "--actors", "2"])
    assert local_only.exit_code == 1
    assert "--actors only apply to --engine ray" in local_only.output


def test_url_inputs_list_and_decode_as_local_paths(folder):
    from perceptiq.io.images import list_sources, load_source, read_image

    found, _ = list_sources([f"file://{folder}/p*.png", f"file://{folder}"])
    assert found[:4] == [f"file://{folder}/p{i}.png" for i in range(4)]
    assert len(found) == 10  # the folder adds the six other files, the four PNGs once
    item = load_source(0, found[2])
    assert item.path == found[2]
    assert torch.equal(item.image, read_image(folder / "p2.png"))
    broken = load_source(1, f"file://{folder}/empty.jpg")
    assert broken.image is None
    assert "empty" in broken.error.problem


def test_glob_and_manifest_inputs_list_as_folders_do(folder, tmp_path):
    from perceptiq.io.images import list_sources

    pd.DataFrame({"image": ["p1.png", str(folder / "p0.png")]}).to_csv(folder.parent / "m.csv", index=False)
    found, _ = list_sources([folder.parent / "m.csv"])
    assert found == [folder.parent / "p1.png", folder / "p0.png"]
    by_glob, other = list_sources([f"{folder}/p*.png", f"{folder}/*.jpg"])
    assert by_glob == [folder / f"p{i}.png" for i in range(4)] + [
        folder / "cut.jpg",
        folder / "empty.jpg",
        folder / "j4.jpg",
    ]
    assert other == []
    with pytest.raises(InputError, match="no file matches"):
        list_sources([f"{folder}/*.webp"])
