"""`perceptiq score` on undefined scores, torn or foreign outputs and hostile files.

References: pixel means computed with numpy from the PNG files written here (the scorer under test
is the mean of the pixels), strict JSON parsing (``parse_constant`` rejects NaN/Infinity), and the
file system itself (a FIFO, /dev/zero, a path under a file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from perceptiq.cli import app
from perceptiq.cli._common import print_json
from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images import read_image, scan_images
from perceptiq.scoring import Scorer, metric_scorer, score_files

runner = CliRunner()


def _strict_loads(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"invalid JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _mean_scorer(name: str = "mean", **settings: object) -> Scorer:
    return Scorer(name, lambda x: x.mean(dim=(1, 2, 3)), settings={"metric": name, **settings})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    out = tmp_path / "imgs"
    out.mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(out / f"im{i}.png")
    return out


def _pixel_mean(path: str) -> float:
    return float(np.asarray(Image.open(path), dtype=np.float64).mean() / 255.0)


# ------------------------------------------------------------------------------------------------
# ITEM 2: no silent NaN; valid JSON


@pytest.mark.parametrize("metric", ["niqe", "brisque"])
def test_flat_image_is_an_error_row_with_a_reason_and_json_is_valid(tmp_path, metric):
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((128, 128, 3), 200, np.uint8)).save(flat)
    out = tmp_path / "s.jsonl"
    result = runner.invoke(app, ["score", str(flat), "--metric", metric, "--out", str(out), "--json"])
    assert result.exit_code == 1
    rows = _strict_loads(result.stdout)
    assert rows[0]["score"] is None
    assert "flat" in rows[0]["error"]
    written = [_strict_loads(line) for line in out.read_text().splitlines()]
    assert written[0]["score"] is None
    assert "flat" in written[0]["error"]


def test_any_nan_score_becomes_an_error_row(folder):
    nan_scorer = Scorer("broken", lambda x: torch.full((x.shape[0],), float("nan")))
    summary = score_files(sorted(folder.iterdir()), nan_scorer, workers=0)
    assert summary.scored == 0
    assert summary.failed == 5
    assert all(row["score"] is None and "undefined" in row["error"] for row in summary.rows)


def test_inf_psnr_of_identical_images_is_kept_and_json_is_null(tmp_path, folder):
    image = folder / "im0.png"
    scorer = metric_scorer("psnr")
    summary = score_files([image], scorer, references={image: image}, workers=0, output=tmp_path / "p.jsonl")
    assert summary.rows[0]["score"] == float("inf")
    assert summary.rows[0]["error"] is None
    row = _strict_loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert row["score"] is None
    assert row["error"] is None


def test_print_json_maps_nan_and_inf_to_null(capsys):
    print_json([{"a": float("nan"), "b": float("inf"), "c": np.float32(1.5), "d": [float("-inf")]}])
    assert _strict_loads(capsys.readouterr().out) == [{"a": None, "b": None, "c": 1.5, "d": [None]}]


# ------------------------------------------------------------------------------------------------
# ITEM 3: exact resume


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_resume_repairs_a_torn_last_line_and_rescores_that_image(folder, tmp_path, suffix):
    paths = sorted(folder.iterdir())
    out = tmp_path / f"s{suffix}"
    score_files(paths[:3], _mean_scorer(), output=out, workers=0)
    stream = out.with_suffix(".partial.jsonl") if suffix == ".parquet" else out
    if suffix == ".parquet":  # a killed Parquet run leaves only its stream
        frame = pd.read_parquet(out)
        stream.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records")))
        out.unlink()
    data = stream.read_bytes()
    stream.write_bytes(data[: len(data) - 15])  # cut the last row mid-line
    summary = score_files(paths, _mean_scorer(), output=out, resume=True, workers=0)
    assert summary.skipped == 2
    assert summary.scored == 3
    assert any("incomplete last line" in note for note in summary.notes)
    frame = (
        pd.read_csv(out)
        if suffix == ".csv"
        else pd.read_json(out, lines=True)
        if suffix == ".jsonl"
        else pd.read_parquet(out)
    )
    assert sorted(frame["image"]) == sorted(str(p) for p in paths)
    for image, score in zip(frame["image"], frame["score"], strict=True):
        assert score == pytest.approx(_pixel_mean(image), abs=1e-6)


def test_resume_with_another_scorer_or_options_is_refused(folder, tmp_path):
    out = tmp_path / "s.csv"
    paths = sorted(folder.iterdir())
    score_files(paths[:2], _mean_scorer(), output=out, workers=0)
    assert json.loads((tmp_path / "s.csv.meta.json").read_text())["scorer"] == {"metric": "mean"}
    with pytest.raises(InputError, match=r"was scored with .*mean.*this run uses .*other"):
        score_files(paths, _mean_scorer("other"), output=out, resume=True, workers=0)
    with pytest.raises(InputError, match=r"crop_border"):
        score_files(paths, _mean_scorer(crop_border=4), output=out, resume=True, workers=0)
    assert len(pd.read_csv(out)) == 2  # nothing was appended


def test_cli_resume_with_other_metric_is_a_one_line_error(folder, tmp_path):
    out = tmp_path / "s.csv"
    args = ["score", str(folder), "--out", str(out)]
    assert runner.invoke(app, [*args, "--metric", "brisque", "--batch-size", "5"]).exit_code == 0
    result = runner.invoke(app, [*args, "--metric", "niqe", "--resume"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "brisque" in result.output
    assert "niqe" in result.output


def test_relative_and_absolute_paths_are_one_image(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(folder.parent)
    out = tmp_path / "s.csv"
    absolute = folder / "im0.png"
    relative = Path(folder.name) / "im0.png"
    summary = score_files([absolute, relative], _mean_scorer(), output=out, workers=0)
    assert summary.scored == 1
    again = score_files([relative, folder / "im1.png"], _mean_scorer(), output=out, resume=True, workers=0)
    assert again.skipped == 1
    assert again.scored == 1
    assert sorted(pd.read_csv(out)["image"]) == [str(absolute), str(folder / "im1.png")]


# ------------------------------------------------------------------------------------------------
# ITEM 10: hostile or odd files


def test_fifo_and_dev_zero_become_error_rows_and_the_batch_goes_on(folder, tmp_path):
    os.mkfifo(folder / "pipe.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    summary = score_files(sorted(folder.iterdir()), _mean_scorer(), workers=2)
    errors = dict(summary.failures)
    assert "FIFO" in errors[str(folder / "pipe.png")]
    assert "character device" in errors[str(folder / "zero.png")]
    assert summary.scored == 5


def test_size_cap_is_checked_before_reading(folder):
    with pytest.raises(DataFileError, match="over the limit of 100 bytes"):
        read_image(folder / "im0.png", max_bytes=100)
    summary = score_files([folder / "im0.png"], _mean_scorer(), workers=0, max_bytes=100)
    assert summary.failed == 1
    assert "max_bytes" in summary.failures[0][1]


def test_unwritable_output_is_a_one_line_error(folder, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = runner.invoke(app, ["score", str(folder), "-m", "niqe", "--out", str(blocker / "s.csv")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "cannot write the output" in result.output
    result = runner.invoke(app, ["score", str(folder), "-m", "niqe", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_resume_onto_a_csv_without_image_column_is_a_one_line_error(folder, tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("name,value\na,1\n")
    result = runner.invoke(app, ["score", str(folder), "-m", "niqe", "--out", str(out), "--resume"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "no 'image' column" in result.output


def test_unsupported_suffixes_are_listed(folder, tmp_path):
    (folder / "photo.heic").write_bytes(b"\x00" * 10)
    (folder / "notes.txt").write_text("hi")
    images, unsupported = scan_images(folder)
    assert len(images) == 5
    assert unsupported == [folder / "notes.txt", folder / "photo.heic"]
    result = runner.invoke(app, ["score", str(folder), "-m", "brisque"])
    assert result.exit_code == 0
    assert "2 file(s) not read" in result.output
    assert "photo.heic" in result.output


def test_ref_with_a_no_reference_metric_warns(folder):
    result = runner.invoke(app, ["score", str(folder), "-m", "brisque", "--ref", str(folder)])
    assert result.exit_code == 0
    assert "--ref ignored" in result.output
