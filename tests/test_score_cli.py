"""`perceptiq score` on a folder of good and broken files; resumable output; references; samples."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from perceptiq.cli import app
from perceptiq.errors import InputError
from perceptiq.io.images import pair_references
from perceptiq.scoring import Scorer, score_files

runner = CliRunner()


def _photo(h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127 + 60 * np.sin(xx / 7.0) * np.cos(yy / 9.0)
    return np.clip(base[..., None] + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def messy_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(_photo()).save(folder / "good.jpg", quality=90)
    full = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("this is not an image\n")
    Image.fromarray(_photo(seed=1)).convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    sixteen = (_photo(seed=2)[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(sixteen).save(folder / "sixteen.png")
    rgba = np.dstack([_photo(seed=3), np.full((128, 160), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(folder / "tiny.png")
    return folder


def test_score_folder_reports_every_broken_file_and_exits_1(messy_folder, tmp_path):
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["score", str(messy_folder), "--metric", "niqe", "--out", str(out), "--batch-size", "3"]
    )
    assert result.exit_code == 1, result.output
    rows = pd.read_csv(out).set_index(pd.read_csv(out)["image"].map(lambda p: p.rsplit("/", 1)[-1]))
    assert len(rows) == 8
    for name in ("good.jpg", "cmyk.jpg", "sixteen.png", "rgba.png"):
        assert np.isfinite(rows.loc[name, "score"]), rows.loc[name].to_dict()
        assert pd.isna(rows.loc[name, "error"])
    assert (
        "truncated" in rows.loc["truncated.jpg", "error"] or "corrupt" in rows.loc["truncated.jpg", "error"]
    )
    assert "empty" in rows.loc["empty.png", "error"]
    assert not pd.isna(rows.loc["text.png", "error"])
    assert not pd.isna(rows.loc["tiny.png", "error"])  # too small for NIQE's 96x96 patches
    for name in ("truncated.jpg", "empty.png", "text.png", "tiny.png"):
        assert name in result.stderr


def test_resume_skips_scored_images_and_keeps_one_row_each(messy_folder, tmp_path):
    good = [messy_folder / n for n in ("good.jpg", "cmyk.jpg", "sixteen.png", "rgba.png")]
    calls: list[int] = []

    def flaky(images: torch.Tensor) -> torch.Tensor:
        calls.append(images.shape[0])
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed while scoring the third batch
        return images.mean(dim=(1, 2, 3))

    out = tmp_path / "scores.jsonl"
    scorer = Scorer("mean", flaky)
    with pytest.raises(KeyboardInterrupt):
        score_files(good, scorer, output=out, batch_size=1, workers=0)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 2  # the two finished batches were flushed before the kill
    with pytest.raises(InputError, match="--resume"):
        score_files(good, Scorer("mean", lambda x: x.mean(dim=(1, 2, 3))), output=out)
    summary = score_files(
        good, Scorer("mean", lambda x: x.mean(dim=(1, 2, 3))), output=out, resume=True, workers=0
    )
    assert summary.skipped == 2
    assert summary.scored == 2
    final = pd.read_json(out, lines=True)
    assert sorted(final["image"]) == sorted(map(str, good))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_output_formats_round_trip(messy_folder, tmp_path, suffix):
    out = tmp_path / f"scores{suffix}"
    files = [messy_folder / "good.jpg", messy_folder / "text.png"]
    summary = score_files(files, Scorer("mean", lambda x: x.mean(dim=(1, 2, 3))), output=out, workers=0)
    assert (summary.scored, summary.failed) == (1, 1)
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    expected = np.asarray(Image.open(files[0]).convert("RGB"), dtype=np.float64).mean() / 255
    assert frame.loc[frame["image"] == str(files[0]), "score"].item() == pytest.approx(expected, abs=1e-6)
    assert not (tmp_path / "scores.partial.jsonl").exists()


def test_references_by_folder_and_manifest(tmp_path):
    (tmp_path / "dist").mkdir()
    (tmp_path / "ref").mkdir()
    for name in ("a", "b"):
        Image.fromarray(_photo()).save(tmp_path / "dist" / f"{name}.png")
    Image.fromarray(_photo()).save(tmp_path / "ref" / "a.png")
    images = [tmp_path / "dist" / "a.png", tmp_path / "dist" / "b.png"]
    by_folder = pair_references(images, tmp_path / "ref")
    assert by_folder[images[0]] == tmp_path / "ref" / "a.png"
    assert by_folder[images[1]] is None
    pd.DataFrame({"image": ["dist/a.png", "dist/b.png"], "ref": ["ref/a.png", "ref/a.png"]}).to_csv(
        tmp_path / "m.csv", index=False
    )
    by_manifest = pair_references(images, tmp_path / "m.csv")
    assert by_manifest[images[1]] == (tmp_path / "ref" / "a.png").resolve()


def test_full_reference_score_against_skimage_psnr(tmp_path):
    from skimage.metrics import peak_signal_noise_ratio

    clean = _photo()
    noisy = np.clip(
        clean.astype(int) + np.random.default_rng(0).integers(-20, 20, clean.shape), 0, 255
    ).astype(np.uint8)
    (tmp_path / "ref").mkdir()
    (tmp_path / "dist").mkdir()
    Image.fromarray(clean).save(tmp_path / "ref" / "x.png")
    Image.fromarray(noisy).save(tmp_path / "dist" / "x.png")
    result = runner.invoke(
        app, ["score", str(tmp_path / "dist"), "--ref", str(tmp_path / "ref"), "-m", "psnr", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["score"] == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=255), abs=1e-3)
    missing = runner.invoke(app, ["score", str(tmp_path / "dist"), "-m", "psnr"])
    assert missing.exit_code == 1
    assert "full-reference" in missing.stderr


def test_samples_then_score_moves_the_right_way(tmp_path):
    result = runner.invoke(app, ["samples", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(tmp_path / "s" / "manifest.csv")
    assert len(manifest) == 48
    out = tmp_path / "ssim.csv"
    scored = runner.invoke(
        app,
        [
            "score",
            str(tmp_path / "s" / "distorted"),
            "--ref",
            str(tmp_path / "s" / "manifest.csv"),
            "-m",
            "ssim",
            "-o",
            str(out),
        ],
    )
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(out)
    scores["image"] = scores["image"].map(lambda p: "distorted/" + p.rsplit("/", 1)[-1])
    merged = manifest.merge(scores, on="image")
    for _, group in merged.groupby(["photo", "distortion"]):
        ordered = group.sort_values("severity")["score"].to_numpy()
        assert (np.diff(ordered) < 0).all(), group  # stronger distortion, lower SSIM


def _tiles(x: np.ndarray, side: int) -> list[np.ndarray]:
    """The non-overlapping side x side tiles of an (H, W, ...) array whose sides are multiples of side."""
    h, w = x.shape[:2]
    return [x[r : r + side, c : c + side] for r in range(0, h, side) for c in range(0, w, side)]


def test_model_scored_with_policy_tiles_is_the_mean_over_its_tiles(tmp_path):
    from perceptiq.models import create_model, load_model, save_model

    torch.manual_seed(0)
    model = create_model("nss_mlp", n_members=2, mos_range=(-1e6, 1e6))  # no clipping of random scores
    save_model(model, tmp_path / "mine")  # its own input policy: the whole image
    pixels = _photo(128, 192)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    out = tmp_path / "tiles.jsonl"
    args = ["score", str(tmp_path / "x.png"), "--weights", str(tmp_path / "mine"), "--json", "-o", str(out)]
    result = runner.invoke(app, [*args, "--policy", "tiles", "--tile", "64"])
    assert result.exit_code == 0, result.output
    model = load_model(tmp_path / "mine")
    by_tile = [
        float(model.score(torch.from_numpy(t.transpose(2, 0, 1).copy()).float()[None] / 255.0)[0])
        for t in _tiles(pixels, 64)
    ]
    assert len(by_tile) == 6
    whole = float(model.score(torch.from_numpy(pixels.transpose(2, 0, 1).copy()).float()[None] / 255.0)[0])
    score = json.loads(result.stdout)[0]["score"]
    assert score == pytest.approx(np.mean(by_tile), rel=1e-5)
    assert abs(score - whole) > 1e-3  # the policy was applied, not the model's own whole-image one
    recorded = json.loads((tmp_path / "tiles.jsonl.meta.json").read_text())["scorer"]["policy"]
    assert (recorded["mode"], recorded["tile_size"]) == ("tiles", 64)
    again = runner.invoke(app, [*args, "--resume", "--policy", "tiles", "--tile", "32"])
    assert again.exit_code == 1
    assert "resume with the same scorer and options" in again.output


def test_metric_scored_with_policy_tiles_is_the_mean_over_its_tiles(tmp_path):
    from skimage.metrics import peak_signal_noise_ratio

    clean = _photo(128, 192)
    noisy = np.clip(clean.astype(int) + np.random.default_rng(1).integers(-30, 30, clean.shape), 0, 255)
    noisy = noisy.astype(np.uint8)
    (tmp_path / "ref").mkdir()
    (tmp_path / "dist").mkdir()
    Image.fromarray(clean).save(tmp_path / "ref" / "x.png")
    Image.fromarray(noisy).save(tmp_path / "dist" / "x.png")
    args = ["score", str(tmp_path / "dist"), "--ref", str(tmp_path / "ref"), "-m", "psnr", "--json"]
    result = runner.invoke(app, [*args, "--policy", "tiles", "--tile", "64"])
    assert result.exit_code == 0, result.output
    by_tile = [
        peak_signal_noise_ratio(c, n, data_range=255)
        for c, n in zip(_tiles(clean, 64), _tiles(noisy, 64), strict=True)
    ]
    assert json.loads(result.stdout)[0]["score"] == pytest.approx(np.mean(by_tile), abs=1e-3)
