"""Cross-validate, train and package perceptiq's default no-reference model (``perceptiq_nr``).

Every model here is trained by perceptiq's trainer with the packaged recipe ``default_nr``
(``perceptiq train default_nr``): this script only writes the fold manifests, runs the recipe with
``--set`` overrides, collects the validation-fold predictions and writes the model card's numbers.

1. Data: the CLIVE development split (724 images, MOS 0-100) from ../shared/data/clive/manifest.csv.
2. Descriptors: ``nss_mlp``'s fixed descriptor, computed once per image into ``.cache/descriptors``
   (``data.descriptor_cache`` of the recipe, shared by all runs).
3. Model selection: 5-fold cross-validation by image (``perceptiq.data.splits.content_split``, seed 0);
   for each point of a small grid (dropout, epochs) and each fold (train = 4 folds, val = the fifth) the
   recipe runs 5 times with one MLP each (seeds 10k .. 10k + 4), merged into a 5-member deep ensemble
   (``NSSMLPModel.merge``); the point with the best mean validation-fold SRCC wins.
4. Reported numbers: SRCC/PLCC with 95% bootstrap CIs (1,000 resamples, seed 0, protocol vquala25-fiqa)
   of the chosen point's out-of-fold predictions and of a fixed 80/20 split (seed 0), beside NIQE and
   BRISQUE on the same images.
5. Shipped model: the chosen point trained on all 724 images (``data.train_split=dev``, seeds 990-994), saved
   as float16
   safetensors + config.json in src/perceptiq/models/weights/perceptiq_nr/.

Finished runs (their ``summary.json``) are reused, so an interrupted job resumes where it stopped.
Usage: ``python scripts/train_default_model.py [--work runs/default_nr]`` from the repository root.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from perceptiq.data.manifest import read_manifest
from perceptiq.data.splits import content_split
from perceptiq.evaluation.protocols import ScoreData, create_protocol
from perceptiq.io.images import read_image
from perceptiq.metrics import create_metric
from perceptiq.models import load_model, save_model
from perceptiq.models.nss_mlp import NSSMLPModel
from perceptiq.training.config import load_config
from perceptiq.training.descriptors import cached_descriptors
from perceptiq.training.loop import train

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "clive"
OUT_WEIGHTS = ROOT / "src" / "perceptiq" / "models" / "weights" / "perceptiq_nr"
RESULTS = ROOT / "benchmarks" / "results"
RECIPE = "default_nr"
GRID = {"model.options.dropout": (0.3, 0.5), "epochs": (30, 60)}
MEMBERS = 5  # deep ensemble: independent runs from different seeds


def image_key(path: str) -> str:
    """Manifest-relative name of a CLIVE image (``images/<file>``), the id used in result files."""
    return "images/" + Path(path).name


def cached_scores(manifest: pd.DataFrame, cache: Path, name: str, fn) -> np.ndarray:
    """Per-image arrays computed by ``fn(image_tensor)``, cached in ``cache/<name>.npz``."""
    file = cache / f"{name}.npz"
    keys = [image_key(p) for p in manifest["image"]]
    if file.exists():
        stored = np.load(file, allow_pickle=False)
        if list(stored["keys"]) == keys:
            return stored["values"]
    values = []
    start = time.time()
    for k, path in enumerate(manifest["image"]):
        with torch.no_grad():
            values.append(np.asarray(fn(read_image(path))).reshape(-1))
        if k % 100 == 0:
            print(f"  {name}: {k}/{len(manifest)} images, {time.time() - start:.0f} s", flush=True)
    array = np.stack(values)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, keys=np.array(keys), values=array)
    return array


def seeds_of(run: int) -> range:
    """Seeds of the ensemble members of one run (fold k: 10k .. 10k + MEMBERS - 1)."""
    return range(10 * run, 10 * run + MEMBERS)


def write_split(manifest: pd.DataFrame, is_val: np.ndarray, path: Path) -> Path:
    """A manifest of the same images with split = train / val."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = manifest[["image", "mos"]].assign(split=np.where(is_val, "val", "train"))
    frame.to_csv(path, index=False)
    return path


def run_recipe(out: Path, overrides: list[str]) -> Path:
    """``perceptiq train default_nr --out OUT --set ...`` (in process); a finished run is reused."""
    if (out / "summary.json").exists():
        return out
    if out.exists():
        shutil.rmtree(out)  # an unfinished run: start it again (its few seconds are not worth a resume)
    cfg = load_config(RECIPE, [*overrides, "log.progress=false"])
    train(dataclasses.replace(cfg, output_dir=str(out)))
    return out


def train_ensemble(out: Path, overrides: list[str], seeds: range) -> NSSMLPModel:
    """A deep ensemble: one single-member run of the recipe per seed, merged into one nss_mlp model."""
    runs = [run_recipe(out / f"seed{seed}", [*overrides, "model.options.n_members=1", f"seed={seed}"])
            for seed in seeds]  # fmt: skip
    return NSSMLPModel.merge([load_model(run / "final") for run in runs]).eval()


def predict(model: NSSMLPModel, paths: list[str], cache: str) -> np.ndarray:
    """Scores of the images from their cached descriptors."""
    with torch.no_grad():
        return model(cached_descriptors(model, paths, cache, progress=False)).double().numpy()


def evaluate(ids: np.ndarray, pred: np.ndarray, mos: np.ndarray) -> dict[str, object]:
    result = create_protocol("vquala25-fiqa").evaluate(ScoreData(ids, pred, mos), bootstrap=1000, seed=0)
    out = {}
    for name in ("srcc", "plcc"):
        ci = result.intervals[name]
        out[name] = {"value": result.statistics[name], "ci95": [ci.low, ci.high]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=SHARED / "manifest.csv")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "default_nr")
    parser.add_argument("--baseline-cache", type=Path, default=ROOT / ".cache" / "default_model")
    parser.add_argument("--out", type=Path, default=OUT_WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    manifest = read_manifest(args.manifest)
    ids = np.array([image_key(p) for p in manifest["image"]])
    paths = [str(p) for p in manifest["image"]]
    mos = manifest["mos"].to_numpy()
    cache = load_config(RECIPE).data.descriptor_cache
    folds = content_split(manifest.assign(image=ids), "image", n_folds=5, seed=0).to_numpy()
    splits = args.work / "splits"
    fold_files = {int(f): write_split(manifest, folds == f, splits / f"fold{f}.csv") for f in set(folds)}
    print("model selection by 5-fold CV ...", flush=True)
    grid = []
    for values in itertools.product(*GRID.values()):
        point = dict(zip(GRID, values, strict=True))
        tag = "_".join(f"{k.split('.')[-1]}{v}" for k, v in point.items())
        oof = np.empty(len(mos))
        for fold, file in fold_files.items():
            sets = [f"{k}={v}" for k, v in point.items()]
            sets += [f"data.train={file}", "data.train_split=train"]
            model = train_ensemble(args.work / "cv" / tag / f"fold{fold}", sets, seeds_of(fold))
            oof[folds == fold] = predict(model, [paths[i] for i in np.flatnonzero(folds == fold)], cache)
        per_fold = [
            float(pd.Series(oof[folds == f]).corr(pd.Series(mos[folds == f]), method="spearman"))
            for f in fold_files
        ]
        grid.append({**point, "mean_fold_srcc": float(np.mean(per_fold)), "fold_srcc": per_fold, "oof": oof})
        print(f"  {point}: mean fold SRCC {np.mean(per_fold):.4f}", flush=True)
    best = max(grid, key=lambda row: row["mean_fold_srcc"])
    point = {k: best[k] for k in GRID}
    sets = [f"{k}={v}" for k, v in point.items()]
    print(f"chosen: {point}", flush=True)
    oof = best["oof"]
    grid = [{k: v for k, v in row.items() if k != "oof"} for row in grid]

    rng = np.random.default_rng(0)
    val_mask = np.zeros(len(mos), bool)
    val_mask[rng.permutation(len(mos))[: len(mos) // 5]] = True
    split_file = write_split(manifest, val_mask, args.work / "splits" / "fixed_80_20.csv")
    split_sets = [*sets, f"data.train={split_file}", "data.train_split=train"]
    split_model = train_ensemble(args.work / "fixed_split", split_sets, seeds_of(10))
    split_pred = predict(split_model, [paths[i] for i in np.flatnonzero(val_mask)], cache)

    print("final model on all images ...", flush=True)
    final_sets = [*sets, f"data.train={args.manifest}", "data.train_split=dev"]
    final = train_ensemble(args.work / "final", final_sets, seeds_of(99))
    save_model(final, args.out, dtype=torch.float16)

    print("NIQE and BRISQUE on the same images ...", flush=True)
    niqe = cached_scores(manifest, args.baseline_cache, "niqe", create_metric("niqe")).ravel()
    brisque = cached_scores(manifest, args.baseline_cache, "brisque", create_metric("brisque")).ravel()
    RESULTS.mkdir(parents=True, exist_ok=True)
    oof_file = RESULTS / "default_model_oof_predictions.csv"
    pd.DataFrame({"image": ids, "score": oof}).to_csv(oof_file, index=False)
    pd.DataFrame({"image": ids, "niqe": niqe, "brisque": brisque}).to_csv(
        RESULTS / "default_model_baselines.csv", index=False
    )
    summary = {
        "data": f"CLIVE development split, {len(mos)} images",
        "recipe": RECIPE,
        "command": "python scripts/train_default_model.py (runs `perceptiq train default_nr` per fold)",
        "chosen_config": point,
        "grid": grid,
        "cross_validation_out_of_fold": evaluate(ids, oof, mos),
        "fixed_split_validation": {
            "n_train": int((~val_mask).sum()),
            "n_val": int(val_mask.sum()),
            **evaluate(ids[val_mask], split_pred, mos[val_mask]),
        },
        "niqe_same_images": evaluate(ids, -niqe, mos),
        "brisque_same_images": evaluate(ids, -brisque, mos),
        "note": "NIQE and BRISQUE are lower-is-better: their SRCC/PLCC are reported for the negated scores.",
        "parameters": int(sum(p.numel() for p in final.parameters())),
    }
    (RESULTS / "default_model.json").write_text(json.dumps(summary, indent=2) + "\n")
    keys = ("chosen_config", "cross_validation_out_of_fold", "fixed_split_validation", "niqe_same_images",
            "brisque_same_images")  # fmt: skip
    print(json.dumps({k: summary[k] for k in keys}, indent=2))


if __name__ == "__main__":
    main()
