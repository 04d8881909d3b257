"""The default model's fixed descriptor: layout, and cues that respond as their definitions say."""

from __future__ import annotations

import pytest
import torch

from perceptiq.errors import InputError
from perceptiq.functional.nr.brisque import brisque_features
from perceptiq.functional.nr.log_gabor import log_gabor_features
from perceptiq.functional.nr.nss import to_grey255
from perceptiq.functional.nr.quality_features import FEATURE_DIM, FEATURE_GROUPS, quality_features


def _offset(group: str) -> int:
    names = list(FEATURE_GROUPS)
    return sum(FEATURE_GROUPS[n] for n in names[: names.index(group)])


def _smooth(size: int = 128) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.2 * x * y])[None].double()


def test_layout_matches_the_groups_and_the_component_functions():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 96, 128, dtype=torch.float64)
    features = quality_features(image)
    assert features.shape == (1, FEATURE_DIM) == (1, sum(FEATURE_GROUPS.values()))
    torch.testing.assert_close(features[:, :36], brisque_features(to_grey255(image)).double())
    start = _offset("log_gabor_bands")
    torch.testing.assert_close(features[:, start:], log_gabor_features(image))


def test_noise_estimate_recovers_the_added_noise_level():
    torch.manual_seed(1)
    sigma = 10.0 / 255.0
    noisy = (_smooth() + sigma * torch.randn(1, 3, 128, 128, dtype=torch.float64)).clamp(0, 1)
    grey_sigma = sigma * torch.sqrt(torch.tensor(0.299**2 + 0.587**2 + 0.114**2)).item()
    estimate = float(quality_features(noisy)[0, _offset("noise_blocking")])
    assert estimate == pytest.approx(grey_sigma, rel=0.1)  # Immerkaer 1996 on a smooth image


def test_blur_lowers_sharpness_cues():
    torch.manual_seed(2)
    image = torch.rand(1, 3, 128, 128, dtype=torch.float64)
    blurred = torch.nn.functional.avg_pool2d(image, 5, stride=1, padding=2, count_include_pad=False)
    sharp, soft = quality_features(image)[0], quality_features(blurred)[0]
    laplacian = _offset("sharpness")  # log Laplacian variance at scale 1
    assert soft[laplacian] < sharp[laplacian] - 1.0


def test_small_or_non_rgb_input_is_refused():
    with pytest.raises(InputError, match="at least 64x64"):
        quality_features(torch.rand(1, 3, 40, 100))
    with pytest.raises(InputError, match="RGB"):
        quality_features(torch.rand(1, 1, 64, 64))
