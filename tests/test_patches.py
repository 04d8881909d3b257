"""Tests of perceptiq.functional.patches (tiles, random patches, patch-budget resize, chunked scoring)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from perceptiq.errors import InputError
from perceptiq.functional.patches import (
    IMAGE_VIEWS,
    Box,
    InputPolicy,
    aggregate_scores,
    apply_policy,
    budget_scale,
    budget_size,
    grid_boxes,
    grid_starts,
    image_view,
    random_boxes,
    resize_to_budget,
    score_boxes,
)


def pixel_mean(crops: torch.Tensor) -> torch.Tensor:
    return crops.mean(dim=(1, 2, 3))


def count_map(height: int, width: int, boxes: list[Box]) -> np.ndarray:
    counts = np.zeros((height, width), dtype=np.int64)
    for b in boxes:
        assert b.top >= 0
        assert b.top + b.height <= height
        assert b.left >= 0
        assert b.left + b.width <= width
        counts[b.top : b.top + b.height, b.left : b.left + b.width] += 1
    return counts


@pytest.mark.parametrize(
    ("length", "tile", "stride", "border", "expected"),
    [
        (10, 4, 4, "shift", [0, 4, 6]),
        (10, 4, 4, "crop", [0, 4, 8]),
        (10, 4, 2, "shift", [0, 2, 4, 6]),
        (10, 4, 2, "crop", [0, 2, 4, 6]),
        (12, 4, 4, "shift", [0, 4, 8]),
        (12, 4, 4, "crop", [0, 4, 8]),
        (11, 4, 3, "shift", [0, 3, 6, 7]),
        (3, 4, 4, "shift", [0]),
        (4, 4, 1, "crop", [0]),
    ],
)
def test_grid_starts_hand_computed(
    length: int, tile: int, stride: int, border: str, expected: list[int]
) -> None:
    assert grid_starts(length, tile, stride, border) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("height", "width", "tile", "stride", "border"),
    [
        (100, 130, 32, None, "shift"),
        (100, 130, 32, 20, "shift"),
        (100, 130, (40, 24), (17, 24), "shift"),
        (100, 130, 32, None, "crop"),
        (100, 130, 32, 11, "crop"),
        (31, 17, 64, None, "shift"),
        (1, 1, 8, None, "crop"),
    ],
)
def test_tiles_cover_every_pixel(height: int, width: int, tile, stride, border: str) -> None:
    boxes = grid_boxes(height, width, tile, stride, border)  # type: ignore[arg-type]
    counts = count_map(height, width, boxes)
    assert counts.min() >= 1
    th, tw = (tile, tile) if isinstance(tile, int) else tile
    if border == "shift":
        assert {(b.height, b.width) for b in boxes} == {(min(th, height), min(tw, width))}


def test_crop_border_without_overlap_covers_each_pixel_once() -> None:
    boxes = grid_boxes(250, 330, 100, border="crop")
    assert (count_map(250, 330, boxes) == 1).all()
    assert len(boxes) == 3 * 4
    assert {(b.height, b.width) for b in boxes} == {(100, 100), (100, 30), (50, 100), (50, 30)}


def test_tile_mean_of_pixel_mean_is_image_mean_hand_computed() -> None:
    # 3 x 5 tiles of 40 x 40, tile k filled with k / 15: the mean of the tile means is
    # (0 + 1 + ... + 14) / 15 / 15 = 105 / 225, as is the image mean (all tiles have equal area).
    x = torch.zeros(1, 3, 120, 200, dtype=torch.float64)
    for k in range(15):
        r, c = divmod(k, 5)
        x[..., 40 * r : 40 * r + 40, 40 * c : 40 * c + 40] = k / 15
    policy = InputPolicy(mode="tiles", tile_size=40)
    score = apply_policy(pixel_mean, x, policy, max_batch=4)
    assert score.shape == (1,)
    assert score.item() == pytest.approx(105 / 225, abs=1e-12)


def test_area_weighted_cropped_tiles_give_image_mean() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 250, 330, generator=gen, dtype=torch.float64)
    policy = InputPolicy(mode="tiles", tile_size=100, border="crop", aggregation="area")
    score = apply_policy(pixel_mean, x, policy, max_batch=5)
    expected = x.numpy().reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(score.numpy(), expected, rtol=0, atol=1e-12)
    plain = apply_policy(pixel_mean, x, InputPolicy(mode="tiles", tile_size=100, border="crop"))
    assert not np.allclose(plain.numpy(), expected, atol=1e-6)


def test_aggregate_scores_weighted_mean_hand_computed() -> None:
    scores = torch.tensor([[1.0, 10.0], [3.0, 20.0], [5.0, 40.0]])
    weights = torch.tensor([1.0, 2.0, 1.0])
    out = aggregate_scores(scores, weights)
    assert out.tolist() == pytest.approx([(1 + 6 + 5) / 4, (10 + 40 + 40) / 4])
    assert aggregate_scores(scores).tolist() == pytest.approx([3.0, 70 / 3])
    with pytest.raises(InputError, match="weights"):
        aggregate_scores(scores, torch.tensor([1.0, -1.0, 1.0]))


def test_random_patches_seeded_reproducible_and_seed_dependent() -> None:
    state = torch.get_rng_state()
    a = random_boxes(500, 700, 64, 20, torch.Generator().manual_seed(1))
    b = random_boxes(500, 700, 64, 20, torch.Generator().manual_seed(1))
    c = random_boxes(500, 700, 64, 20, torch.Generator().manual_seed(2))
    assert torch.equal(torch.get_rng_state(), state), "the global RNG must not be used"
    assert a == b
    assert a != c
    assert len({(box.top, box.left) for box in a}) > 10
    counts = count_map(500, 700, a)
    assert counts.sum() == 20 * 64 * 64
    small = random_boxes(30, 50, 64, 3, torch.Generator().manual_seed(0))
    assert small == [Box(0, 0, 30, 50)] * 3


def test_random_patch_policy_scores_reproducible() -> None:
    x = torch.rand(1, 3, 300, 400, generator=torch.Generator().manual_seed(0))
    p1 = InputPolicy(mode="random_patches", tile_size=32, num_patches=8, seed=5)
    p2 = InputPolicy(mode="random_patches", tile_size=32, num_patches=8, seed=6)
    s1 = apply_policy(pixel_mean, x, p1)
    assert torch.equal(s1, apply_policy(pixel_mean, x, p1))
    assert not torch.equal(s1, apply_policy(pixel_mean, x, p2))


def brute_force_scale(height: int, width: int, p: int, n: int, hi: float) -> float:
    scales = np.arange(1, int(hi * 20000) + 1) / 20000.0
    counts = np.ceil(height * scales / p - 1e-9) * np.ceil(width * scales / p - 1e-9)
    return float(scales[counts <= n].max())


@pytest.mark.parametrize(
    ("height", "width", "p", "n"),
    [
        (4320, 7680, 16, 256),
        (1080, 1920, 14, 729),
        (3000, 400, 16, 100),
        (517, 389, 32, 30),
        (777, 777, 16, 64),
    ],
)
def test_budget_resize_respects_budget_and_aspect(height: int, width: int, p: int, n: int) -> None:
    s = budget_scale(height, width, p, n)
    h2, w2 = budget_size(height, width, p, n)
    assert math.ceil(h2 / p) * math.ceil(w2 / p) <= n
    assert abs(w2 - h2 * width / height) <= 1.0
    assert abs(w2 - width * s) <= 0.5
    assert abs(h2 - height * s) <= 0.5
    grid = brute_force_scale(height, width, p, n, hi=1.0)
    assert grid <= s + 1e-12
    assert s - grid <= 1 / 20000 + 1e-12


def test_budget_never_upscales_unless_asked() -> None:
    assert budget_size(100, 150, 16, 1024) == (100, 150)
    s = budget_scale(100, 150, 16, 1024, allow_upscale=True)
    assert s == pytest.approx(brute_force_scale(100, 150, 16, 1024, hi=6.0), abs=1 / 20000)
    h2, w2 = budget_size(100, 150, 16, 1024, allow_upscale=True)
    assert h2 > 100
    assert math.ceil(h2 / 16) * math.ceil(w2 / 16) <= 1024


def test_resize_to_budget_shape_and_range() -> None:
    x = torch.rand(2, 3, 450, 800, generator=torch.Generator().manual_seed(0))
    y = resize_to_budget(x, 16, 64)
    assert tuple(y.shape[-2:]) == budget_size(450, 800, 16, 64)
    assert y.min() >= 0
    assert y.max() <= 1
    seen = []
    policy = InputPolicy(mode="resize_budget", patch_size=16, max_patches=64)
    apply_policy(lambda c: seen.append(tuple(c.shape)) or c.mean(dim=(1, 2, 3)), x, policy)
    assert seen == [(2, 3, *budget_size(450, 800, 16, 64))]


def test_8k_image_scored_in_bounded_chunks() -> None:
    height, width, tile, max_batch = 4320, 7680, 240, 24
    column = torch.rand(1, 3, height, 1, generator=torch.Generator().manual_seed(0))
    image = column.expand(1, 3, height, width)  # 8K view of a 50 KB tensor: no 400 MB allocation
    calls: list[int] = []

    def counting(crops: torch.Tensor) -> torch.Tensor:
        calls.append(crops.shape[0])
        assert crops.shape[1:] == (3, tile, tile)
        return crops.mean(dim=(1, 2, 3))

    score = apply_policy(counting, image, InputPolicy(mode="tiles", tile_size=tile), max_batch=max_batch)
    n_tiles = (height // tile) * (width // tile)
    assert sum(calls) == n_tiles == 576
    assert max(calls) <= max_batch
    assert len(calls) == math.ceil(n_tiles / max_batch)
    assert score.item() == pytest.approx(column.double().mean().item(), abs=1e-6)


def test_batch_of_images_per_image_scores_and_chunk_size() -> None:
    x = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls: list[int] = []

    def counting(crops: torch.Tensor) -> torch.Tensor:
        calls.append(crops.shape[0])
        return crops.mean(dim=(1, 2, 3))

    score = apply_policy(counting, x, InputPolicy(mode="tiles", tile_size=32), max_batch=7)
    np.testing.assert_allclose(score.numpy(), x.numpy().reshape(3, -1).mean(axis=1), atol=1e-12)
    assert max(calls) <= 7
    assert sum(calls) == 6 * 3
    full = apply_policy(counting, x, InputPolicy(mode="full"), max_batch=2)
    np.testing.assert_allclose(full.numpy(), x.numpy().reshape(3, -1).mean(axis=1), atol=1e-12)


@pytest.mark.parametrize("mode", ["tiles", "random_patches"])
def test_full_reference_gets_the_same_crops(mode: str) -> None:
    x = torch.rand(2, 3, 200, 260, generator=torch.Generator().manual_seed(0))
    ref = x * 0.5

    def fr(crops: torch.Tensor, ref_crops: torch.Tensor) -> torch.Tensor:
        assert torch.equal(ref_crops, crops * 0.5)
        return (crops - ref_crops).abs().mean(dim=(1, 2, 3))

    policy = InputPolicy(mode=mode, tile_size=48, stride=40, num_patches=9, seed=4)  # type: ignore[arg-type]
    score = apply_policy(fr, x, policy, reference=ref, max_batch=5)
    assert score.shape == (2,)
    with pytest.raises(InputError, match="reference shape"):
        apply_policy(fr, x, policy, reference=ref[:, :, :100])


def test_gradient_of_area_weighted_tile_mean_is_uniform() -> None:
    # d/dx of the image mean is 1 / (C H W) at every pixel, whichever tiles the mean was cut into.
    x = torch.rand(1, 3, 50, 70, dtype=torch.float64, requires_grad=True)
    policy = InputPolicy(mode="tiles", tile_size=32, border="crop", aggregation="area")
    apply_policy(pixel_mean, x, policy, max_batch=2).sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), 1 / (3 * 50 * 70), rtol=1e-12)


def test_score_boxes_order_follows_boxes() -> None:
    x = torch.arange(4 * 6, dtype=torch.float32).reshape(1, 1, 4, 6)
    boxes = [Box(0, 0, 2, 2), Box(2, 4, 2, 2), Box(0, 0, 4, 6), Box(2, 0, 2, 2)]
    out = score_boxes(lambda c: c.amax(dim=(1, 2, 3)), x, boxes, max_batch=1)
    assert out[:, 0].tolist() == [7.0, 23.0, 23.0, 19.0]


def test_bad_inputs_raise_input_error() -> None:
    with pytest.raises(InputError, match="mode"):
        InputPolicy(mode="grid")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="stride"):
        InputPolicy(mode="tiles", tile_size=16, stride=32)
    with pytest.raises(InputError, match="tile_size"):
        InputPolicy(tile_size=0)
    with pytest.raises(InputError, match="max_patches"):
        budget_scale(10, 10, 16, 0)
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(InputError, match="score_fn must return 4 scores"):
        apply_policy(lambda c: c.mean(), x, InputPolicy(mode="tiles", tile_size=16))
    with pytest.raises(InputError, match="shape"):
        apply_policy(pixel_mean, torch.rand(32, 32), InputPolicy())
    with pytest.raises(InputError, match="generator"):
        random_boxes(10, 10, 4, 2, generator=0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "score",
    [
        lambda fn, x, **kw: score_boxes(fn, x, [Box(0, 0, 8, 8)], **kw),
        lambda fn, x, **kw: apply_policy(fn, x, InputPolicy(mode="tiles", tile_size=8), **kw),
    ],
    ids=["score_boxes", "apply_policy"],
)
def test_box_scoring_entry_points_check_their_inputs_alike(score) -> None:
    x = torch.rand(2, 3, 16, 16)

    def fr(crops: torch.Tensor, ref_crops: torch.Tensor) -> torch.Tensor:
        return crops.mean(dim=(1, 2, 3))

    with pytest.raises(
        InputError, match=r"^image shape \(2, 3, 16, 16\) differs from reference shape \(2, 3, 8, 16\)$"
    ):
        score(fr, x, reference=x[:, :, :8])
    with pytest.raises(InputError, match=r"^max_batch must be >= 1, got 0$"):
        score(pixel_mean, x, max_batch=0)
    with pytest.raises(InputError, match=r"^reference: expected a torch.Tensor image, got list$"):
        score(fr, x, reference=x.tolist())


def test_image_views_are_the_mirror_image_and_the_corner_crops() -> None:
    pixels = np.arange(2 * 3 * 10 * 20, dtype=np.float32).reshape(2, 3, 10, 20)
    images = torch.from_numpy(pixels)
    assert image_view(images, "full") is images
    np.testing.assert_array_equal(image_view(images, "hflip").numpy(), pixels[..., ::-1])
    corners = {"crop_tl": pixels[..., :9, :18], "crop_tr": pixels[..., :9, 2:],
               "crop_bl": pixels[..., 1:, :18], "crop_br": pixels[..., 1:, 2:]}  # fmt: skip
    for name, expected in corners.items():  # 0.9 x (10, 20) = (9, 18) pixels
        np.testing.assert_array_equal(image_view(images, name, 0.9).numpy(), expected)
    assert set(IMAGE_VIEWS) == {"full", "hflip", *corners}
    with pytest.raises(InputError, match="unknown image view 'crop_centre'"):
        image_view(images, "crop_centre")
    with pytest.raises(InputError, match="crop_fraction"):
        image_view(images, "crop_tl", 1.5)


def test_as_batch_is_the_one_image_check_of_policies_and_metrics():
    from perceptiq.functional._checks import as_batch
    from perceptiq.metrics import create_metric

    single = torch.rand(3, 5, 6)
    assert as_batch(single, "image").shape == (1, 3, 5, 6)
    assert torch.equal(as_batch(single, "image")[0], single)
    assert as_batch(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), "image").dtype == torch.uint8
    with pytest.raises(InputError, match=r"^image: expected a torch.Tensor image, got list$"):
        as_batch([1.0], "image")  # type: ignore[arg-type]
    with pytest.raises(
        InputError, match=r"^image: expected a float image, got dtype torch.uint8 \(give a float"
    ):
        as_batch(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), "image", floating=True)
    with pytest.raises(InputError, match=r"x: values must lie in \[0, 1\], got min -1 and max -1"):
        as_batch(-torch.ones(1, 4, 4), "x", unit_range=True)
    with pytest.raises(InputError, match=r"x: the image is empty"):
        as_batch(torch.zeros(1, 3, 0, 4), "x", unit_range=True)
    # the same check, with the callers' options, behind a metric and a policy (distortions: test_distortions)
    uint8 = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(InputError, match=r"^reference: expected a float image, got dtype torch.uint8"):
        create_metric("psnr")(torch.rand(1, 3, 16, 16), uint8)
    with pytest.raises(
        InputError, match=r"^image: expected an image \(B, C, H, W\) or \(C, H, W\), got shape \(16,\)$"
    ):
        apply_policy(pixel_mean, torch.rand(16), InputPolicy())
