"""Training a head on a fixed image descriptor: compute ``model.features`` once per image, cache it.

Models whose first stage is a fixed, parameter-free descriptor (e.g. ``nss_mlp``) train only their head,
so a run needs each image's descriptor once, not once per epoch. With ``data.descriptor_cache`` set, the
trainer computes ``model.features(image)`` for every training and validation image (whole image, no
crop or flip: the descriptor has no parameters to regularise) and the batches carry descriptors instead
of pixels; such models accept a descriptor batch (B, D) in ``forward``.

The cache is a folder of one ``.npy`` per image, named by a hash of the model's ``descriptor_id``, the
image's absolute path, size and modification time: runs (cross-validation folds, the final fit, a
resumed run) share it, an edited image or a changed descriptor is recomputed, and an interrupted
computation resumes where it stopped (files are written atomically).
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


def cache_key(ident: str, path: str | Path) -> str:
    """File name of one image's cached descriptor: hash of the descriptor id, path, size and mtime."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError as err:
        raise DataFileError(path, f"cannot read the image: {err.strerror or err}") from None
    text = f"{ident}\n{resolved}\n{stat.st_size}\n{stat.st_mtime_ns}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest() + ".npy"


@torch.no_grad()
def cached_descriptors(
    model: QualityModel,
    paths: Sequence[str],
    cache_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> torch.Tensor:
    """Descriptors (N, D) float64 of the images, from the cache or computed (and stored) now.

    Raises:
        DataFileError: an image cannot be read or described (the message names the file); descriptors
            computed before it stay cached, so a rerun continues from there.
    """
    ident = descriptor_id(model)
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / cache_key(ident, p) for p in paths]
    missing = [k for k, f in enumerate(files) if not f.exists()]
    if missing:
        _log.info("computing %d image descriptors (cache %s)", len(missing), folder)
        was_training = model.training
        model.eval()
        for k in tqdm(missing, desc="descriptors", unit="img", disable=not progress):
            try:
                value = model.features(read_image(paths[k], device=device))
            except DataFileError:
                raise
            except PerceptiqError as err:
                raise DataFileError(paths[k], f"cannot compute the descriptor: {err}") from None
            tmp = files[k].with_name(files[k].name + ".tmp.npy")
            np.save(tmp, value.double().cpu().numpy().reshape(-1))
            os.replace(tmp, files[k])
        model.train(was_training)
    return torch.from_numpy(np.stack([np.load(f) for f in files]))
