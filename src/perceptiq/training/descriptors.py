"""Training a head on a fixed image descriptor: compute ``model.features`` once per image, cache it.

Models whose first stage is a fixed, parameter-free descriptor (e.g. ``nss_mlp``) train only their head,
so a run needs each image's descriptor once, not once per epoch. With ``data.descriptor_cache`` set, the
trainer computes ``model.features(image)`` for every training and validation image (whole image; no
random crop or flip) and the batches carry descriptors instead of pixels; such models accept a
descriptor batch (B, D) in ``forward``. Augmentation uses fixed ``views`` instead
(:data:`perceptiq.functional.patches.IMAGE_VIEWS`: mirror image, corner crops): the descriptor of each
view is cached too, for models whose ``features(images, view)`` takes a view and whose ``view_id(view)``
names it (with its parameters, e.g. the crop size).

The cache is a folder of one ``.npy`` per image and view, named by a hash of the model's
``descriptor_id``, the image's absolute path, size and modification time and the view id: runs
(cross-validation folds, the final fit, a resumed run) share it, an edited image or a changed
descriptor is recomputed, and an interrupted computation resumes where it stopped (files are written
atomically).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from perceptiq.errors import DataFileError, InputError, PerceptiqError
from perceptiq.functional.patches import IMAGE_VIEWS
from perceptiq.io.images import read_image
from perceptiq.models import QualityModel

__all__ = ["descriptor_id", "cache_key", "cached_descriptors"]

_log = logging.getLogger("perceptiq.training")


def descriptor_id(model: QualityModel) -> str:
    """The model's ``descriptor_id`` (identifies what ``features`` computes); a clear error if it has none."""
    ident = getattr(model, "descriptor_id", None)
    if not isinstance(ident, str) or not callable(getattr(model, "features", None)):
        raise InputError(
            f"data.descriptor_cache needs a model with a fixed descriptor (features() and descriptor_id); "
            f"{type(model).__name__} has none"
        )
    return ident


def cache_key(ident: str, path: str | Path, view: str = "full") -> str:
    """File name of one image's cached descriptor: hash of the descriptor id, path, size, mtime and view
    id (``full`` for the whole image)."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError as err:
        raise DataFileError(path, f"cannot read the image: {err.strerror or err}") from None
    text = f"{ident}\n{resolved}\n{stat.st_size}\n{stat.st_mtime_ns}"
    if view != "full":
        text += f"\n{view}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest() + ".npy"


@torch.no_grad()
def cached_descriptors(
    model: QualityModel,
    paths: Sequence[str],
    cache_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    views: Sequence[str] | None = None,
) -> torch.Tensor:
    """Descriptors float64 of the images, from the cache or computed (and stored) now.

    Returns (N, D) of the whole images when ``views`` is None, else (N, len(views), D) in its order.

    Raises:
        DataFileError: an image cannot be read or described (the message names the file); descriptors
            computed before it stay cached, so a rerun continues from there.
    """
    ident = descriptor_id(model)
    names = ["full"] if views is None else list(views)
    unknown = [v for v in names if v not in IMAGE_VIEWS]
    if unknown or not names:
        raise InputError(f"descriptor views must be among {', '.join(IMAGE_VIEWS)}, got {names}")
    if names != ["full"] and not callable(getattr(model, "view_id", None)):
        raise InputError(f"{type(model).__name__} describes whole images only (it has no view_id)")
    tags = ["full" if v == "full" else model.view_id(v) for v in names]
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = [[folder / cache_key(ident, p, tag) for tag in tags] for p in paths]
    missing = [k for k, row in enumerate(files) if not all(f.exists() for f in row)]
    if missing:
        _log.info("computing the descriptors of %d images (cache %s)", len(missing), folder)
        was_training = model.training
        model.eval()
        for k in tqdm(missing, desc="descriptors", unit="img", disable=not progress):
            image = None
            for view, file in zip(names, files[k], strict=True):
                if file.exists():
                    continue
                try:
                    image = read_image(paths[k], device=device) if image is None else image
                    value = model.features(image) if view == "full" else model.features(image, view=view)
                except DataFileError:
                    raise
                except PerceptiqError as err:
                    raise DataFileError(paths[k], f"cannot compute the descriptor: {err}") from None
                tmp = file.with_name(file.name + ".tmp.npy")
                np.save(tmp, value.double().cpu().numpy().reshape(-1))
                os.replace(tmp, file)
        model.train(was_training)
    values = torch.from_numpy(np.stack([np.stack([np.load(f) for f in row]) for row in files]))
    return values[:, 0] if views is None else values
