"""Write synthetic severity ladders of pristine photos for the default model's calibration runs.

Each chosen photo of ../shared/data/pristine_natural (every ``--every``-th row of its manifest, at least
256 px on the short side) is written as PNG together with levels 1, 3 and 5 of the Gaussian-noise, JPEG
and Gaussian-blur ladders of :data:`perceptiq.data.ladders.SEVERITIES` (seeded). The manifest has no
MOS; its ``method`` column names the rung (``pristine``, ``gaussian_noise_L3``, ...) and
``method_scores.json`` ranks the rungs in the format of ``perceptiq rank --json``: pristine 0, then
-1 / -2 / -3 for levels 1 / 3 / 5 of every family (families are not calibrated against each other; equal
levels count as ties). Output goes to an ignored folder: the photos are shared data, never committed.

Usage: ``python scripts/make_synthetic_ladders.py [--out .cache/synthetic_ladders] [--every 3]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from perceptiq.data.distortions import distort
from perceptiq.data.ladders import SEVERITIES, derive_seed
from perceptiq.io.images import read_image, save_image

ROOT = Path(__file__).resolve().parents[1]
PRISTINE = ROOT.parent / "shared" / "data" / "pristine_natural"
FAMILIES = ("gaussian_noise", "jpeg", "gaussian_blur")
LEVELS = {1: -1.0, 3: -2.0, 5: -3.0}  # rung -> global score (pristine 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "synthetic_ladders")
    parser.add_argument("--every", type=int, default=3)
    args = parser.parse_args()
    sources = pd.read_csv(PRISTINE / "manifest.csv")
    sources = sources[sources[["width", "height"]].min(axis=1) >= 256].iloc[:: args.every]
    rows = []
    for k, relative in enumerate(tqdm(sources["path"], desc="ladders", unit="photo")):
        image = read_image(PRISTINE / relative)
        stem = Path(relative).stem
        folder = args.out / "images"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{k:03d}_{stem}.png"
        save_image(image, path)
        rows.append({"image": str(path), "method": "pristine", "split": "train"})
        for family in FAMILIES:
            for level in LEVELS:
                seed = derive_seed(0, k, family)
                distorted = distort(image, family, SEVERITIES[family][level - 1], seed=seed)
                path = folder / f"{k:03d}_{stem}_{family}_L{level}.png"
                save_image(distorted, path)
                rows.append({"image": str(path), "method": f"{family}_L{level}", "split": "train"})
    pd.DataFrame(rows).to_csv(args.out / "manifest.csv", index=False)
    ranking = [{"item": "pristine", "score": 0.0}]
    ranking += [{"item": f"{f}_L{lv}", "score": s} for f in FAMILIES for lv, s in LEVELS.items()]
    (args.out / "method_scores.json").write_text(json.dumps({"ranking": ranking}, indent=2) + "\n")
    print(f"{len(rows)} images of {len(sources)} photos -> {args.out / 'manifest.csv'}")


if __name__ == "__main__":
    main()
