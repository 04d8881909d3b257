"""MAD competition pair selection (paper 002 eq. 1; released-code rule of PROTOCOLS.md section 4.1).

References used here: hand-derived selections, a literal re-statement of the released greedy loop
(``_naive_mad`` below: a dict in D1-descending order, ``max`` keeps the first maximum), scipy's
``spatial.distance`` functions, torchvision's own VGG16-BN preprocessing preset, and the files of
``../shared/data/sr_outputs`` (RealSRSet: 10 inputs x 4 published SR methods).
"""

from __future__ import annotations

import csv
import doctest
import importlib
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial import distance as spd
from typer.testing import CliRunner

import perceptiq.cli.mad  # noqa: F401  (registers the command)
import perceptiq.ranking.mad as mad_module
from perceptiq.cli._app import app
from perceptiq.errors import DataFileError, InputError, PerceptiqWarning
from perceptiq.io.mad_outputs import PAIR_COLUMNS, read_outputs_dir, write_pairs
from perceptiq.metrics.base import Metric
from perceptiq.models._backbones import IMAGENET_MEAN
from perceptiq.models.mad_features import (
    SimpleFeatures,
    VGG16Features,
    create_feature_extractor,
    simple_features,
)
from perceptiq.ranking.mad import (
    feature_distances,
    greedy_select,
    mad_select,
    method_pairs,
    select_mad_pairs,
    similarity_to_distance,
)

SR_OUTPUTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sr_outputs"
needs_sr = pytest.mark.skipif(
    not (SR_OUTPUTS / "realsrset_x4").is_dir(), reason="../shared/data/sr_outputs not available"
)
REALSR_METHODS = ("bsrgan", "esrgan", "realsr_jpeg", "swinir_real_gan")
REALSR_INPUTS = (
    "Lincoln", "building", "butterfly", "butterfly2", "chip", "comic1", "comic2", "comic3", "computer",
    "dped_crop00061",
)  # fmt: skip
runner = CliRunner()


# --- reference: the released greedy loop, restated literally --------------------------------------------


def _naive_mad(d1, feats, k, lam, d2=None, reduce="mean"):
    """PROTOCOLS 4.1 step by step: inputs in D1-descending (stable) order; first pick = top; then
    ``max(remaining, key=D1 + lam * sum d2 / k)``, which keeps the first maximum in that order."""
    d2 = d2 or (lambda a, b: float(np.mean((a - b) ** 2)))
    order = sorted(range(len(d1)), key=lambda i: -d1[i])
    acc = {x: (0.0 if reduce == "mean" else math.inf) for x in order}
    xk = order[0]
    picks = [xk]
    del acc[xk]
    for step in range(1, min(k, len(d1))):
        for x in acc:
            value = d2(feats[x], feats[xk])
            acc[x] = acc[x] + value if reduce == "mean" else min(acc[x], value)
        if reduce == "mean":
            xk = max(acc, key=lambda x: d1[x] + lam * acc[x] / step)  # noqa: B023
        else:
            xk = max(acc, key=lambda x: d1[x] + lam * acc[x])  # noqa: B023
        picks.append(xk)
        del acc[xk]
    return picks


# --- small full-reference metrics with hand-known values -------------------------------------------------


class _MSE(Metric):
    """A distance: mean squared difference."""

    name = "test_mse"
    kind = "FR"
    lower_is_better = True
    score_range = (0.0, 1.0)

    def compute(self, image, reference):
        return (image - reference).square().mean(dim=(1, 2, 3))


class _InverseMSE(Metric):
    """A bounded similarity: 1 / (1 + 100 MSE), in (0, 1]."""

    name = "test_inverse_mse"
    kind = "FR"
    lower_is_better = False
    score_range = (0.0, 1.0)

    def compute(self, image, reference):
        return 1.0 / (1.0 + 100.0 * (image - reference).square().mean(dim=(1, 2, 3)))


class _NegMSE(Metric):
    """An unbounded similarity: -MSE, no score range."""

    name = "test_neg_mse"
    kind = "FR"
    lower_is_better = False
    score_range = None

    def compute(self, image, reference):
        return -(image - reference).square().mean(dim=(1, 2, 3))


class _NoReference(Metric):
    name = "test_nr"
    kind = "NR"

    def compute(self, image, reference):
        return image.mean(dim=(1, 2, 3))


def _mean_pixel(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(1, 2, 3))[:, None]


# --- hand-derived cases ----------------------------------------------------------------------------------


def test_hand_case_released_rule():
    # 1-D features, so d2 = (f_x - f_s)^2. Step 0: argmax D1 -> 0. Step 1 (S = {0}):
    # 4 + 0.5*1 = 4.5, 3 + 0.5*9 = 7.5, 1 + 0.5*100 = 51 -> 3. Step 2 (S = {0, 3}):
    # x=1: 4 + 0.5*(1 + 81)/2 = 24.5; x=2: 3 + 0.5*(9 + 49)/2 = 17.5 -> 1.
    sel = mad_select([5.0, 4.0, 3.0, 1.0], [[0.0], [1.0], [3.0], [10.0]], k=3, lam=0.5)
    assert sel.indices.tolist() == [[0, 3, 1]]
    np.testing.assert_array_equal(sel.d1, [[5.0, 1.0, 4.0]])
    np.testing.assert_array_equal(sel.d2, [[np.nan, 100.0, 41.0]])
    np.testing.assert_array_equal(sel.objective, [[5.0, 51.0, 24.5]])


def test_lambda_zero_is_top_k_by_d1_with_stable_ties():
    d1 = [0.3, 0.9, 0.5, 0.9, 0.1]
    sel = mad_select(d1, np.random.default_rng(0).normal(size=(5, 3)), k=3, lam=0.0)
    assert sel.indices.tolist() == [[1, 3, 2]]
    assert mad_select([1.0, 1.0, 1.0], [[0.0], [5.0], [9.0]], k=3, lam=0.0).indices.tolist() == [[0, 1, 2]]


def test_large_lambda_picks_one_input_per_cluster():
    # Inputs 0-3 form a tight cluster with the largest D1; 4 and 5 sit far away, each alone.
    feats = [[0.0], [0.1], [0.2], [0.3], [10.0], [-10.0]]
    d1 = [1.0, 0.99, 0.98, 0.97, 0.1, 0.05]
    assert mad_select(d1, feats, k=3, lam=0.0).indices.tolist() == [[0, 1, 2]]
    # lambda = 10: step 1 -> 4 (0.1 + 10*100) beats 5 (0.05 + 10*100); step 2 -> 5, far from {0, 4}.
    assert mad_select(d1, feats, k=3, lam=10.0).indices.tolist() == [[0, 4, 5]]


def test_objective_tie_goes_to_larger_d1_not_lower_index():
    # Step 1: x=1: 1 + 1*MSE((2,2),(0,0)) = 1 + 4 = 5; x=2: 3 + 1*MSE((2,0),(0,0)) = 3 + 2 = 5.
    # Equal objectives: the released dict is in D1-descending order (0, 2, 1), so 2 wins.
    sel = mad_select([10.0, 1.0, 3.0], [[0.0, 0.0], [2.0, 2.0], [2.0, 0.0]], k=3, lam=1.0)
    assert sel.indices.tolist() == [[0, 2, 1]]
    np.testing.assert_array_equal(sel.objective, [[10.0, 5.0, 4.0]])


def test_k_is_capped_at_the_number_of_inputs_and_picks_are_distinct():
    sel = mad_select(np.zeros((3, 4)), np.eye(4), k=16, lam=0.1)
    assert sel.indices.shape == (3, 4)
    assert all(sorted(row) == [0, 1, 2, 3] for row in sel.indices.tolist())


# --- vectorised selection vs the literal loop -----------------------------------------------------------


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5, 3.0])
def test_vectorised_equals_naive_loop_random(lam):
    rng = np.random.default_rng(int(lam * 100))
    d1 = rng.random((6, 40))
    feats = rng.normal(size=(40, 8))
    sel = mad_select(d1, feats, k=12, lam=lam)
    for p in range(6):
        assert sel.indices[p].tolist() == _naive_mad(d1[p].tolist(), feats, 12, lam)


@pytest.mark.parametrize("reduce", ["mean", "min"])
def test_vectorised_equals_naive_loop_with_exact_ties(reduce):
    # Small integers: every d2 and objective is exact, so many candidates tie exactly.
    rng = np.random.default_rng(7)
    d1 = rng.integers(0, 4, size=(10, 30)).astype(float)
    feats = rng.integers(0, 3, size=(30, 2)).astype(float)
    sel = mad_select(d1, feats, k=15, lam=0.5, reduce=reduce)
    for p in range(10):
        assert sel.indices[p].tolist() == _naive_mad(d1[p].tolist(), feats, 15, 0.5, reduce=reduce)


@pytest.mark.parametrize(
    ("distance", "reference"),
    [
        ("sqeuclidean", spd.sqeuclidean),
        ("euclidean", spd.euclidean),
        ("cosine", spd.cosine),
    ],
)
def test_other_feature_distances_match_scipy(distance, reference):
    rng = np.random.default_rng(3)
    d1 = rng.random((3, 25))
    feats = rng.normal(size=(25, 5))
    np.testing.assert_allclose(
        feature_distances(feats, distance)[2, 7], reference(feats[2], feats[7]), rtol=1e-12
    )
    sel = mad_select(d1, feats, k=8, lam=0.7, distance=distance)
    for p in range(3):
        assert sel.indices[p].tolist() == _naive_mad(d1[p].tolist(), feats, 8, 0.7, d2=reference)


def test_recorded_d2_is_the_mean_distance_to_earlier_picks():
    rng = np.random.default_rng(11)
    feats = rng.normal(size=(20, 4))
    sel = mad_select(rng.random(20), feats, k=6, lam=0.2)
    picks = sel.indices[0]
    for r in range(1, 6):
        expected = np.mean([np.mean((feats[picks[r]] - feats[s]) ** 2) for s in picks[:r]])
        assert sel.d2[0, r] == pytest.approx(expected, rel=1e-12)
        assert sel.objective[0, r] == pytest.approx(sel.d1[0, r] + 0.2 * expected, rel=1e-12)


def test_infinite_d1_is_allowed_and_nan_is_rejected():
    sel = mad_select([-np.inf, 2.0, np.inf, 1.0], [[0.0], [1.0], [2.0], [3.0]], k=4, lam=1.0)
    assert sel.indices[0, 0] == 2
    assert sel.indices[0, -1] == 0
    with pytest.raises(InputError, match="NaN for pair 0, input 1"):
        mad_select([1.0, np.nan], [[0.0], [1.0]], k=1, lam=0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be a positive integer"),
        ({"lam": -1.0}, "lambda must be a finite number"),
        ({"lam": math.nan}, "lambda must be a finite number"),
        ({"reduce": "max"}, "reduce must be"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"k": 2, "lam": 0.1} | kwargs
    reduce = args.pop("reduce", "mean")
    with pytest.raises(InputError, match=message):
        greedy_select(np.ones(3), np.zeros((3, 3)), args["k"], args["lam"], reduce=reduce)


def test_shape_errors():
    with pytest.raises(InputError, match="features has 2 rows but d1 has 3 inputs"):
        mad_select([1.0, 2.0, 3.0], [[0.0], [1.0]], k=1, lam=0.1)
    with pytest.raises(InputError, match=r"d2_matrix must have shape \(3, 3\)"):
        greedy_select([1.0, 2.0, 3.0], np.zeros((2, 2)), 1, 0.1)
    with pytest.raises(InputError, match="all-zero feature vector of input 1"):
        feature_distances([[1.0], [0.0]], "cosine")
    with pytest.raises(InputError, match="at least 2 methods"):
        method_pairs(1)


def test_method_pairs_order():
    assert method_pairs(4).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


def test_docstring_example():
    assert doctest.testmod(mad_module).failed == 0


# --- D1 from a metric -----------------------------------------------------------------------------------


def _constant_outputs(values: np.ndarray) -> torch.Tensor:
    """(n_inputs, n_methods, 3, 6, 6) images whose pixels all equal ``values[i, m]``."""
    v = torch.as_tensor(values, dtype=torch.float64)
    return v[:, :, None, None, None].expand(-1, -1, 3, 6, 6).contiguous()


def test_similarity_to_distance_rules():
    np.testing.assert_array_equal(similarity_to_distance([0.2, 0.5], True, (0.0, 1.0)), [0.2, 0.5])
    np.testing.assert_array_equal(similarity_to_distance([0.25, 1.0], False, (0.0, 1.0)), [0.75, 0.0])
    np.testing.assert_array_equal(
        similarity_to_distance([30.0, 40.0], False, (0.0, math.inf)), [-30.0, -40.0]
    )
    np.testing.assert_array_equal(similarity_to_distance([30.0], False, None), [-30.0])


@pytest.mark.parametrize(
    ("metric", "to_d1"),
    [
        (_MSE(), lambda mse: mse),
        (_InverseMSE(), lambda mse: 1.0 - 1.0 / (1.0 + 100.0 * mse)),
        (_NegMSE(), lambda mse: mse),
    ],
)
def test_d1_from_distance_and_similarity_metrics(metric, to_d1):
    values = np.array([[0.0, 0.2, 0.5], [0.4, 0.4, 0.1], [0.9, 0.3, 0.6], [0.5, 0.5, 0.5]])
    result = select_mad_pairs(_constant_outputs(values), metric, _mean_pixel, k=4, lam=0.0)
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = np.array([[to_d1((values[i, a] - values[i, b]) ** 2) for i in range(4)] for a, b in pairs])
    assert result.pairs.tolist() == [list(p) for p in pairs]
    np.testing.assert_allclose(result.d1, expected, rtol=1e-12, atol=1e-15)
    assert result.lower_is_better is metric.lower_is_better
    # lambda = 0: inputs by D1 descending, ties in input order (pair (0, 1): 0.04, 0, 0.36, 0).
    assert result.selection.indices[0].tolist() == [2, 0, 1, 3]


def test_select_mad_pairs_matches_naive_loop_and_accepts_every_source_form():
    rng = np.random.default_rng(5)
    values = rng.random((12, 4))
    outputs = _constant_outputs(values)
    lr = torch.as_tensor(rng.random(12))[:, None, None, None].expand(-1, 3, 4, 4)
    kwargs = {"k": 5, "lam": 2.0, "feature_images": lr, "methods": list("ABCD")}
    from_tensor = select_mad_pairs(outputs, _MSE(), _mean_pixel, **kwargs)
    from_list = select_mad_pairs(list(outputs), _MSE(), _mean_pixel, **kwargs)
    from_loader = select_mad_pairs(
        lambda i: outputs[i], _MSE(), _mean_pixel, n_inputs=12, **kwargs | {"feature_images": lambda i: lr[i]}
    )
    feats = lr[:, 0, 0, 0].numpy()[:, None]
    for p, (a, b) in enumerate(method_pairs(4)):
        d1 = ((values[:, a] - values[:, b]) ** 2).tolist()
        expected = _naive_mad(d1, feats, 5, 2.0)
        for result in (from_tensor, from_list, from_loader):
            assert result.selection.indices[p].tolist() == expected
    assert from_tensor.methods == ("A", "B", "C", "D")
    records = from_tensor.records()
    assert len(records) == 6 * 5
    assert records[0]["d2_mean"] is None
    assert records[0]["rank_in_pair"] == 1


def test_default_d2_image_is_the_first_method_output():
    values = np.array([[0.0, 0.9], [0.1, 0.8], [0.9, 0.7], [0.2, 0.3]])
    result = select_mad_pairs(_constant_outputs(values), _MSE(), _mean_pixel, k=4, lam=100.0)
    d1 = ((values[:, 0] - values[:, 1]) ** 2).tolist()
    assert result.selection.indices[0].tolist() == _naive_mad(d1, values[:, :1], 4, 100.0)


def test_select_mad_pairs_errors():
    outputs = _constant_outputs(np.full((3, 2), 0.5))
    with pytest.raises(InputError, match="no-reference"):
        select_mad_pairs(outputs, _NoReference(), _mean_pixel)
    with pytest.raises(InputError, match="n_inputs is required"):
        select_mad_pairs(lambda i: outputs[i], _MSE(), _mean_pixel)

    class _NaNMetric(_MSE):
        def compute(self, image, reference):
            return torch.full(image.shape[:1], math.nan)

    with pytest.raises(InputError, match="NaN for input 'x', methods 'p' vs 'q'"):
        select_mad_pairs(outputs, _NaNMetric(), _mean_pixel, methods=["p", "q"], inputs=["x", "y", "z"])
    ragged = [outputs[0], outputs[1][:1]]
    with pytest.raises(InputError, match=r"outputs of input '1' must have shape \(2, C, H, W\)"):
        select_mad_pairs(ragged, _MSE(), _mean_pixel)
    # the caller creates the metric and the extractor (ranking creates nothing by name)
    with pytest.raises(InputError, match="metric must be a metric module .* got str"):
        select_mad_pairs(outputs, "ssim", _mean_pixel)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="feature_extractor must be callable, got str"):
        select_mad_pairs(outputs, _MSE(), "simple")  # type: ignore[arg-type]


def test_select_mad_pairs_loads_no_metric_or_model_code():
    """ranking is the pure-math layer: running MAD selection imports neither metrics nor models."""
    code = (
        "import sys, torch\n"
        "from perceptiq.ranking.mad import select_mad_pairs\n"
        "class D(torch.nn.Module):\n"
        "    kind, lower_is_better = 'FR', True\n"
        "    def forward(self, x, reference):\n"
        "        return (x - reference).square().flatten(1).mean(1)\n"
        "out = torch.rand(3, 2, 3, 8, 8, generator=torch.Generator().manual_seed(0))\n"
        "r = select_mad_pairs(out, D(), lambda x: x.flatten(1), k=2, lam=0.1)\n"
        "assert r.selection.indices.shape == (1, 2)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('perceptiq.metrics', 'perceptiq.models'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


# --- feature extractors ---------------------------------------------------------------------------------


def test_simple_features_of_a_constant_image():
    f = simple_features(torch.full((1, 3, 37, 53), 0.3, dtype=torch.float64))[0]
    assert f.shape == (150,)
    offset = 0
    for g in (1, 2, 4):
        n = 3 * g * g
        np.testing.assert_allclose(f[offset : offset + n], 0.3, rtol=1e-12)
        np.testing.assert_allclose(f[offset + n : offset + 2 * n], 0.0, atol=1e-12)
        offset += 2 * n
    assert f[offset : offset + 16].tolist() == [1.0] + [0.0] * 15
    assert f[offset + 16 :].tolist() == [0.0] * 8


def test_simple_features_of_a_vertical_ramp():
    # Grey 128 x 128 ramp Y[i, j] = 0.04 i (no resize): gy = 0.04, gx = 0, so m = 0.04 falls in magnitude
    # bin floor(0.04 / 0.5 * 16) = 1 and the orientation pi/2 in bin floor(0.5 * 8) = 4.
    ramp = (0.04 * torch.arange(128, dtype=torch.float64))[:, None].expand(128, 128)
    f = simple_features(ramp[None, None])[0]
    column = ramp[:, 0].numpy()
    np.testing.assert_allclose(f[0:3], column.mean(), rtol=1e-12)
    np.testing.assert_allclose(f[3:6], column.std(), rtol=1e-12)
    np.testing.assert_allclose(f[6:18:4], column[:64].mean(), rtol=1e-12)  # level 2, top-left cells
    np.testing.assert_allclose(f[126:142], np.eye(16)[1], atol=1e-12)
    np.testing.assert_allclose(f[142:150], np.eye(8)[4], atol=1e-12)


def test_simple_features_module_and_bad_input():
    x = torch.rand(2, 3, 40, 70, generator=torch.Generator().manual_seed(0))
    assert torch.equal(SimpleFeatures()(x), simple_features(x))
    with pytest.raises(InputError, match="1 \\(grey\\) or 3 \\(RGB\\) channels"):
        simple_features(torch.rand(1, 2, 8, 8))
    with pytest.raises(InputError, match="no weights"):
        create_feature_extractor("simple", "w.pt")
    with pytest.raises(InputError, match="unknown feature extractor"):
        create_feature_extractor("resnet")  # type: ignore[arg-type]


def _same_state(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> bool:
    return list(x) == list(y) and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.slow
def test_vgg16_features_random_weights_preprocessing_and_weight_files(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import VGG16_BN_Weights

    with pytest.warns(PerceptiqWarning, match="randomly initialised"):
        a = VGG16Features()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerceptiqWarning)
        source = VGG16Features(seed=1).features.state_dict()
        again = VGG16Features(seed=1).features.state_dict()
    assert _same_state(source, again)
    assert not _same_state(source, a.features.state_dict())
    x = torch.rand(1, 3, 90, 120, generator=torch.Generator().manual_seed(1))
    preset = VGG16_BN_Weights.IMAGENET1K_V1.transforms()
    np.testing.assert_allclose(a.preprocess(x).numpy(), preset(x).numpy(), atol=1e-5, rtol=0)
    assert preset.mean == list(IMAGENET_MEAN)
    with torch.inference_mode():
        assert a(x).shape == (1, 512 * 7 * 7)

    full = tmp_path / "vgg16_bn.pt"
    torch.save({"features." + k: v for k, v in source.items()} | {"classifier.0.bias": torch.zeros(3)}, full)
    only = tmp_path / "features.safetensors"
    save_file({k: v.contiguous() for k, v in source.items()}, str(only))
    for path in (full, only):
        assert _same_state(create_feature_extractor("vgg16", path).features.state_dict(), source)
    with pytest.raises(DataFileError, match=r"nope\.safetensors: weights file not found"):
        VGG16Features(tmp_path / "nope.safetensors")
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(2)}, wrong)
    with pytest.raises(DataFileError, match=r"wrong\.pt: not VGG16-BN features weights"):
        VGG16Features(wrong)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DataFileError, match=r"garbage\.pt: cannot read weights"):
        VGG16Features(garbage)


# --- reading outputs, writing pairs ---------------------------------------------------------------------


def _png(path: Path, value: int, size: tuple[int, int] = (16, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def _folder_grid(
    root: Path, methods=("m1", "m2", "m3"), inputs=("a", "b", "c", "d"), lr=True, size=16
) -> Path:
    for m, method in enumerate(methods):
        for i, name in enumerate(inputs):
            _png(root / method / f"{name}.png", 20 * i + 60 * m, (size, size))
    for i, name in enumerate(inputs if lr else ()):
        _png(root / "lr" / f"{name}.png", 30 * i, (4, 4))
    return root


def test_read_folder_layout(tmp_path):
    grid = read_outputs_dir(_folder_grid(tmp_path / "out"))
    assert grid.layout == "folders"
    assert grid.methods == ("m1", "m2", "m3")
    assert grid.inputs == ("a", "b", "c", "d")
    assert grid.paths[1][2] == tmp_path / "out" / "m3" / "b.png"
    assert grid.lr_paths is not None
    assert grid.lr_paths[3].name == "d.png"
    images = grid.load_outputs(1)
    assert images.shape == (3, 3, 16, 16)
    np.testing.assert_allclose(images[:, 0, 0, 0].numpy(), np.array([20, 80, 140]) / 255, rtol=1e-6)
    assert grid.load_lr(0).shape == (1, 3, 4, 4)
    assert read_outputs_dir(_folder_grid(tmp_path / "nolr", lr=False)).lr_paths is None


def test_folder_layout_errors(tmp_path):
    root = _folder_grid(tmp_path / "out")
    (root / "m2" / "c.png").unlink()
    with pytest.raises(DataFileError, match=r"out/m2: has no image named 'c'"):
        read_outputs_dir(root)
    _png(root / "m2" / "c.png", 3)
    (root / "lr" / "a.png").unlink()
    with pytest.raises(DataFileError, match=r"out/lr: has no LR image for input 'a'"):
        read_outputs_dir(root)
    _png(root / "lr" / "a.png", 3)
    _png(root / "m1" / "a.jpg", 3)
    with pytest.raises(DataFileError, match=r"out/m1: two images named 'a'"):
        read_outputs_dir(root)
    (root / "m1" / "a.jpg").unlink()
    _png(root / "m3" / "b.png", 3, (17, 16))
    with pytest.raises(DataFileError, match=r"m3/b\.png: is 17x16 but .*m1/b\.png is 16x16"):
        read_outputs_dir(root).load_outputs(1)
    with pytest.raises(DataFileError, match=r"missing: no such file or folder"):
        read_outputs_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="no method sub-folders"):
        read_outputs_dir(tmp_path / "empty")


def test_read_generic_manifest(tmp_path):
    for m in ("x", "y"):
        for i in ("p", "q"):
            _png(tmp_path / "img" / f"{i}_{m}.png", 10)
    _png(tmp_path / "img" / "p_lr.png", 10)
    _png(tmp_path / "img" / "q_lr.png", 10)
    rows = [
        "Input,Method,Path,LR",
        "q,y,img/q_y.png,img/q_lr.png",
        "q,x,img/q_x.png,img/q_lr.png",
        "p,y,img/p_y.png,img/p_lr.png",
        "p,x,img/p_x.png,",
    ]
    manifest = tmp_path / "list.csv"
    manifest.write_text("\n".join(rows) + "\n")
    grid = read_outputs_dir(manifest)
    assert (grid.layout, grid.methods, grid.inputs) == ("manifest", ("y", "x"), ("q", "p"))
    assert grid.paths[1] == (tmp_path / "img" / "p_y.png", tmp_path / "img" / "p_x.png")
    assert grid.lr_paths == (tmp_path / "img" / "q_lr.png", tmp_path / "img" / "p_lr.png")
    manifest.write_text("\n".join([*rows, "p,x,img/p_x.png,"]) + "\n")
    with pytest.raises(DataFileError, match=r"list\.csv: line 6: a second row for input 'p', method 'x'"):
        read_outputs_dir(manifest)
    manifest.write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(DataFileError, match=r"list\.csv: method 'x' has no output for input 'p'"):
        read_outputs_dir(manifest)
    manifest.write_text("\n".join([*rows[:-1], "p,x,img/gone.png,"]) + "\n")
    with pytest.raises(DataFileError, match=r"gone\.png: listed in .*list\.csv but not found"):
        read_outputs_dir(manifest)
    manifest.write_text("a,b\n1,2\n")
    with pytest.raises(DataFileError, match="needs columns input, method, path"):
        read_outputs_dir(manifest)


def test_write_pairs_csv_and_json(tmp_path):
    grid = read_outputs_dir(_folder_grid(tmp_path / "out"))
    result = select_mad_pairs(
        grid.load_outputs, _MSE(), _mean_pixel, k=2, lam=0.1, n_inputs=4, methods=grid.methods,
        inputs=grid.inputs, feature_images=grid.load_lr,
    )  # fmt: skip
    rows = write_pairs(result, grid, tmp_path / "pairs.csv")
    with (tmp_path / "pairs.csv").open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == PAIR_COLUMNS
    assert len(table) == len(rows) == 3 * 2
    assert table[0]["d2_mean"] == ""
    assert float(table[1]["d2_mean"]) == pytest.approx(rows[1]["d2_mean"], rel=1e-15)
    first = table[0]
    i = grid.inputs.index(first["input"])
    assert first["path_a"] == str(grid.paths[i][grid.methods.index(first["method_a"])])
    write_pairs(result, grid, tmp_path / "pairs.json", meta={"features": "mean pixel"})
    payload = json.loads((tmp_path / "pairs.json").read_text())
    assert payload["metric"] == "test_mse"
    assert payload["features"] == "mean pixel"
    assert payload["lambda"] == 0.1
    assert [r["input"] for r in payload["pairs"]] == [r["input"] for r in table]
    assert payload["pairs"][0]["d2_mean"] is None
    with pytest.raises(InputError, match=r"pairs\.txt: the pair list is written as \.csv or \.json"):
        write_pairs(result, grid, tmp_path / "pairs.txt")


# --- the real SR outputs (RealSRSet x4, 4 published methods) --------------------------------------------


@pytest.mark.shared_data
@needs_sr
def test_realsr_folder_and_manifest_layouts_agree():
    folders = read_outputs_dir(SR_OUTPUTS / "realsrset_x4")
    manifest = read_outputs_dir(SR_OUTPUTS, dataset="RealSRSet")
    assert folders.methods == REALSR_METHODS
    assert manifest.methods == ("BSRGAN", "ESRGAN", "RealSR_JPEG", "SwinIR-M-realGAN")
    assert folders.inputs == manifest.inputs == REALSR_INPUTS
    assert [[p.resolve() for p in row] for row in folders.paths] == [
        [p.resolve() for p in row] for row in manifest.paths
    ]
    assert [p.resolve() for p in folders.lr_paths] == [p.resolve() for p in manifest.lr_paths]
    with pytest.raises(DataFileError, match="holds several datasets .*choose one"):
        read_outputs_dir(SR_OUTPUTS)


@pytest.mark.shared_data
@pytest.mark.slow
@needs_sr
def test_realsr_cli_selects_k_distinct_inputs_per_pair(tmp_path):
    out = tmp_path / "pairs.csv"
    result = runner.invoke(
        app,
        [
            "mad",
            str(SR_OUTPUTS / "realsrset_x4"),
            "--k",
            "16",
            "--lambda",
            "0.1",
            "--metric",
            "psnr",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == PAIR_COLUMNS
    pairs = {(r["method_a"], r["method_b"]) for r in table}
    assert pairs == {(REALSR_METHODS[a], REALSR_METHODS[b]) for a, b in method_pairs(4).tolist()}
    for a, b in pairs:
        rows = [r for r in table if (r["method_a"], r["method_b"]) == (a, b)]
        assert len(rows) == 10
        assert sorted(r["input"] for r in rows) == sorted(REALSR_INPUTS)
        assert [int(r["rank_in_pair"]) for r in rows] == list(range(1, 11))
        assert all(Path(r["path_a"]).is_file() and Path(r["path_b"]).is_file() for r in rows)
        assert all(f"/{a}/" in r["path_a"] and f"/{b}/" in r["path_b"] for r in rows)
        d1 = [float(r["d1"]) for r in rows]
        assert d1[0] == max(d1)  # the first pick is the pair's largest D1
        assert rows[0]["d2_mean"] == ""
        assert all(r["d2_mean"] for r in rows[1:])
    assert "60 rows written" in result.output


# --- CLI errors -----------------------------------------------------------------------------------------


def test_cli_json_on_a_small_grid(tmp_path):
    root = _folder_grid(tmp_path / "out")
    out = tmp_path / "pairs.json"
    result = runner.invoke(app, ["mad", str(root), "--k", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["methods"] == ["m1", "m2", "m3"]
    assert payload["metric"] == "ssim"
    assert payload["d2_image"] == "lr"
    assert payload["metric_lower_is_better"] is False
    assert len(payload["pairs"]) == 3 * 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "no_such_metric"], "unknown metric 'no_such_metric'"),
        (["--features", "vgg16", "--weights", "{tmp}/missing.pt"], "missing.pt: weights file not found"),
        (["--weights", "{tmp}/w.pt"], "--weights is for --features vgg16"),
        (["--d2-image", "lr", "--dataset", "x"], "has no manifest.csv to select dataset 'x'"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, extra, message):
    root = _folder_grid(tmp_path / "out", lr=False)
    args = ["mad", str(root), "--out", str(tmp_path / "p.csv"), *(a.format(tmp=tmp_path) for a in extra)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.strip().startswith("error:")
    assert len(result.output.strip().splitlines()) == 1


def test_cli_missing_folder_and_bad_image(tmp_path):
    result = runner.invoke(app, ["mad", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1
    assert "nowhere: no such file or folder" in result.output
    root = _folder_grid(tmp_path / "out")
    (root / "m2" / "b.png").write_bytes(b"broken")
    result = runner.invoke(app, ["mad", str(root), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1
    assert "m2/b.png" in result.output
    result = runner.invoke(app, ["mad", str(_folder_grid(tmp_path / "nolr", lr=False)), "--d2-image", "lr",
                                 "--out", str(tmp_path / "p.csv")])  # fmt: skip
    assert result.exit_code == 1
    assert "no LR image is given for every input" in result.output
    result = runner.invoke(
        app, ["mad", str(_folder_grid(tmp_path / "tiny", size=8)), "--out", str(tmp_path / "p.csv")]
    )
    assert result.exit_code == 1
    assert "error: input 'a': ssim: images of 8x8 pixels are too small" in result.output


def test_registered_ssim_becomes_one_minus_scikit_image_ssim():
    from skimage.metrics import structural_similarity

    from perceptiq.metrics.base import create_metric

    importlib.import_module("perceptiq.metrics.fr")
    rng = np.random.default_rng(2)
    base = rng.random((3, 1, 3, 24, 24))
    outputs = np.clip(base + rng.normal(scale=[0.0, 0.05, 0.2])[None, :, None, None, None], 0, 1)
    outputs = np.concatenate([outputs[:, :1], np.clip(base + 0.05 * rng.normal(size=base.shape), 0, 1),
                              np.clip(base + 0.2 * rng.normal(size=base.shape), 0, 1)], axis=1)  # fmt: skip
    result = select_mad_pairs(
        torch.from_numpy(outputs), create_metric("ssim", color="rgb"), _mean_pixel, k=3, lam=0.0
    )
    for p, (a, b) in enumerate(method_pairs(3)):
        for i in range(3):
            ref = structural_similarity(
                outputs[i, a].transpose(1, 2, 0), outputs[i, b].transpose(1, 2, 0), channel_axis=-1,
                data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            )  # fmt: skip
            assert result.d1[p, i] == pytest.approx(1.0 - ref, abs=1e-6)
    assert result.metric == "ssim"
    assert result.lower_is_better is False
