"""Decode many image files in worker threads, in input order, a broken file never stopping the batch.

:func:`load_images` reads and decodes each file with the readers of :mod:`.decode` (same options, same
result as :func:`~perceptiq.io.images.decode.read_image`); on a CUDA device, consecutive JPEGs are left
to one batched nvJPEG call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images.decode import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    Alpha,
    Channels,
    PathLike,
    _cpu_samples,
    _cuda_jpeg_usable,
    _decode_gpu,
    _finish,
    _open,
    _Options,
    _options,
    _Pending,
    _read_bytes,
    choose_decoder,
)

__all__ = ["LoadedImage", "load_images"]


@dataclass(frozen=True)
class LoadedImage:
    """One item of :func:`load_images`: the tensor, or the error that stopped it.

    Attributes:
        index: position of the item in the input sequence.
        path: the file.
        image: float tensor (1, C, H, W) in [0, 1], or None when decoding failed.
        error: the :class:`~perceptiq.errors.DataFileError` raised for this file, or None.
    """

    index: int
    path: Path
    image: torch.Tensor | None
    error: DataFileError | None

    @property
    def ok(self) -> bool:
        """True when the image was decoded."""
        return self.error is None


def _load_one(index: int, path: Path, opts: _Options, cuda_jpeg: bool) -> LoadedImage | _Pending:
    """Worker task: read and decode one file, or leave a JPEG to the GPU batch."""
    try:
        data = _read_bytes(path, opts.max_bytes)
        img, info = _open(data, path, opts.max_pixels)
        if choose_decoder(info, opts.device, cuda_jpeg=cuda_jpeg) == "torchvision_jpeg":
            return _Pending(index, path, data, info)
        image = _finish(_cpu_samples(img, info, data, path), info.orientation, opts)
    except DataFileError as err:
        return LoadedImage(index, path, None, err)
    return LoadedImage(index, path, image, None)


def _resolve_pending(items: list[LoadedImage | _Pending], opts: _Options) -> list[LoadedImage]:
    pending = [it for it in items if isinstance(it, _Pending)]
    decoded = iter(_decode_gpu(pending, opts) if pending else [])
    done: list[LoadedImage] = []
    for it in items:
        if isinstance(it, LoadedImage):
            done.append(it)
            continue
        out = next(decoded)
        if isinstance(out, DataFileError):
            done.append(LoadedImage(it.index, it.path, None, out))
        else:
            done.append(LoadedImage(it.index, it.path, out, None))
    return done


def load_images(
    paths: Iterable[PathLike],
    *,
    workers: int = 4,
    prefetch: int | None = None,
    gpu_batch: int = 16,
    channels: Channels = "rgb",
    alpha: Alpha = "white",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    gpu_jpeg: bool = True,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> Iterator[LoadedImage]:
    """Decode many files in worker threads and yield them in input order, errors included.

    A file that cannot be decoded does not stop the batch: its :class:`LoadedImage` carries the
    :class:`~perceptiq.errors.DataFileError` (``.error``) instead of a tensor. At most ``prefetch``
    files are decoded ahead of the consumer, so memory stays bounded on long lists. On a CUDA device,
    up to ``gpu_batch`` consecutive JPEGs are decoded in one batched nvJPEG call.

    Args:
        paths: files, in the order the results are wanted (a generator is consumed lazily).
        workers: decoding threads (0 decodes in the calling thread); Pillow, numpy and torch release
            the GIL while decoding, so threads scale on multi-core machines.
        prefetch: files in flight ahead of the consumer (default ``2 * workers + gpu_batch``).
        gpu_batch: JPEGs per nvJPEG call on CUDA (ignored on CPU).
        channels, alpha, max_pixels, dtype, device, gpu_jpeg, max_bytes: as in :func:`read_image`.

    Yields:
        One :class:`LoadedImage` per path, in input order.
    """
    opts = _options(channels, alpha, max_pixels, dtype, device, gpu_jpeg, max_bytes)
    if workers < 0:
        raise InputError(f"workers must be >= 0, got {workers}")
    if gpu_batch < 1:
        raise InputError(f"gpu_batch must be >= 1, got {gpu_batch}")
    cuda_jpeg = _cuda_jpeg_usable(opts)
    group = gpu_batch if cuda_jpeg else 1
    window = max(prefetch if prefetch is not None else 2 * workers + group, group, 1)
    items = ((i, Path(p)) for i, p in enumerate(paths))
    if workers == 0:
        return _load_serial(items, opts, cuda_jpeg, group)
    return _load_pooled(items, opts, cuda_jpeg, group, window, workers)


def _load_serial(
    items: Iterator[tuple[int, Path]], opts: _Options, cuda_jpeg: bool, group: int
) -> Iterator[LoadedImage]:
    chunk: list[LoadedImage | _Pending] = []
    for index, path in items:
        chunk.append(_load_one(index, path, opts, cuda_jpeg))
        if len(chunk) == group:
            yield from _resolve_pending(chunk, opts)
            chunk = []
    yield from _resolve_pending(chunk, opts)


def _load_pooled(
    items: Iterator[tuple[int, Path]],
    opts: _Options,
    cuda_jpeg: bool,
    group: int,
    window: int,
    workers: int,
) -> Iterator[LoadedImage]:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="perceptiq-decode")
    in_flight: deque[Future[LoadedImage | _Pending]] = deque()

    def fill() -> None:
        while len(in_flight) < window:
            nxt = next(items, None)
            if nxt is None:
                return
            in_flight.append(pool.submit(_load_one, nxt[0], nxt[1], opts, cuda_jpeg))

    try:
        fill()
        while in_flight:
            chunk = [in_flight.popleft().result() for _ in range(min(group, len(in_flight)))]
            fill()
            yield from _resolve_pending(chunk, opts)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
