"""``perceptiq score --engine ray``: the batch runner of :mod:`perceptiq.scoring` as a Ray Data pipeline.

The pipeline (Ray Data, https://docs.ray.io/en/latest/data/):

1. the driver lists the inputs as the one-machine runner does
   (:func:`perceptiq.io.images.list_sources`), opens the output and, on resume, drops what is
   already scored (:func:`perceptiq.scoring.plan_run`);
2. CPU tasks read and decode each image (and its reference) with perceptiq's own reader
   (:func:`perceptiq.io.images.load_source`: the same decoding and size caps, so the same values as
   one machine; not ``ray.data.read_images``, which resizes and drops 16-bit, alpha and EXIF handling);
3. an actor pool (``map_batches`` with a callable class and ``ActorPoolStrategy``) scores them: each
   actor builds its :class:`~perceptiq.scoring.Scorer` once from a :class:`~perceptiq.scoring.ScorerSpec`
   and turns each batch into rows with :func:`perceptiq.scoring.score_items` (same rows, same error
   rows as one machine);
4. the driver writes each batch of rows as a Parquet shard beside the output
   (:class:`perceptiq.io.results.ShardStore`, ``<output>.shards/``) as it arrives, then the single
   output file (rows in input order) through the one-machine writer, and removes the shards.

A killed run loses at most the batches in flight: ``--resume`` reads the whole shards and the
output, skips every image with a score in either, and the final file holds each image once.

Pool sizing (:func:`pool_size`): a quarter of the cluster's CPUs (at least one) is left to the decode
tasks; the actors share the rest, fractionally when there are more actors than CPUs (each actor's
torch uses ``max(1, floor(cpus))`` threads), so read tasks are never starved (two 1-CPU actors on 2
cores would hold every CPU and the pipeline would wait forever for decoded images).
"""

from __future__ import annotations

import collections
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perceptiq.errors import DataFileError, InputError, PerceptiqError
from perceptiq.io.images import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    Source,
    is_url,
    load_source,
)
from perceptiq.io.results import SHARDS_SUFFIX, ShardStore, image_key
from perceptiq.scoring import Scorer, ScorerSpec, ScoreSummary, plan_run, record_rows, score_items

__all__ = ["RayOptions", "PoolSize", "pool_size", "require_ray", "start_ray", "score_files_ray"]

_RAY_MISSING = "--engine ray needs Ray Data: pip install 'perceptiq[scale]' (installs ray[data])"
_INT_COLUMNS = ("height", "width", "malformed")
_DECODE_MEMORY = 512 * 2**20
"""Memory a decode task reserves (a scheduling hint). Also keeps the decode stage out of the actors: Ray
Data fuses a task stage into the next actor stage when their resources are equal, and then the actors
decode too, one batch after the other, instead of CPU tasks decoding beside them."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray pipeline runs.

    Attributes:
        address: a running cluster (``ray start --head`` prints it; ``auto`` finds the local one);
            None starts Ray inside this process on this machine's CPUs (and GPUs).
        actors: scoring actors (None: :func:`pool_size`'s default).
        gpus_per_actor: GPUs each actor holds (None: 1 when scoring on CUDA, else 0); a fraction
            shares a GPU between actors.
        cpus_per_actor: CPUs each actor holds (None: :func:`pool_size`'s default).
        batch_size: images per decode task batch and per scoring batch (an integer, as Ray asks for
            on GPUs).
    """

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float | None = None
    batch_size: int = 8


@dataclass(frozen=True)
class PoolSize:
    """The actor pool: how many actors and what each holds; ``threads`` is its torch thread count."""

    actors: int
    cpus: float
    gpus: float
    threads: int


def pool_size(
    total_cpus: float,
    total_gpus: float,
    *,
    cuda: bool,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
    gpus_per_actor: float | None = None,
) -> PoolSize:
    """Size the actor pool so that decode tasks always keep CPUs.

    ``reserve = max(1, floor(total_cpus / 4))`` CPUs stay free for decoding. On CUDA each actor holds
    ``gpus_per_actor`` GPUs (default 1) and by default there is one actor per GPU share and 1 CPU each
    (less when the CPUs outside the reserve are fewer). On the CPU the default is
    ``max(1, (total_cpus - reserve) // 2)`` actors sharing ``total_cpus - reserve`` CPUs. An explicit
    ``cpus_per_actor`` larger than the CPUs outside the reserve allow is refused.
    """
    if actors is not None and actors < 1:
        raise InputError(f"--actors must be >= 1, got {actors}")
    reserve = max(1.0, math.floor(total_cpus / 4))
    usable = max(total_cpus - reserve, 0.0)
    if usable <= 0:
        raise InputError(
            f"the Ray cluster has {total_cpus:g} CPU(s): at least 2 are needed (decoding and scoring)"
        )
    gpus = gpus_per_actor if gpus_per_actor is not None else (1.0 if cuda else 0.0)
    if gpus < 0 or (cuda and gpus == 0):
        raise InputError(f"--gpus-per-actor must be > 0 when scoring on CUDA, got {gpus:g}")
    if cuda and gpus > total_gpus:
        raise InputError(f"--gpus-per-actor {gpus:g}: the Ray cluster has {total_gpus:g} GPU(s)")
    if actors is None:
        actors = max(1, int(total_gpus // gpus)) if cuda else max(1, int(usable // 2))
    if cuda and actors * gpus > total_gpus + 1e-9:
        raise InputError(f"{actors} actors x {gpus:g} GPU(s) each: the Ray cluster has {total_gpus:g} GPU(s)")
    if cpus_per_actor is None:
        cpus = min(1.0, usable / actors) if cuda else usable / actors
    else:
        cpus = cpus_per_actor
        if cpus <= 0 or actors * cpus > usable + 1e-9:
            raise InputError(
                f"{actors} actors x {cpus:g} CPUs leave no CPU to decode on (at most {usable:g} CPUs for "
                f"actors of {total_cpus:g}): give fewer actors or fewer --cpus-per-actor"
            )
    cpus = math.floor(cpus * 1000) / 1000  # Ray resolves resources to 1e-4
    return PoolSize(actors=actors, cpus=cpus, gpus=gpus, threads=max(1, math.floor(cpus)))


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError(_RAY_MISSING) from None
    return ray


def start_ray(address: str | None = None) -> Any:
    """Start Ray here (no ``address``) or join the cluster at ``address``; a no-op when already started.

    Started here: on all of this machine's CPUs, no dashboard, worker logs not copied to this
    terminal. Returns the ``ray`` module.
    """
    ray = require_ray()
    for handler in logging.getLogger("ray.data").handlers:  # terminal: errors only (ray-data.log: all)
        if "File" not in type(handler).__name__:
            handler.setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\.data")
    ray.data.DataContext.get_current().enable_progress_bars = False  # perceptiq shows its own
    if ray.is_initialized():
        return ray
    settings: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "ignore_reinit_error": True,
        "logging_level": logging.WARNING,
    }
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, **settings)
        else:
            settings.pop("include_dashboard")
            ray.init(address=address, **settings)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = "start Ray here" if address is None else f"join the Ray cluster at {address}"
        raise InputError(f"cannot {where}: {str(err).splitlines()[0]}") from None
    return ray


def _decode_batch(
    batch: dict[str, np.ndarray], *, max_pixels: int | None, max_bytes: int | None
) -> dict[str, np.ndarray]:
    """Ray task: decode the images (and references) of a batch; pixels travel as float32 bytes."""
    out: dict[str, list[object]] = {
        k: [] for k in ("pixels", "shape", "error", "ref_pixels", "ref_shape", "ref_error")
    }
    for index, source, ref in zip(batch["index"], batch["source"], batch["ref_abs"], strict=True):
        for prefix, name in (("", source), ("ref_", ref)):
            caps = {} if prefix else {"max_pixels": max_pixels, "max_bytes": max_bytes}  # refs: read_image's
            item = load_source(int(index), str(name), **caps) if name else None
            ok = item is not None and item.ok
            pixels = item.image[0].numpy() if ok else np.zeros((0, 0, 0), np.float32)
            out[f"{prefix}pixels"].append(pixels.tobytes())
            out[f"{prefix}shape"].append(np.asarray(pixels.shape, np.int64))
            out[f"{prefix}error"].append("" if item is None or ok else item.error.problem)
    columns = {k: np.asarray(batch[k]) for k in ("index", "source", "ref", "ref_abs")}
    for key, values in out.items():
        columns[key] = np.stack(values) if key.endswith("shape") else np.asarray(values, dtype=object)
    return columns


def _tensor(data: bytes, shape: np.ndarray) -> Any:
    import torch

    array = np.frombuffer(data, dtype=np.float32).reshape(tuple(int(s) for s in shape)).copy()
    return torch.from_numpy(array)[None]


def _source(text: str) -> Source:
    return text if is_url(text) else Path(text)


class _ScoreActor:
    """Ray actor: builds the scorer once, then turns batches of decoded images into result rows."""

    def __init__(self, spec: ScorerSpec, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.scorer = spec.build()

    def __call__(self, batch: dict[str, np.ndarray]) -> pd.DataFrame:
        device = self.scorer.device
        items: list[LoadedImage] = []
        references: dict[Path, Path | None] = {}
        decoded: dict[Path, Any] = {}
        for i, index in enumerate(batch["index"]):
            path = _source(str(batch["source"][i]))
            error = str(batch["error"][i])
            if error:
                items.append(LoadedImage(int(index), path, None, DataFileError(path, error)))  # type: ignore[arg-type]
                continue
            image = _tensor(batch["pixels"][i], batch["shape"][i]).to(device)
            items.append(LoadedImage(int(index), path, image, None))  # type: ignore[arg-type]
            ref = str(batch["ref"][i])
            if ref:
                references[path] = _source(ref)  # type: ignore[assignment]
                ref_error = str(batch["ref_error"][i])
                decoded[path] = (
                    DataFileError(ref, ref_error)
                    if ref_error
                    else _tensor(batch["ref_pixels"][i], batch["ref_shape"][i]).to(device)
                )
        rows = score_items(self.scorer, items, references, decoded)
        return pd.DataFrame(rows, columns=list(self.scorer.columns))


def _clean(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as the one-machine runner makes them: missing values None, counts as int."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    for row in rows:
        for key in _INT_COLUMNS:
            if row.get(key) is not None:
                row[key] = int(row[key])
    return rows


def score_files_ray(
    paths: Iterable[Source],
    spec: ScorerSpec,
    *,
    references: dict[Path, Path | None] | None = None,
    output: Path | None = None,
    resume: bool = False,
    options: RayOptions = RayOptions(),
    max_pixels: int | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    unsupported_files: Iterable[Source] = (),
    progress: Callable[[Iterator[int], int], Iterator[int]] | None = None,
    shards: Path | None = None,
    scorer: Scorer | None = None,
) -> ScoreSummary:
    """Score ``paths`` with the scorer of ``spec`` on Ray, writing what ``score_files`` writes.

    The driver builds the scorer once on its CPU (or takes ``scorer``, built from ``spec`` already) to
    check the options and record the settings; each actor builds its own on ``spec.device``. Shards
    go to ``shards`` (default ``<output>.shards``; without an output, a temporary folder). Returns a
    :class:`~perceptiq.scoring.ScoreSummary` whose ``rows`` are this run's rows in input order.
    """
    import tempfile

    if options.batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {options.batch_size}")
    driver = scorer if scorer is not None else spec.build(device="cpu")
    columns = driver.columns
    temp = None
    if shards is None and output is None:
        temp = tempfile.TemporaryDirectory(prefix="perceptiq-shards-")
        shards = Path(temp.name)
    store = ShardStore(shards or Path(str(output) + SHARDS_SUFFIX), columns)
    earlier = store.read()
    if not resume and not earlier.empty:
        raise InputError(f"{store.folder} holds rows of an interrupted run: pass --resume to continue it")
    plan = plan_run(
        paths, driver, output=output, resume=resume, unsupported_files=unsupported_files, earlier=earlier
    )
    if references is not None:
        references = {Path(os.path.abspath(k)): v for k, v in references.items()}
    if plan.pending:
        _run_pipeline(plan.pending, spec, references, store, options, max_pixels, max_bytes, progress)

    def in_input_order(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        last = len(plan.order)
        return sorted(rows, key=lambda row: plan.order.get(image_key(str(row["image"])), last))  # stable

    summary = plan.summary
    record_rows(summary, None, in_input_order(_clean(store.read(run=store.run))))
    if plan.writer is not None:
        plan.writer.append(in_input_order(_clean(store.read())))
        plan.writer.finalize()
    store.remove()
    if temp is not None:
        temp.cleanup()
    return summary


def _run_pipeline(
    pending: list[Source],
    spec: ScorerSpec,
    references: dict[Path, Path | None] | None,
    store: ShardStore,
    options: RayOptions,
    max_pixels: int | None,
    max_bytes: int | None,
    progress: Callable[[Iterator[int], int], Iterator[int]] | None,
) -> None:
    """Decode tasks, then the actor pool; each batch of rows becomes a shard as it reaches the driver."""
    ray = start_ray(options.address)
    resources = ray.cluster_resources()
    size = pool_size(
        float(resources.get("CPU", 0)),
        float(resources.get("GPU", 0)),
        cuda=spec.device.startswith("cuda"),
        actors=options.actors,
        cpus_per_actor=options.cpus_per_actor,
        gpus_per_actor=options.gpus_per_actor,
    )
    items = []
    for index, source in enumerate(pending):
        ref = references.get(source) if references is not None and not is_url(source) else None
        ref_abs = "" if ref is None else os.path.abspath(ref)  # read there; the row names it as given
        items.append(
            {
                "index": index,
                "source": str(source),
                "ref": "" if ref is None else str(ref),
                "ref_abs": ref_abs,
            }
        )
    blocks = max(1, min(math.ceil(len(items) / options.batch_size), 10_000))
    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    dataset = dataset.map_batches(
        _decode_batch,
        fn_kwargs={"max_pixels": max_pixels or DEFAULT_MAX_PIXELS, "max_bytes": max_bytes},
        batch_size=options.batch_size,
        batch_format="numpy",
        num_cpus=1,
        memory=_DECODE_MEMORY,
    )
    dataset = dataset.map_batches(
        _ScoreActor,
        fn_constructor_kwargs={"spec": spec, "threads": size.threads},
        batch_size=options.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=size.actors),
        num_cpus=size.cpus,
        num_gpus=size.gpus,
    )

    def stream() -> Iterator[int]:
        for frame in dataset.iter_batches(batch_size=None, batch_format="pandas"):
            store.write(frame)
            yield from range(len(frame))

    rows = stream() if progress is None else progress(stream(), len(pending))
    try:
        collections.deque(rows, maxlen=0)  # runs the stream; each row advances the progress bar
    except PerceptiqError:
        raise
    except ray.exceptions.RayError as err:
        cause = str(getattr(err, "cause", None) or err).strip().splitlines()
        raise InputError(f"the Ray job failed: {cause[-1] if cause else type(err).__name__}") from None
