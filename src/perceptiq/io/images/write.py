"""Write float images in [0, 1] to files: 8-bit through Pillow, 16-bit PNG written here."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images.decode import PNG_SIGNATURE, PathLike

__all__ = ["save_image"]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _encode_png16(samples: np.ndarray) -> bytes:
    """Encode (H, W, C) uint16 samples, C in 1..4, as a 16-bit PNG (PNG spec, ISO/IEC 15948, sec. 11).

    Pillow cannot write 16-bit colour PNGs and torchvision's encoder takes only uint8, so the few
    chunks are written here with zlib: IHDR (colour type 0/4/2/6, no interlace), one IDAT of
    filter-type-0 rows of big-endian samples, IEND.
    """
    height, width, c = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = np.ascontiguousarray(samples, dtype=">u2").reshape(height, width * c).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"".join(
        [
            PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _as_hwc(image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise InputError(f"image must be a torch.Tensor, got {type(image).__name__}")
    x = image.detach()
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise InputError(f"save_image writes one image; got a batch of {x.shape[0]}")
        x = x[0]
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3 or x.shape[0] not in (1, 2, 3, 4):
        raise InputError(
            f"image must have shape (C, H, W) or (1, C, H, W) with C in 1..4, got {tuple(image.shape)}"
        )
    if not x.is_floating_point():
        raise InputError(f"image must be a float tensor in [0, 1], got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise InputError("image holds NaN or infinite values")
    return x.to("cpu", torch.float64).clamp(0.0, 1.0).permute(1, 2, 0)


def save_image(image: torch.Tensor, path: PathLike, *, bits: Literal[8, 16] = 8, quality: int = 95) -> None:
    """Write a float image in [0, 1] (values outside are clipped) to ``path``; format from the suffix.

    Args:
        image: (C, H, W), (1, C, H, W) or (H, W) with C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
        path: destination; the folder must exist.
        bits: 8 (any format Pillow writes; samples ``round(255 x)``) or 16 (PNG only; ``round(65535 x)``).
        quality: JPEG/WebP quality (ignored by lossless formats).

    Raises:
        InputError: bad tensor or ``bits``.
        DataFileError: the file cannot be written (missing folder, unknown suffix, ...).
    """
    hwc = _as_hwc(image)
    p = Path(path)
    if bits not in (8, 16):
        raise InputError(f"bits must be 8 or 16, got {bits!r}")
    if bits == 16 and p.suffix.lower() != ".png":
        raise InputError(f"16-bit output is written as PNG; {p.name!r} does not end in .png")
    try:
        if bits == 16:
            p.write_bytes(_encode_png16(np.rint(hwc.numpy() * 65535.0).astype(np.uint16)))
            return
        arr = np.rint(hwc.numpy() * 255.0).astype(np.uint8)
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(p, quality=quality)
    except (OSError, ValueError, KeyError) as err:
        raise DataFileError(p, f"cannot write image ({type(err).__name__}: {err})") from err
