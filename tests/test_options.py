"""Keyword options: unknown keys end in one line naming the key and the accepted ones (metrics, models,
protocols; Python and CLI), and one colour vocabulary (rgb, y, gray) for FR and NR metrics."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from perceptiq.cli import app
from perceptiq.errors import InputError, OptionError
from perceptiq.evaluation.protocols import create_protocol
from perceptiq.functional._color import to_color_space
from perceptiq.functional.nr.niqe import niqe
from perceptiq.functional.nr.nss import to_grey255
from perceptiq.metrics import create_metric, nr
from perceptiq.models import create_model
from perceptiq.models.nss_mlp import NSSMLPConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()

SSIM_OPTIONS = "color, crop_border, data_range, downsample, k1, k2, kernel_size, quantize, sigma"
MATLAB_GRAY = np.linalg.inv([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])[0]
BT601_Y = np.array([65.481, 128.553, 24.966]) / 255.0


def _one_line(message: str) -> str:
    assert "\n" not in message.strip(), message
    return message


def test_unknown_metric_option_names_the_key_suggests_and_lists_the_accepted_ones():
    with pytest.raises(OptionError) as info:
        create_metric("ssim", color_space="y")
    message = _one_line(str(info.value))
    assert message == (
        f"metric 'ssim' has no option 'color_space' (did you mean 'color'?); accepted: {SSIM_OPTIONS}"
    )
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, TypeError)
    with pytest.raises(OptionError, match=r"metric 'fsim' has no option 'color'; accepted: chromatic, "):
        create_metric("fsim", color="y")  # FSIM works in YIQ: it has no colour option
    with pytest.raises(OptionError, match=r"no options 'a', 'b'; accepted: color, quantize, text_io$"):
        create_metric("brisque", a=1, b=2)


def test_unknown_model_option_lists_the_config_fields_and_weights():
    with pytest.raises(OptionError) as info:
        create_model("perceptiq_nr", hiden=8)
    message = _one_line(str(info.value))
    accepted = sorted({f.name for f in dataclasses.fields(NSSMLPConfig)} | {"weights"})
    assert message == (
        "model 'perceptiq_nr' has no option 'hiden' (did you mean 'hidden'?); "
        f"accepted: {', '.join(accepted)}"
    )
    # the "model" metric hands its other keywords to the model, which names them the same way
    with pytest.raises(OptionError, match="model 'perceptiq_nr' has no option 'hiden'"):
        create_metric("model", model="perceptiq_nr", hiden=8)


def test_unknown_protocol_option_lists_its_constructor_keywords():
    with pytest.raises(OptionError) as info:
        create_protocol("realsr-2afc", ties="second")
    assert _one_line(str(info.value)) == (
        "protocol 'realsr-2afc' has no option 'ties' (did you mean 'tie'?); accepted: tie"
    )
    with pytest.raises(OptionError, match="accepted: mappings, outlier_mapping$"):
        create_protocol("generic", mapping="logistic4")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--metric", "ssim", "--option", "color_space=y"], "metric 'ssim' has no option 'color_space'"),
        (["--model", "perceptiq_nr", "--option", "hiden=8"], "model 'perceptiq_nr' has no option 'hiden'"),
    ],
)
def test_cli_score_unknown_option_is_one_line_exit_1(tmp_path, args, expected):
    from PIL import Image

    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(tmp_path / "a.png")
    result = runner.invoke(app, ["score", str(tmp_path), *args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # typer.Exit(1), no traceback
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {expected}"), result.output
    assert "accepted: " in lines[0]


def test_cli_evaluate_unknown_protocol_option_is_one_line_exit_1():
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(EXAMPLES / "predictions.csv"),
            str(EXAMPLES / "mos.csv"),
            "--protocol",
            "isrg-q-2025",
            "--option",
            "plcc=logistic4",
        ],
    )
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        "error: protocol 'isrg-q-2025' has no option 'plcc' (did you mean 'plcc_mapping'?); "
        "accepted: plcc_mapping"
    ]


def test_readme_and_help_example_runs(tmp_path):
    """The documented `--option color=y --option crop_border=4` is PSNR on BT.601 Y, border cropped."""
    from PIL import Image

    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    (tmp_path / "hr").mkdir()
    (tmp_path / "sr").mkdir()
    Image.fromarray(hr).save(tmp_path / "hr" / "x.png")
    Image.fromarray(sr).save(tmp_path / "sr" / "x.png")
    result = runner.invoke(
        app,
        ["score", str(tmp_path / "sr"), "--ref", str(tmp_path / "hr"), "--metric", "psnr"]
        + ["--option", "color=y", "--option", "crop_border=4", "--json"],
    )
    assert result.exit_code == 0, result.output
    score = json.loads(result.output)[0]["score"]
    y_sr = 16.0 + sr.astype(np.float64) @ BT601_Y
    y_hr = 16.0 + hr.astype(np.float64) @ BT601_Y
    mse = np.mean((y_sr - y_hr)[4:-4, 4:-4] ** 2)
    assert score == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-3)


# ---------------------------------------------------------------------------------------------------
# One colour vocabulary


def _rgb8(seed: int = 0, h: int = 128, w: int = 144) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 70 * np.sin(xx / 6.0) * np.cos(yy / 11.0)
    return np.clip(base[None, None] + rng.normal(0, 15, (1, 3, h, w)), 0, 255).round().astype(np.uint8)


def test_nr_grey_names_are_the_fr_colour_spaces():
    """NR 'gray'/'y' (formerly 'rgb2gray'/'ycbcr_y') are the same conversions as the FR ones."""
    rgb8 = _rgb8()
    x = torch.from_numpy(rgb8 / 255.0)
    gray = np.einsum("bchw,c->bhw", rgb8.astype(np.float64), MATLAB_GRAY)
    luma = 16.0 + np.einsum("bchw,c->bhw", rgb8.astype(np.float64), BT601_Y)
    np.testing.assert_allclose(to_grey255(x, "gray", quantize=False).numpy(), gray, atol=1e-9)
    np.testing.assert_allclose(to_grey255(x, "y", quantize=False).numpy(), luma, atol=1e-9)
    for name in ("gray", "y"):
        fr = to_color_space(x, name)[:, 0].numpy() * 255.0
        np.testing.assert_allclose(to_grey255(x, name, quantize=False).numpy(), fr, atol=1e-9)


@pytest.mark.parametrize(("color", "weights", "offset"), [("gray", MATLAB_GRAY, 0.0), ("y", BT601_Y, 16.0)])
def test_niqe_colour_names_give_the_values_of_the_mapped_conversions(color, weights, offset):
    """NIQE with color=gray / y equals NIQE of the MATLAB rgb2gray / rgb2ycbcr grey image of 8-bit values."""
    rgb8 = _rgb8(seed=3, h=192, w=192)
    grey = np.floor(np.einsum("bchw,c->bhw", rgb8.astype(np.float64), weights) + offset + 0.5)
    metric = nr.NIQE(color=color)
    expected = niqe(torch.from_numpy(grey), metric.mu, metric.cov, 96)
    got = metric(torch.from_numpy(rgb8 / 255.0).float())
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_nr_metrics_refuse_rgb_and_the_old_spellings_clearly():
    for metric in ("niqe", "brisque"):
        with pytest.raises(InputError, match=f"{metric} works on one grey channel and takes no color='rgb'"):
            create_metric(metric, color="rgb")
        for old in ("rgb2gray", "ycbcr_y"):
            with pytest.raises(InputError, match=f"unknown color '{old}'.*'gray' \\(MATLAB rgb2gray"):
                create_metric(metric, color=old)
    with pytest.raises(InputError, match="unknown color 'lab'; the colour spaces are 'rgb'"):
        create_metric("psnr", color="lab")


def test_metrics_listing_documents_options_and_the_colour_vocabulary():
    help_text = runner.invoke(app, ["metrics", "--help"], env={"COLUMNS": "200"}).output
    for line in ("rgb: the three RGB channels", "y: BT.601 luma", "gray: MATLAB rgb2gray"):
        assert line in help_text
    result = runner.invoke(app, ["metrics", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["ssim"]["options"]["color"] == "gray"
    assert rows["psnr"]["options"]["color"] == "rgb"
    assert ", ".join(sorted(rows["ssim"]["options"])) == SSIM_OPTIONS
    assert rows["niqe"]["colors"] == rows["brisque"]["colors"] == ["gray", "y"]
    assert rows["ssim"]["colors"] == ["rgb", "y", "gray"]
    assert rows["fsim"]["colors"] == []
    assert "color" not in rows["fsim"]["options"]
    assert rows["model"]["more_options"]
    assert "allow_random_weights" in rows["model"]["options"]
