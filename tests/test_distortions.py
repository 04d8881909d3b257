"""Synthetic distortions and the graded generator: references, determinism, monotone severity, pairs, dataset.

References: scipy.ndimage filters, Pillow's own codecs and float resamplers, scikit-image PSNR/SSIM,
the perceptiq SSIM metric, and formulas evaluated by hand in numpy.
"""

from __future__ import annotations

import doctest
import importlib
import io
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import SHARED_DATA, shared_data
from perceptiq.data import distortions as D
from perceptiq.data.distortions.blur import disk_kernel
from perceptiq.data.distortions.resampling import lanczos_matrix
from perceptiq.data.ladders import (
    PRISTINE,
    SEVERITIES,
    DistortionGenerator,
    GroupBatchSampler,
    SyntheticQualityDataset,
    derive_seed,
    pair_label,
    pseudo_mos,
    ranked_pairs,
    severity_indices,
)
from perceptiq.errors import DataFileError, InputError, RegistryError
from perceptiq.io.images import read_image, save_image
from perceptiq.metrics import create_metric

PRISTINE_DIR = SHARED_DATA / "pristine_natural"
PHOTOS = ("kodak24/kodim05.webp", "mcmaster/03.webp", "urban100/img_009.webp")
JP2 = D.jpeg2000_available()
NO_JP2 = "this Pillow build has no OpenJPEG (PIL.features.check('jpg_2000') is False)"
FAMILIES = [
    pytest.param(n, marks=pytest.mark.skipif(not JP2, reason=NO_JP2)) if n == "jpeg2000" else n
    for n in SEVERITIES
]
RANDOM = [n for n in SEVERITIES if D.DISTORTIONS[n].random]
PHOTOMETRIC = ("contrast", "brightness", "saturation")


def synthetic_image(h: int = 96, w: int = 128, seed: int = 0) -> torch.Tensor:
    """A natural-like colour image (1, 3, h, w): 1/f noise (the power law of natural image spectra),
    a few flat rectangles with sharp edges, and values spread over [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    fy, fx = torch.fft.fftfreq(h)[:, None], torch.fft.rfftfreq(w)[None, :]
    radius = torch.sqrt(fy**2 + fx**2).clamp_min(1.0 / max(h, w))
    spectrum = torch.complex(
        torch.randn(3, *radius.shape, generator=g), torch.randn(3, *radius.shape, generator=g)
    )
    field = torch.fft.irfft2(spectrum / radius, s=(h, w))
    for _ in range(4):
        top, left = (torch.randint(0, n // 2, (1,), generator=g).item() for n in (h, w))
        field[:, top : top + h // 3, left : left + w // 3] = field.mean() + 2 * field.std() * (
            torch.rand(3, 1, 1, generator=g) - 0.5
        )
    low, high = field.amin(dim=(1, 2), keepdim=True), field.amax(dim=(1, 2), keepdim=True)
    return (0.1 + 0.8 * (field - low) / (high - low)).unsqueeze(0)


def to_hwc(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).double().numpy()


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """The images here are small: one intra-op thread is faster than two contending ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    """Centre crops 192 x 192 of three pristine photos (Kodak, McMaster, Urban100)."""
    folder = shared_data(*PRISTINE_DIR.relative_to(SHARED_DATA).parts)
    out = []
    for name in PHOTOS:
        x = read_image(folder / name)
        h, w = x.shape[-2:]
        out.append(x[..., (h - 192) // 2 : (h + 192) // 2, (w - 192) // 2 : (w + 192) // 2].contiguous())
    return out


def ladder(image: torch.Tensor, name: str, seed: int = 5) -> list[torch.Tensor]:
    return [D.DISTORTIONS[name](image, lv, torch.Generator().manual_seed(seed)) for lv in SEVERITIES[name]]


# ---------------------------------------------------------------------------------------------------
# registry and ladders


def test_every_requested_family_has_a_five_level_ladder_in_its_direction():
    requested = {
        "gaussian_blur", "motion_blur", "defocus_blur", "gaussian_noise", "poisson_noise", "color_noise",
        "luminance_noise",
        "jpeg", "jpeg2000", "contrast", "brightness", "saturation", "pixelate", "quantize",
        "downup_bicubic", "downup_bilinear", "downup_nearest", "downup_lanczos",
        "oversharpen", "ringing", "hallucinated_texture",
    }  # fmt: skip
    assert requested == set(SEVERITIES) <= set(D.DISTORTIONS)
    for name, levels in SEVERITIES.items():
        steps = np.diff(levels)
        assert len(levels) == 5
        assert np.all(steps > 0) if D.DISTORTIONS[name].stronger == "higher" else np.all(steps < 0), name


def test_jpeg_quality_ladder_falls_and_matches_pillow(photos):
    x = photos[0]
    qualities = SEVERITIES["jpeg"]
    assert list(qualities) == sorted(qualities, reverse=True)
    pil = Image.fromarray((to_hwc(x) * 255).round().astype(np.uint8))
    sizes, psnrs = [], []
    for q in qualities:
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=q)
        expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue()))).astype(np.float64) / 255
        got = to_hwc(D.jpeg_compression(x, q))
        np.testing.assert_allclose(got, expected, atol=1e-6)
        sizes.append(len(buffer.getvalue()))
        psnrs.append(peak_signal_noise_ratio(to_hwc(x), got, data_range=1.0))
    assert np.all(np.diff(sizes) < 0)
    assert np.all(np.diff(psnrs) < 0)


def test_aliases_and_legacy_ladders_still_work():
    x = synthetic_image(32, 32)
    assert set(D.LADDERS) == {"blur", "noise", "jpeg", "downup"}
    torch.testing.assert_close(D.distort(x, "blur", 2.0), D.gaussian_blur(x, 2.0))
    torch.testing.assert_close(D.distort(x, "downup", 2.0), D.resample_down_up(x, 2.0, "bicubic"))
    torch.testing.assert_close(
        D.distort(x, "noise", 0.1, seed=4), D.gaussian_noise(x, 0.1, torch.Generator().manual_seed(4))
    )
    with pytest.raises(RegistryError, match="unknown distortion 'blurr'"):
        D.distort(x, "blurr", 1.0)


# ---------------------------------------------------------------------------------------------------
# contract of every family: determinism, shape, dtype, range


@pytest.mark.parametrize("name", FAMILIES)
def test_same_seed_same_output_and_contract(name):
    x = synthetic_image(40, 56)
    level = SEVERITIES[name][2]
    first = D.distort(x, name, level, seed=11)
    assert torch.equal(first, D.distort(x, name, level, seed=11))
    assert first.shape == x.shape
    assert first.dtype == x.dtype
    assert first.min().item() >= 0.0
    assert first.max().item() <= 1.0
    if name in RANDOM:
        assert not torch.equal(first, D.distort(x, name, level, seed=12))
    else:
        assert torch.equal(first, D.distort(x, name, level, seed=12))
    assert not torch.equal(first, x)
    assert D.distort(x.half(), name, level, seed=11).dtype == torch.float16
    single = D.distort(x[0].double(), name, level, seed=11)
    assert single.shape == x.shape[1:]
    assert single.dtype == torch.float64


@pytest.mark.parametrize("name", RANDOM)
def test_random_families_need_an_explicit_generator(name):
    with pytest.raises(InputError, match="explicit torch.Generator"):
        D.DISTORTIONS[name](synthetic_image(16, 16), SEVERITIES[name][0])


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (torch.full((1, 3, 8, 8), 1.5), r"values must lie in \[0, 1\], got min 1.5"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "expected a float image"),
        (torch.zeros(8, 8), "expected a float image"),
        (torch.full((1, 3, 8, 8), float("nan")), "values must lie in"),
    ],
)
def test_bad_images_are_refused(image, match):
    with pytest.raises(InputError, match=match):
        D.gaussian_blur(image, 1.0)


@pytest.mark.parametrize(
    ("name", "level", "match"),
    [
        ("gaussian_blur", -1.0, r"sigma must lie in \[0.0, inf\], got -1.0"),
        ("jpeg", 0, r"quality must lie in \[1, 100\]"),
        ("quantize", 2.5, "levels must be an integer"),
        ("pixelate", 1.5, "block must be an integer"),
        ("contrast", 1.2, r"factor must lie in \[0.0, 1.0\]"),
        ("downup_lanczos", "x2", "factor must be a number"),
    ],
)
def test_bad_levels_are_refused(name, level, match):
    with pytest.raises(InputError, match=match):
        D.distort(synthetic_image(16, 16), name, level)


# ---------------------------------------------------------------------------------------------------
# monotone severity by full-reference metrics


def _psnrs(reference: torch.Tensor, images: list[torch.Tensor]) -> list[float]:
    return [peak_signal_noise_ratio(to_hwc(reference), to_hwc(y), data_range=1.0) for y in images]


@pytest.mark.parametrize("name", FAMILIES)
def test_psnr_falls_with_severity_on_synthetic_image(name):
    x = synthetic_image()
    scores = _psnrs(x, ladder(x, name))
    assert np.all(np.diff(scores) < 0), f"{name}: PSNR {np.round(scores, 2)}"


@pytest.mark.parametrize("name", FAMILIES)
def test_psnr_falls_with_severity_on_photos(name, photos):
    for index, x in enumerate(photos):
        scores = _psnrs(x, ladder(x, name))
        assert np.all(np.diff(scores) < 0), f"{name} on {PHOTOS[index]}: PSNR {np.round(scores, 2)}"


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_ssim_falls_with_photometric_shifts_on_photos(name, photos):
    metric = create_metric("ssim", color="rgb")
    for index, x in enumerate(photos):
        images = ladder(x, name)
        ours = metric(torch.cat(images), x.expand(len(images), -1, -1, -1)).tolist()
        skimage_ssim = [
            structural_similarity(to_hwc(x), to_hwc(y), data_range=1.0, channel_axis=2) for y in images
        ]
        assert np.all(np.diff(ours) < 0), f"{name} on {PHOTOS[index]}: SSIM {np.round(ours, 4)}"
        assert np.all(np.diff(skimage_ssim) < 0), f"{name} on {PHOTOS[index]}: skimage SSIM {skimage_ssim}"


# ---------------------------------------------------------------------------------------------------
# each family against an independent reference


def test_gaussian_blur_matches_scipy():
    x = synthetic_image(30, 41).double()
    for sigma in (0.6, 2.0, 5.0):
        expected = ndimage.gaussian_filter(x.numpy(), (0, 0, sigma, sigma), mode="reflect", truncate=3.0)
        np.testing.assert_allclose(D.gaussian_blur(x, sigma).numpy(), expected.clip(0, 1), atol=1e-12)


@pytest.mark.parametrize("length", [5, 15])  # 7x7 kernel by conv2d, 17x17 kernel by FFT
def test_motion_blur_at_0_and_90_degrees_is_a_box_filter(length):
    x = synthetic_image(40, 50).double()
    along_x = ndimage.uniform_filter1d(x.numpy(), length, axis=-1, mode="reflect")
    along_y = ndimage.uniform_filter1d(x.numpy(), length, axis=-2, mode="reflect")
    np.testing.assert_allclose(D.motion_blur(x, length, angle=0.0).numpy(), along_x, atol=1e-10)
    np.testing.assert_allclose(D.motion_blur(x, length, angle=90.0).numpy(), along_y, atol=1e-10)
    assert torch.equal(D.motion_blur(x, 1, angle=30.0), x)


def test_motion_blur_draws_its_angle_from_the_generator():
    x = synthetic_image(40, 50)
    angle = 180.0 * torch.rand((), generator=torch.Generator().manual_seed(3), dtype=torch.float64).item()
    torch.testing.assert_close(
        D.motion_blur(x, 9, generator=torch.Generator().manual_seed(3)), D.motion_blur(x, 9, angle=angle)
    )


def test_defocus_spreads_a_point_into_a_uniform_disk():
    radius = 4.0
    x = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    x[..., 10, 10] = 1.0
    y = D.defocus_blur(x, radius)[0, 0].numpy()
    yy, xx = np.mgrid[-10:11, -10:11]
    dist = np.hypot(yy, xx)
    inside = y[dist <= radius - 0.5]
    assert np.all(y[dist >= radius + 0.5] == 0)
    assert np.ptp(inside) < 1e-15
    assert y.sum() == pytest.approx(1.0)
    # the kernel's unnormalised weights approximate the disk area pi r^2
    assert 1.0 / inside[0] == pytest.approx(math.pi * radius**2, rel=0.02)
    assert disk_kernel(0.0).numel() == 9
    assert disk_kernel(0.0)[1, 1] == 1.0


def test_gaussian_and_poisson_noise_statistics():
    g = torch.Generator().manual_seed(0)
    grey = torch.full((1, 1, 256, 256), 0.5, dtype=torch.float64)
    noisy = D.gaussian_noise(grey, 0.05, g)
    assert noisy.mean().item() == pytest.approx(0.5, abs=1e-3)
    assert noisy.std().item() == pytest.approx(0.05, rel=0.02)
    dark = torch.full((1, 1, 256, 256), 0.3, dtype=torch.float64)
    shot = D.poisson_noise(dark, 50.0, g)
    assert shot.mean().item() == pytest.approx(0.3, rel=0.01)
    assert shot.var().item() == pytest.approx(0.3 / 50.0, rel=0.03)  # Var[Poisson(lambda)] = lambda
    assert torch.all(torch.remainder(shot * 50.0 + 1e-9, 1.0) < 1e-6)  # counts / peak


def test_color_noise_leaves_luma_alone_and_hits_chroma():
    grey = torch.full((1, 3, 128, 128), 0.5, dtype=torch.float64)
    y = D.color_noise(grey, 0.02, torch.Generator().manual_seed(1)).numpy()[0]
    luma = 0.299 * y[0] + 0.587 * y[1] + 0.114 * y[2]
    cb = -0.168736 * y[0] - 0.331264 * y[1] + 0.5 * y[2]  # JFIF RGB -> Cb
    np.testing.assert_allclose(luma, 0.5, atol=1e-5)
    assert cb.std() == pytest.approx(0.02, rel=0.03)
    with pytest.raises(InputError, match="needs RGB"):
        D.color_noise(grey[:, :1], 0.02, torch.Generator())


def test_luminance_noise_leaves_chroma_alone_and_hits_luma():
    grey = torch.full((1, 3, 128, 128), 0.5, dtype=torch.float64)
    y = D.luminance_noise(grey, 0.02, torch.Generator().manual_seed(1)).numpy()[0]
    luma = 0.299 * y[0] + 0.587 * y[1] + 0.114 * y[2]
    cb = -0.168736 * y[0] - 0.331264 * y[1] + 0.5 * y[2]  # JFIF RGB -> Cb
    cr = 0.5 * y[0] - 0.418688 * y[1] - 0.081312 * y[2]
    np.testing.assert_allclose(cb, 0.0, atol=1e-5)
    np.testing.assert_allclose(cr, 0.0, atol=1e-5)
    assert luma.std() == pytest.approx(0.02, rel=0.03)


def test_photometric_shifts_match_their_formulas():
    x = synthetic_image(24, 32).double()
    a = x.numpy()
    luma = 0.299 * a[:, 0:1] + 0.587 * a[:, 1:2] + 0.114 * a[:, 2:3]
    mean = luma.mean()
    np.testing.assert_allclose(D.contrast_change(x, 0.4).numpy(), mean + 0.4 * (a - mean), atol=1e-12)
    np.testing.assert_allclose(D.brightness_change(x, 0.3).numpy(), np.clip(a + 0.3, 0, 1), atol=1e-12)
    np.testing.assert_allclose(D.brightness_change(x, -0.3).numpy(), np.clip(a - 0.3, 0, 1), atol=1e-12)
    np.testing.assert_allclose(D.saturation_change(x, 0.25).numpy(), luma + 0.25 * (a - luma), atol=1e-12)
    np.testing.assert_allclose(D.quantize(x, 5).numpy(), np.round(a * 4) / 4, atol=1e-12)
    assert torch.equal(D.saturation_change(x[:, :1], 0.0), x[:, :1])


def test_pixelate_is_a_block_mean():
    x = synthetic_image(24, 36).double()
    blocks = x.numpy().reshape(1, 3, 4, 6, 6, 6).mean(axis=(3, 5))
    expected = blocks.repeat(6, axis=2).repeat(6, axis=3)
    np.testing.assert_allclose(D.pixelate(x, 6).numpy(), expected, atol=1e-12)
    ragged = D.pixelate(x[..., :23, :35], 6).numpy()
    np.testing.assert_allclose(
        ragged[..., -1, -1], x.numpy()[..., 18:23, 30:35].mean(axis=(-2, -1)), atol=1e-12
    )


@pytest.mark.parametrize(
    ("mode", "pillow"), [("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR), ("lanczos", Image.LANCZOS)]
)
@pytest.mark.parametrize("factor", [2, 3, 8])
def test_down_up_matches_pillow_float_resize(mode, pillow, factor):
    x = synthetic_image(61, 83)
    h, w = x.shape[-2:]
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    expected = []
    for channel in x[0].numpy():
        img = Image.fromarray(channel.astype(np.float32), mode="F")
        expected.append(np.asarray(img.resize(small, pillow).resize((w, h), pillow)))
    np.testing.assert_allclose(
        D.resample_down_up(x, factor, mode)[0].numpy(), np.clip(np.stack(expected), 0, 1), atol=2e-6
    )


@pytest.mark.parametrize("factor", [2, 3, 8])
def test_nearest_down_up_picks_the_sample_under_each_pixel_centre(factor):
    x = synthetic_image(61, 83)
    h, w = x.shape[-2:]
    sh, sw = round(h / factor), round(w / factor)

    def centres(n_in: int, n_out: int) -> list[int]:  # floor((i + 1/2) n_in / n_out), exactly
        return [math.floor(Fraction(2 * i + 1, 2) * Fraction(n_in, n_out)) for i in range(n_out)]

    rows = np.array(centres(sh, h))
    cols = np.array(centres(sw, w))
    small = x.numpy()[..., np.array(centres(h, sh))[:, None], np.array(centres(w, sw))[None, :]]
    expected = small[..., rows[:, None], cols[None, :]]
    np.testing.assert_array_equal(D.resample_down_up(x, factor, "nearest").numpy(), expected)


def test_lanczos_matrix_identity_and_partition_of_unity():
    torch.testing.assert_close(lanczos_matrix(9, 9), torch.eye(9, dtype=torch.float64))
    for n_in, n_out in ((50, 17), (17, 50), (8, 1)):
        torch.testing.assert_close(lanczos_matrix(n_in, n_out).sum(1), torch.ones(n_out, dtype=torch.float64))


def test_oversharpen_is_unsharp_masking():
    x = synthetic_image(30, 40).double()
    a = x.numpy()
    blurred = ndimage.gaussian_filter(a, (0, 0, 1.5, 1.5), mode="reflect", truncate=3.0)
    expected = np.clip(a + 2.0 * (a - blurred), 0, 1)
    np.testing.assert_allclose(D.oversharpen(x, 2.0).numpy(), expected, atol=1e-12)


def test_ringing_is_an_ideal_low_pass_of_the_mirrored_image():
    # cos(pi k (n + 1/2) / N) is periodic under half-sample mirroring, at frequency k / 2N cycles/px
    h, w = 24, 32
    n, m = torch.arange(h, dtype=torch.float64)[:, None], torch.arange(w, dtype=torch.float64)[None, :]
    low = torch.cos(math.pi * 3 * (m + 0.5) / w) * torch.cos(math.pi * 2 * (n + 0.5) / h)  # |f| = 0.061
    high = torch.cos(math.pi * 10 * (m + 0.5) / w)  # |f| = 0.156
    x = (0.5 + 0.2 * low + 0.2 * high).expand(1, 1, h, w)
    cutoff = 0.2  # keeps |f| <= 0.1
    torch.testing.assert_close(D.ringing(x, cutoff), (0.5 + 0.2 * low).expand(1, 1, h, w))
    torch.testing.assert_close(D.ringing(x, 1.5), x)


def test_hallucinated_texture_stays_out_of_flat_areas():
    g = torch.Generator().manual_seed(2)
    flat = torch.full((1, 3, 48, 48), 0.4)
    assert torch.equal(D.hallucinated_texture(flat, 0.1, g), flat)
    x = flat.clone()
    x[..., :, 24:] += 0.25 * (torch.rand(1, 1, 48, 24, generator=g) - 0.5)
    added = D.hallucinated_texture(x, 0.05, torch.Generator().manual_seed(3)) - x
    assert added[..., :, :12].abs().max() < 1e-6  # more than 3 sigma of the mask window from texture
    assert added[..., 8:40, 32:].std().item() == pytest.approx(0.05, rel=0.3)
    torch.testing.assert_close(added[:, 0], added[:, 1])  # one luminance texture for all channels


@pytest.mark.skipif(not JP2, reason=NO_JP2)
def test_jpeg2000_matches_pillow_round_trip(photos):
    x = photos[1]
    pil = Image.fromarray((to_hwc(x) * 255).round().astype(np.uint8))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG2000", quality_mode="rates", quality_layers=[64], irreversible=True)
    expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue()))).astype(np.float64) / 255
    np.testing.assert_allclose(to_hwc(D.jpeg2000_compression(x, 64)), expected, atol=1e-6)


def test_jpeg2000_without_openjpeg_is_a_clear_error(monkeypatch):
    from perceptiq.data.distortions import compression

    monkeypatch.setattr(compression.features, "check", lambda feature: False)
    with pytest.raises(D.DistortionUnavailableError, match="no OpenJPEG"):
        D.jpeg2000_compression(synthetic_image(16, 16), 20)
    with pytest.raises(D.DistortionUnavailableError, match="'jpeg2000' is unavailable"):
        DistortionGenerator(names=["jpeg2000"])
    assert "jpeg2000" not in DistortionGenerator().names


# ---------------------------------------------------------------------------------------------------
# generator, pseudo-MOS and ranked pairs


def test_pseudo_mos_by_hand():
    assert [pseudo_mos(s) for s in range(6)] == pytest.approx([5.0, 4.2, 3.4, 2.6, 1.8, 1.0], abs=1e-12)
    assert [pseudo_mos(s, levels=2) for s in range(3)] == [5.0, 3.0, 1.0]
    for bad in (-1, 6, 1.5):
        with pytest.raises(InputError, match="severity must be an integer"):
            pseudo_mos(bad)
    assert severity_indices(4) == (1, 2, 3, 4)
    assert severity_indices(2) == (2, 4)


def test_pair_label_rules():
    assert pair_label(("blur", 2), ("blur", 3)) == (True, 1.0)
    assert pair_label(("blur", 3), ("blur", 2)) == (True, 0.0)
    assert pair_label((PRISTINE, 0), ("jpeg", 1)) == (True, 1.0)
    assert pair_label(("jpeg", 1), ("blur", 3)) == (False, None)
    assert pair_label(("jpeg", 1), ("blur", 3), "unlabelled") == (True, None)
    assert pair_label(("jpeg", 4), ("blur", 3), "pseudo_mos") == (True, 0.0)
    with pytest.raises(InputError, match="cross_type"):
        pair_label(("jpeg", 1), ("blur", 3), "all")


def test_generator_is_seeded_per_family_and_shares_one_draw_along_the_ladder():
    x = synthetic_image(32, 40)
    gen = DistortionGenerator(names=["gaussian_noise", "jpeg"], levels=5, seed=3, include_pristine=True)
    first, again = list(gen(x, group=2)), list(gen(x, group=2))
    assert [(d.name, d.severity, d.mos) for d in first][:3] == [
        (PRISTINE, 0, 5.0),
        ("gaussian_noise", 1, 4.2),
    ] + [("gaussian_noise", 2, 3.4)]
    assert all(torch.equal(a.image, b.image) for a, b in zip(first, again, strict=True))
    other = list(DistortionGenerator(names=["gaussian_noise"], seed=4)(x, group=2))
    assert not torch.equal(other[0].image, first[1].image)
    # one noise field scaled by sigma: where nothing clips, (y - x) / sigma is the same at every severity
    mildest = first[1]
    assert torch.equal(
        mildest.image,
        D.gaussian_noise(x, 0.01, torch.Generator().manual_seed(derive_seed(3, 2, "gaussian_noise"))),
    )
    field = (mildest.image - x) / mildest.level
    for d in first[2:6]:
        inside = (d.image > 0) & (d.image < 1) & (mildest.image > 0) & (mildest.image < 1)
        assert inside.float().mean() > 0.5
        torch.testing.assert_close(((d.image - x) / d.level)[inside], field[inside], atol=1e-4, rtol=0)


def test_ranked_pairs_labels_and_counts():
    images = [synthetic_image(32, 40, seed=s) for s in range(2)]
    names = ["gaussian_blur", "jpeg", "quantize"]
    pairs = list(ranked_pairs(images, names=names, levels=3, seed=0))
    per_image = 3 * math.comb(3, 2) + 3 * 3  # within each family, plus pristine against every version
    assert len(pairs) == 2 * per_image
    labels = [p.label for p in pairs]
    assert 0.2 < np.mean(labels) < 0.8
    assert set(labels) == {0.0, 1.0}
    for p in pairs:
        assert p.a.group == p.b.group
        assert p.a.name == p.b.name or PRISTINE in (p.a.name, p.b.name)
        assert p.label == (1.0 if p.a.severity < p.b.severity else 0.0)
        ref = images[p.a.group]
        better, worse = (p.a, p.b) if p.label == 1.0 else (p.b, p.a)
        assert (better.image - ref).square().mean() < (worse.image - ref).square().mean()
    ordered = list(ranked_pairs(images[:1], names=names, levels=3, shuffle=False))
    assert all(p.label == 1.0 for p in ordered)
    grey = images[0][:, :1].expand(1, 3, -1, -1)  # saturation cannot change it: those pairs are dropped
    kept = list(ranked_pairs([grey], names=["saturation", "jpeg"], levels=2, shuffle=False))
    pairs_kept = [((p.a.name, p.a.severity), (p.b.name, p.b.severity), p.label) for p in kept]
    assert pairs_kept == [((PRISTINE, 0), ("jpeg", 1), 1.0), ((PRISTINE, 0), ("jpeg", 2), 1.0)] + [
        (("jpeg", 1), ("jpeg", 2), 1.0)
    ]
    everything = list(ranked_pairs(images[:1], names=names, levels=3, cross_type="unlabelled"))
    assert len(everything) == math.comb(10, 2)
    assert sum(p.label is None for p in everything) == math.comb(10, 2) - per_image


# ---------------------------------------------------------------------------------------------------
# the dataset


@pytest.fixture(scope="module")
def pristine_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pristine")
    for seed, size in enumerate([(64, 80), (72, 72), (60, 90)]):
        save_image(synthetic_image(*size, seed=seed), folder / f"img{seed}.png")
    return folder


def test_dataset_is_reproducible_and_grouped(pristine_folder):
    names = ["gaussian_noise", "jpeg", "downup_lanczos"]
    data = SyntheticQualityDataset(pristine_folder, names=names, levels=2, crop=48, seed=7)
    assert len(data) == 3 * (1 + 3 * 2)
    twin = SyntheticQualityDataset(pristine_folder, names=names, levels=2, crop=48, seed=7)
    for i in range(len(data)):
        image, mos, group = data[i]
        again = twin[i]
        assert torch.equal(image, again[0])
        assert image.shape == (3, 48, 48)
        assert image.dtype == torch.float32
        severity = data.variants[i % 7][1]
        assert group == i // 7
        assert mos.item() == pytest.approx(5 - 4 * severity / 2)
    # every version of a group is the same crop, distorted by the generator
    crop = data[7][0]
    source = read_image(pristine_folder / "img1.png")
    windows = [(t, c) for t in range(72 - 47) for c in range(72 - 47)]
    assert sum(torch.equal(source[0, :, t : t + 48, c : c + 48], crop) for t, c in windows) == 1
    noisy = data.generator.distort(crop[None], "gaussian_noise", 2, group=1)[0]
    assert torch.equal(data[9][0], noisy)
    other_seed = SyntheticQualityDataset(pristine_folder, names=names, levels=2, crop=48, seed=8)
    assert not torch.equal(other_seed[8][0], data[8][0])
    data.set_epoch(1)
    assert not torch.equal(data[8][0], twin[8][0])
    data.set_epoch(0)
    assert torch.equal(data[8][0], twin[8][0])


def test_dataset_from_manifest_loader_and_group_batches(pristine_folder, tmp_path):
    manifest = tmp_path / "pristine.csv"
    pd.DataFrame({"image": [str(p) for p in sorted(pristine_folder.glob("*.png"))]}).to_csv(
        manifest, index=False
    )
    data = SyntheticQualityDataset(manifest, names=["contrast"], levels=5, crop=(40, 56), seed=1)
    sampler = GroupBatchSampler(data, groups_per_batch=2, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2
    assert sorted(i for b in batches for i in b) == list(range(len(data)))
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
    images, mos, groups = next(iter(loader))
    assert images.shape == (12, 3, 40, 56)
    assert len(set(groups.tolist())) == 2
    assert sorted(mos.tolist()[:6], reverse=True) == pytest.approx([5.0, 4.2, 3.4, 2.6, 1.8, 1.0])


def test_dataset_errors(pristine_folder, tmp_path):
    with pytest.raises(DataFileError, match="smaller than the 100x100 crop"):
        SyntheticQualityDataset(pristine_folder, names=["jpeg"], crop=100)[0]
    with pytest.raises(DataFileError, match="no pristine images"):
        SyntheticQualityDataset(tmp_path, names=["jpeg"])
    with pytest.raises(DataFileError):
        SyntheticQualityDataset(tmp_path / "missing", names=["jpeg"])
    with pytest.raises(InputError, match="distinct families"):
        DistortionGenerator(names=["blur", "gaussian_blur"])
    with pytest.raises(RegistryError, match="unknown distortion 'blurr'"):
        DistortionGenerator(names=["blurr"])


@pytest.mark.parametrize(
    "module",
    [
        "perceptiq.data.distortions",
        "perceptiq.data.distortions.blur",
        "perceptiq.data.distortions.noise",
        "perceptiq.data.distortions.photometric",
        "perceptiq.data.distortions.resampling",
        "perceptiq.data.distortions.sr_artifacts",
        "perceptiq.data.ladders",
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
