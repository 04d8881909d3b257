"""Train, cross-validate and package perceptiq's default no-reference model (``perceptiq_nr``).

Recipe (reproduce with ``python scripts/train_default_model.py``; needs ../shared/data/clive):

1. Data: the CLIVE development split (724 images, MOS 0-100) from ../shared/data/clive/manifest.csv.
2. Features: the fixed descriptor of :mod:`perceptiq.functional.nr.quality_features`, computed once per
   image through the model's own ``features`` (cached in ``--cache``).
3. Model selection: 5-fold cross-validation by image (``perceptiq.data.splits.content_split``, seed 0) over a
   small grid (hidden width, dropout, epochs, weight decay); the configuration with the best mean
   validation-fold SRCC wins. Each fold trains a fresh ``nss_mlp`` (5 members, seeds 0-4) with
   AdamW and loss = MSE + (1 - PLCC) on standardised MOS (perceptiq.losses).
4. Reported numbers: SRCC/PLCC (bootstrap 95% CIs, 1,000 resamples) of the out-of-fold predictions of
   the chosen configuration, and of a fixed 80/20 train/validation split (seed 0), beside NIQE and
   BRISQUE on the same images.
5. Shipped model: the chosen configuration trained on all 724 images, saved as float16 safetensors +
   config.json with a model card in src/perceptiq/models/weights/perceptiq_nr/.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from perceptiq.data.manifest import read_manifest
from perceptiq.data.splits import content_split
from perceptiq.evaluation.protocols import ScoreData, create_protocol
from perceptiq.io.images import read_image
from perceptiq.losses.functional import plcc_loss
from perceptiq.metrics import create_metric
from perceptiq.models import save_model
from perceptiq.models.nss_mlp import NSSMLPConfig, NSSMLPModel

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "clive"
OUT_WEIGHTS = ROOT / "src" / "perceptiq" / "models" / "weights" / "perceptiq_nr"
RESULTS = ROOT / "benchmarks" / "results"
GRID = {"hidden": (64,), "dropout": (0.1, 0.3), "epochs": (60, 150), "weight_decay": (1e-2,)}


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


def train_model(features: np.ndarray, mos: np.ndarray, cfg: dict, seed_base: int = 0) -> NSSMLPModel:
    """A fresh nss_mlp trained on (features, mos): every member from its own seed, MSE + (1 - PLCC)."""
    model = NSSMLPModel(NSSMLPConfig(hidden=cfg["hidden"], dropout=cfg["dropout"]))
    x = torch.tensor(features, dtype=torch.float64)
    y = torch.tensor(mos, dtype=torch.float64)
    model.set_standardisation(x, y)
    target = ((y - model.target_mean) / model.target_std).float()
    for member in range(model.config.n_members):
        generator = torch.Generator().manual_seed(seed_base * 100 + member)
        torch.manual_seed(seed_base * 100 + member)
        for layer in model.members[member]:
            if isinstance(layer, torch.nn.Linear):
                layer.reset_parameters()
        optimiser = torch.optim.AdamW(
            model.members[member].parameters(), lr=3e-3, weight_decay=cfg["weight_decay"]
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg["epochs"])
        model.train()
        for _ in range(cfg["epochs"]):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), 64):
                batch = order[start : start + 64]
                pred = model.head(x[batch], member)
                loss = torch.mean((pred - target[batch]) ** 2) + plcc_loss(pred, target[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            schedule.step()
    return model.eval()


def predict(model: NSSMLPModel, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        z = model.head(torch.tensor(features, dtype=torch.float64))
        return (z * model.target_std + model.target_mean).double().numpy()


def evaluate(ids: np.ndarray, pred: np.ndarray, mos: np.ndarray, seed: int = 0) -> dict[str, object]:
    result = create_protocol("vquala25-fiqa").evaluate(ScoreData(ids, pred, mos), bootstrap=1000, seed=seed)
    out = {}
    for name in ("srcc", "plcc"):
        ci = result.intervals[name]
        out[name] = {"value": result.statistics[name], "ci95": [ci.low, ci.high]}
    return out


def cross_validate(features: np.ndarray, mos: np.ndarray, folds: np.ndarray, cfg: dict) -> np.ndarray:
    oof = np.empty(len(mos))
    for fold in np.unique(folds):
        train, val = folds != fold, folds == fold
        model = train_model(features[train], mos[train], cfg, seed_base=int(fold))
        oof[val] = predict(model, features[val])
    return oof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=SHARED / "manifest.csv")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "default_model")
    parser.add_argument("--out", type=Path, default=OUT_WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    manifest = read_manifest(args.manifest)
    ids = np.array([image_key(p) for p in manifest["image"]])
    mos = manifest["mos"].to_numpy()
    probe = NSSMLPModel(NSSMLPConfig())
    print("features ...", flush=True)
    features = cached_scores(manifest, args.cache, "quality_features", probe.features)
    folds = content_split(manifest.assign(image=ids), "image", n_folds=5, seed=0).to_numpy()
    print("model selection by 5-fold CV ...", flush=True)
    grid = []
    for values in itertools.product(*GRID.values()):
        cfg = dict(zip(GRID, values, strict=True))
        oof = cross_validate(features, mos, folds, cfg)
        per_fold = [
            float(pd.Series(oof[folds == f]).corr(pd.Series(mos[folds == f]), method="spearman"))
            for f in np.unique(folds)
        ]
        grid.append({**cfg, "mean_fold_srcc": float(np.mean(per_fold)), "fold_srcc": per_fold, "oof": oof})
        print(f"  {cfg}: mean fold SRCC {np.mean(per_fold):.4f}", flush=True)
    best = max(grid, key=lambda row: row["mean_fold_srcc"])
    cfg = {k: best[k] for k in GRID}
    print(f"chosen: {cfg}", flush=True)
    oof = best["oof"]
    grid = [{k: v for k, v in row.items() if k != "oof"} for row in grid]
    rng = np.random.default_rng(0)
    val_mask = np.zeros(len(mos), bool)
    val_mask[rng.permutation(len(mos))[: len(mos) // 5]] = True
    split_model = train_model(features[~val_mask], mos[~val_mask], cfg, seed_base=10)
    split_pred = predict(split_model, features[val_mask])
    print("NIQE and BRISQUE on the same images ...", flush=True)
    niqe = cached_scores(manifest, args.cache, "niqe", create_metric("niqe")).ravel()
    brisque = cached_scores(manifest, args.cache, "brisque", create_metric("brisque")).ravel()
    final = train_model(features, mos, cfg, seed_base=99)
    save_model(final, args.out, dtype=torch.float16)
    RESULTS.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image": ids, "score": oof}).to_csv(
        RESULTS / "default_model_oof_predictions.csv", index=False
    )
    pd.DataFrame({"image": ids, "niqe": niqe, "brisque": brisque}).to_csv(
        RESULTS / "default_model_baselines.csv", index=False
    )
    summary = {
        "data": f"CLIVE development split, {len(mos)} images",
        "chosen_config": cfg,
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
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "chosen_config",
                    "cross_validation_out_of_fold",
                    "fixed_split_validation",
                    "niqe_same_images",
                    "brisque_same_images",
                )
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
