"""Regenerate the synthetic example predictions in examples/ (seeded; no real data involved).

300 items with a latent quality in [1, 5]; MOS = quality + rater noise (with a per-item MOS std);
model A predicts a logistic function of quality with small noise, model B with larger noise. The
predictions are on a different scale than MOS on purpose, as real model outputs are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    rng = np.random.default_rng(2025)
    n = 300
    quality = rng.uniform(1, 5, n)
    mos = np.clip(quality + rng.normal(0, 0.25, n), 1, 5)
    mos_std = rng.uniform(0.4, 1.0, n)
    ids = [f"img_{i:04d}.png" for i in range(n)]
    a = 1 / (1 + np.exp(-(quality - 3) * 1.2)) + rng.normal(0, 0.05, n)
    b = 1 / (1 + np.exp(-(quality - 3) * 1.2)) + rng.normal(0, 0.12, n)
    OUT.mkdir(exist_ok=True)
    truth = pd.DataFrame({"id": ids, "mos": mos.round(4), "mos_std": mos_std.round(4)})
    truth.to_csv(OUT / "mos.csv", index=False)
    pd.DataFrame({"id": ids, "score": a.round(5)}).to_csv(OUT / "predictions.csv", index=False)
    pd.DataFrame({"id": ids, "score": b.round(5)}).to_csv(OUT / "predictions_b.csv", index=False)


if __name__ == "__main__":
    main()
