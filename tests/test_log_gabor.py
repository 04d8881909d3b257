"""Log-Gabor band-pass statistics (groups 6-7 of the quality descriptor): filter bank and responses."""

from __future__ import annotations

import math

import pytest
import torch

from perceptiq.errors import InputError
from perceptiq.functional.nr.log_gabor import (
    CENTRE_FREQ,
    LEVELS,
    LOG_GABOR_DIM,
    N_ORIENT,
    log_gabor_bank,
    log_gabor_features,
)


def test_bank_is_one_sided_zero_at_dc_and_peaks_at_the_centre_frequency():
    bank = log_gabor_bank(64, 64).double()
    assert bank.shape == (N_ORIENT, 64, 64)
    assert torch.all(bank[:, 0, 0] == 0)
    fx = torch.fft.fftfreq(64)
    # orientation 0 passes positive horizontal frequencies only, peaking at f0 = 0.25 cycles/pixel
    row = bank[0, 0]
    assert int(torch.argmax(row)) == int(torch.argmin((fx - CENTRE_FREQ).abs()))
    assert float(row[fx < 0].max()) < 1e-6
    assert float(row.max()) == pytest.approx(1.0, abs=1e-6)


def _grating(angle: float, size: int = 128, frequency: float = 0.25) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    phase = 2 * math.pi * frequency * (x * math.cos(angle) - y * math.sin(angle))
    return (0.5 + 0.4 * torch.cos(phase)).expand(1, 3, size, size).float()


def test_a_grating_excites_the_orientation_of_its_angle():
    for k in range(N_ORIENT):
        angle = k * math.pi / N_ORIENT
        response = torch.fft.fft2(_grating(angle)[0, 0] - 0.5)
        energy = [(response * band).abs().pow(2).sum() for band in log_gabor_bank(128, 128).double()]
        assert int(torch.argmax(torch.stack(energy))) == k


def test_blur_moves_energy_to_coarser_levels_and_motion_blur_raises_anisotropy():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 128, 128)
    blurred = torch.nn.functional.avg_pool2d(image, 5, stride=1, padding=2, count_include_pad=False)
    kernel = torch.zeros(3, 1, 1, 9).fill_(1 / 9)
    motion = torch.nn.functional.conv2d(image, kernel, padding=(0, 4), groups=3)
    sharp, soft, streaked = (log_gabor_features(x) for x in (image, blurred, motion))
    assert sharp.shape == (1, LOG_GABOR_DIM)
    assert sharp.dtype == torch.float64
    ratios = slice(LOG_GABOR_DIM - (LEVELS - 1), LOG_GABOR_DIM)  # log energy of level l over level l + 1
    assert float(soft[0, ratios][0]) < float(sharp[0, ratios][0])
    anisotropy_first_level = LEVELS * 3 * N_ORIENT  # first per-level statistic
    assert float(streaked[0, anisotropy_first_level]) > float(sharp[0, anisotropy_first_level]) + 1.0


def test_batched_equals_single_and_errors_are_clear():
    torch.manual_seed(1)
    images = torch.rand(2, 3, 64, 80)
    both = log_gabor_features(images)
    torch.testing.assert_close(both[1:], log_gabor_features(images[1:]), rtol=1e-4, atol=1e-5)
    assert torch.isfinite(log_gabor_features(torch.full((1, 3, 64, 64), 0.5))).all()
    with pytest.raises(InputError, match="at least 64x64"):
        log_gabor_features(torch.rand(1, 3, 32, 80))
