"""Scoring many images with one metric or model, writing results as they come, resumable.

:func:`score_files` decodes images in worker threads, pairs each with its reference when the scorer
is full-reference, scores them, and appends one row per image to the output file right away
(flushed), so a killed run loses nothing already written. A broken image becomes a row with its
error and the run goes on; so does an image whose score is undefined (NaN, or an infinity the scorer
does not declare as a defined value): its row has no score and the error says why.

The ``image`` column holds absolute paths; an image named twice (relative and absolute path, or
through a symbolic link) is scored once, matched by its resolved path.

With ``resume=True`` images already scored in the output are skipped; a last line cut short by a
killed run is dropped first (that image is scored again), and at the end the file is rewritten
(atomically) without duplicate rows. Beside the output, ``<output>.meta.json`` records the scorer and
its options (metric or model name, options, weights, input policy); resuming with a different scorer
is refused.

Output formats by suffix: ``.csv``, ``.jsonl``, ``.parquet`` (rows are streamed to a ``.partial.jsonl``
beside it and the Parquet file is written at the end). JSON Lines are strict JSON: a non-finite
number (the ``inf`` PSNR of identical images) is written as ``null``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from perceptiq.errors import DataFileError, InputError, PerceptiqError
from perceptiq.functional.patches import InputPolicy, apply_policy
from perceptiq.io.images import DEFAULT_MAX_BYTES, IMAGE_EXTENSIONS, LoadedImage, load_images, read_image
from perceptiq.io.json_text import dumps, json_safe
from perceptiq.io.tables import read_table

__all__ = [
    "COLUMNS",
    "Scorer",
    "ScoreSummary",
    "ResultWriter",
    "pair_references",
    "score_files",
    "check_device",
    "metric_scorer",
    "model_scorer",
]

COLUMNS = ("image", "score", "error", "reference", "height", "width", "seconds", "scorer")
META_SUFFIX = ".meta.json"
"""Suffix added to the output's name for the sidecar recording the scorer (``scores.csv.meta.json``)."""


@dataclass
class Scorer:
    """A named function from images (B, C, H, W) (and references) to scores (B,).

    Attributes:
        name: what the output's ``scorer`` column says (metric or model name).
        fn: ``fn(images)`` or ``fn(images, references)``.
        needs_reference: full-reference scorer.
        policy: optional high-resolution policy applied around ``fn`` (tiles, patches, budget).
        device: where images are decoded and scored.
        settings: what determines the scores (metric/model, options, weights, policy), recorded
            beside the output and compared on resume.
        undefined_reason: why the scorer can return NaN (the error written for such an image).
        infinite_score: when set, an infinite score is a defined value (e.g. PSNR of identical
            images) and is kept; otherwise it becomes an error row.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    needs_reference: bool = False
    policy: InputPolicy | None = None
    device: str = "cpu"
    settings: dict[str, object] = field(default_factory=dict)
    undefined_reason: str | None = None
    infinite_score: str | None = None

    def __call__(self, images: torch.Tensor, references: torch.Tensor | None = None) -> torch.Tensor:
        if self.policy is not None and self.policy.mode != "full":
            return apply_policy(self.fn, images, self.policy, reference=references)
        return self.fn(images) if references is None else self.fn(images, references)


@dataclass
class ScoreSummary:
    """Counts of one run: images scored, skipped (resume) and failed, and the output file.

    ``unsupported_files`` lists the folder entries not read for their suffix (e.g. ``.heic``);
    ``notes`` holds what the run repaired or ignored (a torn last line dropped on resume).
    """

    output: Path | None
    scored: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    rows: list[dict[str, object]] = field(default_factory=list)
    unsupported_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def image_key(path: str | Path) -> str:
    """The key that identifies an image across runs: its resolved absolute path."""
    return str(Path(path).resolve())


class ResultWriter:
    """Appends rows to CSV/JSON Lines (Parquet via a streamed ``.partial.jsonl``), flushing each batch."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".jsonl", ".parquet"):
            raise InputError(f"{self.path}: output must end in .csv, .jsonl or .parquet")
        self.kind = suffix.lstrip(".")
        self.stream = self.path.with_suffix(".partial.jsonl") if self.kind == "parquet" else self.path
        self.meta = self.path.with_name(self.path.name + META_SUFFIX)
        if self.path.is_dir():
            raise DataFileError(
                self.path, "output is a folder; give a file name ending in .csv, .jsonl or .parquet"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.stream.open("a", encoding="utf-8"):
                pass
        except OSError as err:
            raise DataFileError(self.path, f"cannot write the output: {err.strerror or err}") from None

    def existing(self) -> pd.DataFrame:
        """Rows already written by earlier runs (final file and streamed partial rows)."""
        frames = []
        if self.path.exists() and self.path.stat().st_size > 0:
            frames.append(read_table(self.path) if self.kind != "jsonl" else _read_jsonl(self.path))
        if self.stream != self.path and self.stream.exists() and self.stream.stat().st_size > 0:
            frames.append(_read_jsonl(self.stream))
        for frame in frames:
            if "image" not in frame.columns:
                raise DataFileError(
                    self.path,
                    "has no 'image' column, so it is not a perceptiq score output "
                    f"(columns: {', '.join(map(str, frame.columns))}); choose another output file",
                )
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))

    def drop_torn_tail(self) -> str | None:
        """Cut a last line left incomplete by a killed run (no final newline); says what was cut."""
        path = self.stream
        if not path.exists() or path.stat().st_size == 0:
            return None
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return None
        keep = data.rfind(b"\n") + 1
        with path.open("r+b") as fh:
            fh.truncate(keep)
        torn = data[keep:].decode("utf-8", errors="replace")
        return f"{path}: dropped an incomplete last line left by an interrupted run ({torn[:60]!r})"

    def check_scorer(self, scorer: Scorer, rows: pd.DataFrame) -> None:
        """Refuse to continue an output written with other settings; record this run's settings."""
        wanted = json_safe(scorer.settings)
        if self.meta.exists() and not rows.empty:
            try:
                recorded = json.loads(self.meta.read_text(encoding="utf-8")).get("scorer")
            except (OSError, ValueError, AttributeError) as err:
                raise DataFileError(self.meta, f"unreadable scorer record ({err})") from None
            if recorded != wanted:
                raise InputError(
                    f"{self.path} was scored with {dumps(recorded)}, this run uses {dumps(wanted)}: "
                    "resume with the same scorer and options, or write to another output file"
                )
        elif not rows.empty and "scorer" in rows.columns:
            names = sorted(set(rows["scorer"].dropna().astype(str)))
            if names and names != [scorer.name]:
                raise InputError(
                    f"{self.path} was scored with {', '.join(names)}, this run uses {scorer.name}: "
                    "resume with the same scorer, or write to another output file"
                )
        try:
            self.meta.write_text(dumps({"scorer": wanted}, indent=2) + "\n", encoding="utf-8")
        except OSError as err:
            raise DataFileError(self.meta, f"cannot write: {err.strerror or err}") from None

    def append(self, rows: list[dict[str, object]]) -> None:
        if not rows:
            return
        try:
            if self.kind == "csv":
                header = not self.path.exists() or self.path.stat().st_size == 0
                frame = pd.DataFrame(rows, columns=list(COLUMNS))
                frame.to_csv(self.path, mode="a", header=header, index=False)
                return
            with self.stream.open("a", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(dumps(row) + "\n")
                fh.flush()
        except OSError as err:
            raise DataFileError(self.stream, f"cannot write results: {err.strerror or err}") from None

    def finalize(self) -> None:
        """Rewrite the output without duplicates (the last row of an image wins), atomically."""
        frame = self.existing()
        if frame.empty:
            return
        keys = frame["image"].astype(str).map(image_key)
        frame = frame[~keys.duplicated(keep="last")]
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            if self.kind == "csv":
                frame.to_csv(tmp, index=False)
            elif self.kind == "jsonl":
                lines = [dumps(row) + "\n" for row in frame.to_dict(orient="records")]
                tmp.write_text("".join(lines), encoding="utf-8")
            else:
                frame.to_parquet(tmp, index=False)
            tmp.replace(self.path)
        except OSError as err:
            raise DataFileError(self.path, f"cannot write results: {err.strerror or err}") from None
        if self.stream != self.path and self.stream.exists():
            self.stream.unlink()


def _read_jsonl(path: Path) -> pd.DataFrame:
    """Rows of a JSON Lines score file; a line that is not JSON is an error naming the line."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataFileError(path, f"line {number} is not valid JSON ({err.msg})") from None
    return pd.DataFrame(rows)


def pair_references(images: list[Path], ref: str | Path) -> dict[Path, Path | None]:
    """Reference of each image: same file name (or stem) in folder ``ref``, or a manifest's ``ref`` column.

    A manifest (CSV/TSV/JSONL/JSON/Parquet) has columns ``image`` and ``ref`` with paths relative to
    the manifest's folder (or absolute); images are matched by resolved path, else by file name.
    """
    ref = Path(ref)
    if not ref.exists():
        raise DataFileError(ref, "reference folder or manifest not found")
    out: dict[Path, Path | None] = {}
    if ref.is_dir():
        by_name = {p.name: p for p in ref.iterdir() if p.is_file()}
        by_stem = {p.stem: p for p in ref.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
        for img in images:
            out[img] = by_name.get(img.name) or by_stem.get(img.stem)
        return out
    frame = read_table(ref)
    missing = [c for c in ("image", "ref") if c not in frame.columns]
    if missing:
        raise DataFileError(
            ref, f"manifest lacks column(s) {missing}; columns are: {', '.join(frame.columns)}"
        )
    base = ref.parent
    by_path: dict[Path, Path] = {}
    by_name: dict[str, Path] = {}
    for image, reference in zip(frame["image"].astype(str), frame["ref"].astype(str), strict=True):
        resolved = (base / image).resolve()
        target = (base / reference).resolve()
        by_path[resolved] = target
        by_name.setdefault(Path(image).name, target)
    for img in images:
        out[img] = by_path.get(img.resolve()) or by_name.get(img.name)
    return out


def _row(scorer: Scorer, item: LoadedImage, **values: object) -> dict[str, object]:
    row = {c: None for c in COLUMNS}
    row.update(image=str(item.path), scorer=scorer.name, **values)
    return row


def _prepare(
    scorer: Scorer, item: LoadedImage, ref_path: Path | None
) -> tuple[torch.Tensor | None, dict | None]:
    """The reference tensor of ``item`` (None for NR), or an error row when it cannot be had."""
    image = item.image
    height, width = int(image.shape[-2]), int(image.shape[-1])
    if not scorer.needs_reference:
        return None, None
    if ref_path is None:
        return None, _row(
            scorer, item, error="no reference image found for this file", height=height, width=width
        )
    try:
        reference = read_image(ref_path, device=scorer.device)
    except DataFileError as err:
        return None, _row(
            scorer, item, error=f"reference {err}", reference=str(ref_path), height=height, width=width
        )
    if reference.shape != image.shape:
        ref_size = f"{reference.shape[-1]}x{reference.shape[-2]}"
        problem = f"size {width}x{height} differs from reference {ref_path} ({ref_size})"
        return None, _row(scorer, item, error=problem, reference=str(ref_path), height=height, width=width)
    return reference, None


def _run(scorer: Scorer, images: torch.Tensor, refs: torch.Tensor | None) -> torch.Tensor:
    with torch.inference_mode():
        return scorer(images, refs).reshape(-1).float().cpu()


def _score_batch(
    scorer: Scorer, items: list[LoadedImage], references: dict[Path, Path | None] | None
) -> list[dict[str, object]]:
    """Rows for ``items``: same-size images are scored as one batch; a failing batch is retried per image."""
    rows: dict[int, dict[str, object]] = {}
    groups: dict[tuple[int, ...], list[tuple[LoadedImage, torch.Tensor | None]]] = {}
    for item in items:
        ref_path = references.get(item.path) if references is not None else None
        reference, error_row = _prepare(scorer, item, ref_path)
        if error_row is not None:
            rows[item.index] = error_row
        else:
            groups.setdefault(tuple(item.image.shape), []).append((item, reference))
    for members in groups.values():
        start = time.perf_counter()
        try:
            images = torch.cat([m[0].image for m in members])
            refs = torch.cat([m[1] for m in members]) if scorer.needs_reference else None
            scores = _run(scorer, images, refs).tolist()
            seconds = (time.perf_counter() - start) / len(members)
            outcomes = [(*_checked(scorer, v), seconds) for v in scores]
        except (PerceptiqError, RuntimeError, ValueError):
            outcomes = [_score_single(scorer, item, reference) for item, reference in members]
        for (item, reference), (value, error, seconds) in zip(members, outcomes, strict=True):
            ref_path = references.get(item.path) if references is not None and reference is not None else None
            rows[item.index] = _row(
                scorer,
                item,
                score=value,
                error=error,
                reference=None if ref_path is None else str(ref_path),
                height=int(item.image.shape[-2]),
                width=int(item.image.shape[-1]),
                seconds=round(seconds, 4),
            )
    return [rows[item.index] for item in items]


def _score_single(
    scorer: Scorer, item: LoadedImage, reference: torch.Tensor | None
) -> tuple[float | None, str | None, float]:
    start = time.perf_counter()
    try:
        value = float(_run(scorer, item.image, reference)[0])
    except (PerceptiqError, RuntimeError, ValueError) as err:
        return None, f"{type(err).__name__}: {err}", time.perf_counter() - start
    return (*_checked(scorer, value), time.perf_counter() - start)


def _checked(scorer: Scorer, value: float) -> tuple[float | None, str | None]:
    """``(score, None)`` for a defined score, else ``(None, why)``: no NaN score without an error."""
    if math.isfinite(value) or (math.isinf(value) and scorer.infinite_score is not None):
        return value, None
    why = scorer.undefined_reason or "the scorer returned no finite value for this image"
    return None, f"score undefined ({value}): {why}"


def score_files(
    paths: Iterable[Path],
    scorer: Scorer,
    *,
    references: dict[Path, Path | None] | None = None,
    output: Path | None = None,
    resume: bool = False,
    workers: int = 2,
    batch_size: int = 8,
    max_pixels: int | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    unsupported_files: Iterable[Path] = (),
    progress: Callable[[Iterator[LoadedImage], int], Iterator[LoadedImage]] | None = None,
) -> ScoreSummary:
    """Score ``paths`` with ``scorer``; rows go to ``output`` as they are produced.

    Images are scored in batches of up to ``batch_size`` (same-size images stacked into one call);
    each batch's rows are appended and flushed before the next batch starts. Paths are written as
    absolute paths and an image named twice is scored once (see the module docstring). Files larger
    than ``max_bytes`` or not regular files become error rows. ``unsupported_files`` (folder entries
    not read for their suffix, :func:`perceptiq.io.images.scan_images`) are listed in the summary.
    Returns a :class:`ScoreSummary`; ``summary.rows`` holds this run's rows.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    unique: dict[str, Path] = {}
    for p in paths:
        unique.setdefault(image_key(p), Path(os.path.abspath(p)))
    if references is not None:
        references = {Path(os.path.abspath(k)): v for k, v in references.items()}
    writer = ResultWriter(output) if output is not None else None
    summary = ScoreSummary(output=output, unsupported_files=[str(p) for p in unsupported_files])
    if writer is not None and not resume and writer.existing().shape[0] > 0:
        raise InputError(f"{output} exists: pass --resume to continue it, or choose another output file")
    if writer is not None and resume:
        torn = writer.drop_torn_tail()
        if torn is not None:
            summary.notes.append(torn)
    if writer is not None:
        done = writer.existing()
        writer.check_scorer(scorer, done)
        ok = done[done["error"].isna()] if "error" in done.columns else done
        finished = {image_key(p) for p in ok["image"].astype(str)}
        summary.skipped = sum(key in finished for key in unique)
        unique = {key: p for key, p in unique.items() if key not in finished}
    paths = list(unique.values())
    loaded = load_images(
        paths,
        workers=workers,
        device=scorer.device,
        max_bytes=max_bytes,
        **({"max_pixels": max_pixels} if max_pixels else {}),
    )
    if progress is not None:
        loaded = progress(loaded, len(paths))
    batch: list[LoadedImage] = []
    for item in loaded:
        if not item.ok:
            problem = getattr(item.error, "problem", str(item.error))
            _record(summary, writer, [_row(scorer, item, error=problem)])
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            _record(summary, writer, _score_batch(scorer, batch, references))
            batch = []
    if batch:
        _record(summary, writer, _score_batch(scorer, batch, references))
    if writer is not None:
        writer.finalize()
    return summary


def _record(summary: ScoreSummary, writer: ResultWriter | None, rows: list[dict[str, object]]) -> None:
    for row in rows:
        if row["error"] is None:
            summary.scored += 1
        else:
            summary.failed += 1
            summary.failures.append((str(row["image"]), str(row["error"])))
    summary.rows.extend(rows)
    if writer is not None:
        writer.append(rows)


def check_device(device: str) -> str:
    """``device`` if usable here, else a clear error (no silent CPU fallback)."""
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise InputError(f"unknown device {device!r}: {err}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available on this machine")
    return str(dev)


def metric_scorer(
    name: str, *, device: str = "cpu", policy: InputPolicy | None = None, **options: object
) -> Scorer:
    """A :class:`Scorer` over the registered metric ``name`` (options passed to ``create_metric``)."""
    from perceptiq.metrics import create_metric

    metric = create_metric(name, **options).to(check_device(device)).eval()
    settings = {
        "metric": name,
        "options": options,
        "policy": None if policy is None else dataclasses.asdict(policy),
    }
    return Scorer(
        name=name,
        fn=metric,
        needs_reference=metric.needs_reference,
        policy=policy,
        device=device,
        settings=settings,
        undefined_reason=getattr(metric, "undefined_reason", None),
        infinite_score=getattr(metric, "infinite_score", None),
    )


def model_scorer(
    name: str | None,
    *,
    weights: str | Path | None = None,
    device: str = "cpu",
    allow_random_weights: bool = False,
    **config: object,
) -> Scorer:
    """A :class:`Scorer` over a learned model: a registered variant (with optional weights) or a saved one.

    ``config`` overrides fields of the variant's config. A model without trained weights is refused
    unless ``allow_random_weights`` (:func:`perceptiq.models._base.require_trained_weights`).
    """
    from perceptiq.models import create_model, load_model
    from perceptiq.models._base import require_trained_weights

    if name is None and weights is None:
        raise InputError("name a model or give its weights directory")
    if name is None and config:
        raise InputError("model options need --model NAME (a saved model's options are in its config.json)")
    model = create_model(name, weights=weights, **config) if name is not None else load_model(weights)
    label = name or Path(str(weights)).name
    require_trained_weights(model, label, allow_random_weights=allow_random_weights)
    model = model.to(check_device(device)).eval()
    settings = {
        "model": name,
        "weights": None if weights is None else _weights_id(weights),
        "options": config,
        "allow_random_weights": allow_random_weights,
    }
    return Scorer(
        name=label, fn=model.score, needs_reference=model.needs_reference, device=device, settings=settings
    )


def _weights_id(weights: str | Path) -> str:
    """Weights as recorded beside an output: a local path resolved, a hub id as given."""
    return str(Path(weights).resolve()) if Path(weights).exists() else str(weights)
