"""Write synthetic severity ladders of pristine photos for the default model's calibration runs.

Each chosen photo of ../shared/data/pristine_natural (of the rows with at least ``--min-side`` px on the
short side, every ``--every``-th from the ``--offset``-th) is written as PNG together with levels 1, 3
and 5 of the ``--families`` ladders of :data:`perceptiq.data.ladders.SEVERITIES` (seeded; default
Gaussian noise, JPEG and Gaussian blur, the ladders of perceptiq_nr v1). Different offsets give disjoint
photos: perceptiq_nr v2 trains on offset 0 and checks the distortion order on offsets 1 and 2. The
manifest has no MOS; its ``method`` column names the rung (``pristine``, ``gaussian_noise_L3``, ...) and
``method_scores.json`` ranks the rungs in the format of ``perceptiq rank --json``: pristine 0, then
-1 / -2 / -3 for levels 1 / 3 / 5 of every family (families are not calibrated against each other; equal
levels count as ties). Output goes to an ignored folder: the photos are shared data, never committed.

Usage: ``python scripts/make_synthetic_ladders.py [--out .cache/synthetic_ladders] [--every 3] [--offset 0]
[--families gaussian_noise jpeg gaussian_blur]``. Beside the training manifest, ``ladders.csv`` names
each image's ``photo``, ``family`` and ``level`` (0 for the photo itself).
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
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--min-side", type=int, default=256)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=sorted(SEVERITIES))
    args = parser.parse_args()
    args.out = args.out.resolve()  # the manifests hold absolute paths: other manifests include their rows
    sources = pd.read_csv(PRISTINE / "manifest.csv")
    sources = sources[sources[["width", "height"]].min(axis=1) >= args.min_side].iloc[
        args.offset :: args.every
    ]
    rows = []
    for k, relative in enumerate(tqdm(sources["path"], desc="ladders", unit="photo")):
        image = read_image(PRISTINE / relative)
        stem = Path(relative).stem
        folder = args.out / "images"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{k:03d}_{stem}.png"
        save_image(image, path)
        rows.append({"image": str(path), "method": "pristine", "split": "train", "photo": f"{k:03d}_{stem}",
                     "family": "", "level": 0})  # fmt: skip
        for family in args.families:
            for level in LEVELS:
                seed = derive_seed(0, k, family)
                distorted = distort(image, family, SEVERITIES[family][level - 1], seed=seed)
                path = folder / f"{k:03d}_{stem}_{family}_L{level}.png"
                save_image(distorted, path)
                rows.append({"image": str(path), "method": f"{family}_L{level}", "split": "train",
                             "photo": f"{k:03d}_{stem}", "family": family, "level": level})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame[["image", "method", "split"]].to_csv(args.out / "manifest.csv", index=False)
    frame[["image", "photo", "family", "level"]].to_csv(args.out / "ladders.csv", index=False)
    ranking = [{"item": "pristine", "score": 0.0}]
    ranking += [{"item": f"{f}_L{lv}", "score": s} for f in args.families for lv, s in LEVELS.items()]
    (args.out / "method_scores.json").write_text(json.dumps({"ranking": ranking}, indent=2) + "\n")
    print(f"{len(rows)} images of {len(sources)} photos -> {args.out / 'manifest.csv'}")


if __name__ == "__main__":
    main()
