"""Cached image descriptors for training heads on fixed features (perceptiq.training.descriptors)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceptiq.errors import DataFileError, InputError
from perceptiq.functional.nr.quality_features import FEATURE_DIM, quality_features
from perceptiq.io.images import read_image
from perceptiq.models import create_model
from perceptiq.training.descriptors import cache_key, cached_descriptors


def _images(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(64, 80, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_descriptors_equal_the_feature_function_and_are_reused(tmp_path, monkeypatch):
    model = create_model("nss_mlp")
    paths = _images(tmp_path / "img", 3)
    first = cached_descriptors(model, paths, tmp_path / "cache", progress=False)
    expected = torch.cat([quality_features(read_image(p)) for p in paths])
    assert first.shape == (3, FEATURE_DIM)
    torch.testing.assert_close(first, expected.double())
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3

    def fail(images: torch.Tensor) -> torch.Tensor:
        raise AssertionError("cached descriptors must not be recomputed")

    monkeypatch.setattr(model, "features", fail)
    torch.testing.assert_close(cached_descriptors(model, paths, tmp_path / "cache", progress=False), first)


def test_an_edited_image_or_another_descriptor_gets_a_new_key(tmp_path):
    (path,) = _images(tmp_path / "img", 1)
    key = cache_key("d1", path)
    assert cache_key("d2", path) != key
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache_key("d1", path) != key
    assert cache_key("d1", path) == cache_key("d1", Path(path).parent / ".." / "img" / "im0.png")


def test_broken_image_names_the_file_and_keeps_earlier_work(tmp_path):
    model = create_model("nss_mlp")
    paths = _images(tmp_path / "img", 2)
    broken = tmp_path / "img" / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(DataFileError, match="broken.png"):
        cached_descriptors(model, [*paths, str(broken)], tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    with pytest.raises(DataFileError, match="missing.png"):
        cached_descriptors(model, [str(tmp_path / "missing.png")], tmp_path / "cache", progress=False)


def test_models_without_a_fixed_descriptor_are_refused(tmp_path):
    model = create_model("face_lite_mobilenetv3", backbone="mobilenetv3_small_050", input_size=32)
    with pytest.raises(InputError, match="fixed descriptor"):
        cached_descriptors(model, _images(tmp_path / "img", 1), tmp_path / "cache", progress=False)
