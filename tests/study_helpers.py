"""Tiny studies for the tests of perceptiq.study: a few random PNGs and their pair list."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image

METHODS = ("A", "B", "C")


def make_images(folder: Path, inputs: int = 2, methods: tuple[str, ...] = METHODS, size=(12, 8)) -> Path:
    """``folder/img/x<i>_<method>.png`` (random pixels, ``size`` = (width, height)) and ``folder/pairs.csv``
    holding every method pair of every input. Returns the pairs file."""
    rng = np.random.default_rng(0)
    images = folder / "img"
    images.mkdir(parents=True, exist_ok=True)
    rows = ["image_a,image_b"]
    for i in range(inputs):
        for m in methods:
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(images / f"x{i}_{m}.png")
        rows += [f"x{i}_{a}.png,x{i}_{b}.png" for a, b in combinations(methods, 2)]
    pairs = folder / "pairs.csv"
    pairs.write_text("\n".join(rows) + "\n")
    return pairs
