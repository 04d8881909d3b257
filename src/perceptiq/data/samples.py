"""Sample images any fresh install can make: public-domain photos bundled with scikit-image, plus
graded distortions of each, with a manifest pairing every distorted image with its reference.

Sources (all shipped inside scikit-image, no download): ``astronaut`` (NASA, public domain),
``chelsea`` (Stefan van der Walt, CC0), ``coffee`` (Rachel Michetti, CC0), ``rocket`` (NASA/SpaceX,
public domain).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from perceptiq.data.distortions import LADDERS, distort
from perceptiq.io.images import save_image

__all__ = ["SAMPLE_PHOTOS", "write_samples"]

SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def _photo(name: str) -> torch.Tensor:
    import skimage.data

    array = getattr(skimage.data, name)()
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)


def write_samples(
    directory: str | Path,
    *,
    photos: tuple[str, ...] = SAMPLE_PHOTOS,
    distortions: tuple[str, ...] = tuple(LADDERS),
) -> pd.DataFrame:
    """Write ``reference/<photo>.png``, ``distorted/<photo>_<distortion>_<k>.png`` and ``manifest.csv``.

    Level k = 1, 2, 3 is mild to strong (:data:`perceptiq.data.distortions.LADDERS`). The manifest has
    columns image, ref (paths relative to ``directory``), photo, distortion, level, severity.
    """
    directory = Path(directory)
    (directory / "reference").mkdir(parents=True, exist_ok=True)
    (directory / "distorted").mkdir(parents=True, exist_ok=True)
    rows = []
    for photo in photos:
        ref = _photo(photo)
        ref_path = Path("reference") / f"{photo}.png"
        save_image(ref, directory / ref_path)
        for name in distortions:
            for k, level in enumerate(LADDERS[name], start=1):
                out = Path("distorted") / f"{photo}_{name}_{k}.png"
                save_image(distort(ref, name, level, seed=k), directory / out)
                rows.append(
                    {
                        "image": str(out),
                        "ref": str(ref_path),
                        "photo": photo,
                        "distortion": name,
                        "level": level,
                        "severity": k,
                    }
                )
    manifest = pd.DataFrame(rows)
    manifest.to_csv(directory / "manifest.csv", index=False)
    return manifest
