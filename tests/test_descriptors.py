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


def _images(folder: Path, n: int, shape: tuple[int, int] = (64, 80)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)).save(path)
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


def test_view_descriptors_are_those_of_the_flipped_and_cropped_images(tmp_path, monkeypatch):
    model = create_model("nss_mlp", crop_fraction=0.75)
    paths = _images(tmp_path / "img", 2, shape=(96, 120))
    views = ["full", "hflip", "crop_br"]
    values = cached_descriptors(model, paths, tmp_path / "cache", progress=False, views=views)
    assert values.shape == (2, 3, FEATURE_DIM)
    for k, path in enumerate(paths):
        pixels = read_image(path)  # 96 x 120: the bottom-right 72 x 90 crop starts at (24, 30)
        expected = [pixels, pixels.flip(-1), pixels[..., 24:, 30:]]
        for v, image in enumerate(expected):
            torch.testing.assert_close(values[k, v], quality_features(image)[0].double())
    torch.testing.assert_close(
        cached_descriptors(model, paths, tmp_path / "cache", progress=False), values[:, 0]
    )
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 6

    monkeypatch.setattr(
        model, "features", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed"))
    )
    again = cached_descriptors(model, paths, tmp_path / "cache", progress=False, views=views[::-1])
    torch.testing.assert_close(again, values.flip(1))
    other_crop = create_model("nss_mlp", crop_fraction=0.5)  # another crop size is another cached view
    assert other_crop.view_id("crop_br") != model.view_id("crop_br")
    assert other_crop.view_id("hflip") == model.view_id("hflip") == "hflip"


def test_unknown_views_and_models_without_views_are_refused(tmp_path):
    paths = _images(tmp_path / "img", 1)
    with pytest.raises(InputError, match="crop_centre"):
        cached_descriptors(create_model("nss_mlp"), paths, tmp_path / "cache", views=["crop_centre"])

    class WholeImageOnly(torch.nn.Module):
        descriptor_id = "grey-mean"

        def features(self, images: torch.Tensor) -> torch.Tensor:
            return images.mean(dim=(1, 2, 3))[:, None]

    with pytest.raises(InputError, match="no view_id"):
        cached_descriptors(WholeImageOnly(), paths, tmp_path / "cache", views=["full", "hflip"])
    whole = cached_descriptors(WholeImageOnly(), paths, tmp_path / "cache", progress=False)
    torch.testing.assert_close(whole, read_image(paths[0]).double().mean().reshape(1, 1))
