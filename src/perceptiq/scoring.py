"""Scoring many images with one metric or model, writing results as they come, resumable.

:func:`score_files` decodes images in worker threads, pairs each with its reference when the scorer
is full-reference, scores them, and records one row per image in the output file right away
(:class:`perceptiq.io.results.ResultWriter`: flushed, so a killed run loses nothing already written).
A broken image becomes a row with its error and the run goes on; so does an image whose score is
undefined (NaN, or an infinity the scorer does not declare as a defined value): its row has no score
and the error says why.

The ``image`` column holds absolute paths; an image named twice (relative and absolute path, or
through a symbolic link) is scored once, matched by its resolved path.

With ``resume=True`` images already scored in the output are skipped; a last line cut short by a
killed run is dropped first (that image is scored again), and at the end the file is rewritten
(atomically) without duplicate rows. Beside the output, ``<output>.meta.json`` records the scorer and
its options (metric or model name, options, weights, input policy); resuming with a different scorer
is refused. Output formats and their encoding: :mod:`perceptiq.io.results`.

A model scorer made with ``explain=True`` (a model with an ``explain`` method, e.g. ``vlm_reasoning``)
scores by that method in the same pass and adds its columns to every row
(:data:`perceptiq.io.results.EXPLAIN_COLUMNS`): the sampled scores, their std, the malformed count
and the rationales.

The parts are shared with the distributed runner (:mod:`perceptiq.scale`): a :class:`ScorerSpec` says
what to build (each Ray actor builds its own :class:`Scorer` from it), :func:`plan_run` opens the output
and decides what a resumed run still has to score, and :func:`score_items` turns decoded images into
rows; so rows, errors and resume are the same whichever engine runs them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from perceptiq.errors import DataFileError, InputError, PerceptiqError
from perceptiq.functional._checks import usable_device
from perceptiq.functional.patches import InputPolicy, apply_policy
from perceptiq.io.images import DEFAULT_MAX_BYTES, LoadedImage, Source, is_url, load_images, read_image
from perceptiq.io.json_text import dumps
from perceptiq.io.results import COLUMNS, EXPLAIN_COLUMNS, ResultWriter, image_key

__all__ = [
    "Scorer",
    "ScorerSpec",
    "ScoreSummary",
    "RunPlan",
    "plan_run",
    "score_items",
    "score_files",
    "record_rows",
    "check_device",
    "metric_scorer",
    "model_scorer",
]


@dataclass
class Scorer:
    """A named function from images (B, C, H, W) (and references) to scores (B,).

    Attributes:
        name: what the output's ``scorer`` column says (metric or model name).
        fn: ``fn(images)`` or ``fn(images, references)``.
        needs_reference: full-reference scorer.
        policy: high-resolution policy (tiles, patches, budget) asked for; None: the scorer's own
            (the whole image for a metric, a model's input policy for a model).
        device: where images are decoded and scored.
        settings: what determines the scores (metric/model, options, weights, policy), recorded
            beside the output and compared on resume.
        undefined_reason: why the scorer can return NaN (the error written for such an image).
        infinite_score: when set, an infinite score is a defined value (e.g. PSNR of identical
            images) and is kept; otherwise it becomes an error row.
        takes_policy: ``fn`` applies a policy itself and takes it as ``fn(images, references,
            policy=...)``, None meaning its own (a model's :meth:`~perceptiq.models.QualityModel.score`);
            otherwise ``policy`` is applied around ``fn`` here.
        explainer: when set, images are scored by ``explainer(images)`` instead, which returns the
            scores (B,) and one dict of :data:`~perceptiq.io.results.EXPLAIN_COLUMNS` values per image.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    needs_reference: bool = False
    policy: InputPolicy | None = None
    device: str = "cpu"
    settings: dict[str, object] = field(default_factory=dict)
    undefined_reason: str | None = None
    infinite_score: str | None = None
    takes_policy: bool = False
    explainer: Callable[[torch.Tensor], tuple[torch.Tensor, list[dict[str, object]]]] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns of this scorer's rows: :data:`COLUMNS`, then the explanation's when it explains."""
        return COLUMNS + EXPLAIN_COLUMNS if self.explainer is not None else COLUMNS

    def __call__(self, images: torch.Tensor, references: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B,) under :attr:`policy`: the one place scoring applies a policy, to metrics and models."""
        if self.takes_policy:
            return self.fn(images, references, policy=self.policy)
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


@dataclass(frozen=True)
class ScorerSpec:
    """What a :class:`Scorer` is built from: a metric, or a model (name and/or weights), with its options.

    Picklable, so each process of a distributed run builds its own scorer (:meth:`build`) once.
    Neither ``metric`` nor ``model``/``weights``: perceptiq's default model
    (:data:`perceptiq.models._base.DEFAULT_MODEL`).
    """

    metric: str | None = None
    model: str | None = None
    weights: str | None = None
    allow_random_weights: bool = False
    policy: InputPolicy | None = None
    explain: bool = False
    options: dict[str, object] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        named_model = self.model is not None or self.weights is not None or self.allow_random_weights
        if self.metric is not None and named_model:
            raise InputError("name either --metric or --model/--weights/--allow-random-weights, not both")

    def build(self, device: str | None = None) -> Scorer:
        """The scorer on ``device`` (default: its own): :func:`metric_scorer` or :func:`model_scorer`."""
        device = self.device if device is None else device
        if self.metric is not None:
            return metric_scorer(
                self.metric, device=device, policy=self.policy, explain=self.explain, **self.options
            )
        model = self.model
        if model is None and self.weights is None:
            from perceptiq.models._base import DEFAULT_MODEL

            model = DEFAULT_MODEL
        return model_scorer(
            model,
            weights=self.weights,
            device=device,
            allow_random_weights=self.allow_random_weights,
            policy=self.policy,
            explain=self.explain,
            **self.options,
        )


def _row(scorer: Scorer, item: LoadedImage, **values: object) -> dict[str, object]:
    row: dict[str, object] = {c: None for c in scorer.columns}
    row.update(image=str(item.path), scorer=scorer.name, **values)
    return row


def _prepare(
    scorer: Scorer, item: LoadedImage, ref_path: Path | None, decoded: torch.Tensor | DataFileError | None
) -> tuple[torch.Tensor | None, dict | None]:
    """The reference tensor of ``item`` (None for NR), or an error row when it cannot be had.

    ``decoded``: the reference already read (or its read error), else it is read here.
    """
    image = item.image
    height, width = int(image.shape[-2]), int(image.shape[-1])
    if not scorer.needs_reference:
        return None, None
    if ref_path is None:
        return None, _row(
            scorer, item, error="no reference image found for this file", height=height, width=width
        )
    try:
        if isinstance(decoded, DataFileError):
            raise decoded
        reference = (
            read_image(ref_path, device=scorer.device) if decoded is None else decoded.to(scorer.device)
        )
    except DataFileError as err:
        return None, _row(
            scorer, item, error=f"reference {err}", reference=str(ref_path), height=height, width=width
        )
    if reference.shape != image.shape:
        ref_size = f"{reference.shape[-1]}x{reference.shape[-2]}"
        problem = f"size {width}x{height} differs from reference {ref_path} ({ref_size})"
        return None, _row(scorer, item, error=problem, reference=str(ref_path), height=height, width=width)
    return reference, None


def _run(
    scorer: Scorer, images: torch.Tensor, refs: torch.Tensor | None
) -> tuple[list[float], list[dict[str, object]]]:
    """Scores of a batch and, per image, the explanation's columns (empty without an explainer)."""
    with torch.inference_mode():
        if scorer.explainer is not None:
            scores, extras = scorer.explainer(images)
        else:
            scores, extras = scorer(images, refs), [{} for _ in range(images.shape[0])]
        return scores.reshape(-1).float().cpu().tolist(), extras


def score_items(
    scorer: Scorer,
    items: list[LoadedImage],
    references: dict[Path, Path | None] | None = None,
    decoded_references: dict[Path, torch.Tensor | DataFileError] | None = None,
) -> list[dict[str, object]]:
    """One row per item, in order: same-size images are scored as one batch, a failing batch per image.

    An item that failed to decode becomes its error row; so does a missing, broken or differently
    sized reference. ``references`` maps an image to its reference file (full-reference scorers);
    ``decoded_references`` holds references already decoded (or their read errors), e.g. by another
    process; the others are read here.
    """
    rows: dict[int, dict[str, object]] = {}
    groups: dict[tuple[int, ...], list[tuple[LoadedImage, torch.Tensor | None]]] = {}
    for item in items:
        if not item.ok:
            rows[item.index] = _row(scorer, item, error=getattr(item.error, "problem", str(item.error)))
            continue
        ref_path = references.get(item.path) if references is not None else None
        decoded = decoded_references.get(item.path) if decoded_references is not None else None
        reference, error_row = _prepare(scorer, item, ref_path, decoded)
        if error_row is not None:
            rows[item.index] = error_row
        else:
            groups.setdefault(tuple(item.image.shape), []).append((item, reference))
    for members in groups.values():
        start = time.perf_counter()
        try:
            images = torch.cat([m[0].image for m in members])
            refs = torch.cat([m[1] for m in members]) if scorer.needs_reference else None
            scores, extras = _run(scorer, images, refs)
            seconds = (time.perf_counter() - start) / len(members)
            outcomes = [(*_checked(scorer, v), seconds, x) for v, x in zip(scores, extras, strict=True)]
        except (PerceptiqError, RuntimeError, ValueError):
            outcomes = [_score_single(scorer, item, reference) for item, reference in members]
        for (item, reference), (value, error, seconds, extra) in zip(members, outcomes, strict=True):
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
                **extra,
            )
    return [rows[item.index] for item in items]


def _score_single(
    scorer: Scorer, item: LoadedImage, reference: torch.Tensor | None
) -> tuple[float | None, str | None, float, dict[str, object]]:
    start = time.perf_counter()
    try:
        scores, extras = _run(scorer, item.image, reference)
    except (PerceptiqError, RuntimeError, ValueError) as err:
        return None, f"{type(err).__name__}: {err}", time.perf_counter() - start, {}
    return (*_checked(scorer, scores[0]), time.perf_counter() - start, extras[0])


def _checked(scorer: Scorer, value: float) -> tuple[float | None, str | None]:
    """``(score, None)`` for a defined score, else ``(None, why)``: no NaN score without an error."""
    if math.isfinite(value) or (math.isinf(value) and scorer.infinite_score is not None):
        return value, None
    why = scorer.undefined_reason or "the scorer returned no finite value for this image"
    return None, f"score undefined ({value}): {why}"


@dataclass
class RunPlan:
    """What a run has to do: its output writer (None without output), the images still to score, the summary.

    ``pending`` are the images not yet scored in the output (all of them without ``resume``), in input
    order; ``order`` maps each input image's key (:func:`~perceptiq.io.results.image_key`) to its
    position in the input.
    """

    writer: ResultWriter | None
    pending: list[Source]
    order: dict[str, int]
    summary: ScoreSummary


def plan_run(
    paths: Iterable[Source],
    scorer: Scorer,
    *,
    output: Path | None = None,
    resume: bool = False,
    unsupported_files: Iterable[Source] = (),
    earlier: pd.DataFrame | None = None,
) -> RunPlan:
    """Open ``output`` for ``scorer`` and list what is left to score (the start of every engine's run).

    Paths are made absolute and an image named twice is kept once (matched by :func:`image_key`;
    URLs as written). Without ``resume`` an output that already holds rows is refused; with it, a torn
    last line is dropped (noted in the summary), the scorer's settings are checked against the
    recorded ones, and images with a score in the output, or in ``earlier`` (rows written elsewhere
    by earlier runs, e.g. the shards of a distributed run, checked as the output's rows are), are
    skipped. Images with an error row are scored again.
    """
    unique: dict[str, Source] = {}
    for p in paths:
        unique.setdefault(image_key(p), p if is_url(p) else Path(os.path.abspath(p)))
    order = {key: i for i, key in enumerate(unique)}
    writer = ResultWriter(output, columns=scorer.columns) if output is not None else None
    summary = ScoreSummary(output=output, unsupported_files=[str(p) for p in unsupported_files])
    if writer is not None and not resume and writer.existing().shape[0] > 0:
        raise InputError(f"{output} exists: pass --resume to continue it, or choose another output file")
    if writer is not None and resume:
        torn = writer.drop_torn_tail()
        if torn is not None:
            summary.notes.append(torn)
    frames = [] if earlier is None or earlier.empty else [earlier]
    if writer is not None:
        frames.insert(0, writer.existing())
        writer.check_settings(scorer.name, scorer.settings, pd.concat(frames, ignore_index=True))
    finished: set[str] = set()
    for frame in frames:
        ok = frame[frame["error"].isna()] if "error" in frame.columns else frame
        finished |= {image_key(p) for p in ok["image"].astype(str)}
    summary.skipped = sum(key in finished for key in unique)
    pending = [p for key, p in unique.items() if key not in finished]
    return RunPlan(writer, pending, order, summary)


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

    Images are scored in batches of up to ``batch_size`` decoded images (same-size images stacked
    into one call); each batch's rows, with those of the broken files among them, are appended in
    input order and flushed before the next batch starts. Paths are written as absolute paths and an
    image named twice is scored once (see the module docstring). Files larger than ``max_bytes`` or
    not regular files become error rows. ``unsupported_files`` (folder entries not read for their
    suffix, :func:`perceptiq.io.images.scan_images`) are listed in the summary. Returns a
    :class:`ScoreSummary`; ``summary.rows`` holds this run's rows.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    plan = plan_run(paths, scorer, output=output, resume=resume, unsupported_files=unsupported_files)
    if any(is_url(p) for p in plan.pending):
        raise InputError("URL inputs are read by the distributed engine: add --engine ray")
    if references is not None:
        references = {Path(os.path.abspath(k)): v for k, v in references.items()}
    summary, writer = plan.summary, plan.writer
    loaded = load_images(
        plan.pending,
        workers=workers,
        device=scorer.device,
        max_bytes=max_bytes,
        **({"max_pixels": max_pixels} if max_pixels else {}),
    )
    if progress is not None:
        loaded = progress(loaded, len(plan.pending))
    batch: list[LoadedImage] = []
    decoded = 0
    for item in loaded:
        batch.append(item)
        decoded += item.ok
        if decoded >= batch_size:
            record_rows(summary, writer, score_items(scorer, batch, references))
            batch, decoded = [], 0
    if batch:
        record_rows(summary, writer, score_items(scorer, batch, references))
    if writer is not None:
        writer.finalize()
    return summary


def record_rows(summary: ScoreSummary, writer: ResultWriter | None, rows: list[dict[str, object]]) -> None:
    """Count ``rows`` in ``summary`` (scored or failed, with the failures) and append them to ``writer``."""
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
    return str(usable_device(device))


def metric_scorer(
    name: str,
    *,
    device: str = "cpu",
    policy: InputPolicy | None = None,
    explain: bool = False,
    **options: object,
) -> Scorer:
    """A :class:`Scorer` over the registered metric ``name`` (options passed to ``create_metric``).

    ``policy`` in mode ``"full"`` is the metric's own (the whole image) and is recorded as None.
    ``explain=True`` is refused: a metric has no explanation of its scores.
    """
    from perceptiq.metrics import create_metric

    if explain:
        raise InputError(f"{name} cannot explain its scores: {_EXPLAIN_NEEDS}")

    if policy is not None and policy.mode == "full":
        policy = None

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
    policy: InputPolicy | None = None,
    explain: bool = False,
    **config: object,
) -> Scorer:
    """A :class:`Scorer` over a learned model: a registered variant (with optional weights) or a saved one.

    ``config`` overrides fields of the variant's config. A model without trained weights is refused
    unless ``allow_random_weights`` (:func:`perceptiq.models._base.require_trained_weights`).
    ``policy`` replaces the model's own input policy (None keeps it). ``explain=True`` scores by the
    model's ``explain`` method and adds its columns to the rows (see the module docstring); a model
    without one is refused.
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
        "policy": None if policy is None else dataclasses.asdict(policy),
    }
    if explain:
        settings["explain"] = True  # rows with other columns: a resume must explain too, or not
    return Scorer(
        name=label,
        fn=model.score,
        needs_reference=model.needs_reference,
        policy=policy,
        device=device,
        settings=settings,
        takes_policy=True,
        explainer=_explainer(model, label, policy) if explain else None,
    )


_EXPLAIN_NEEDS = "explanations need a model with an explain() method, e.g. --model vlm_reasoning"


def _explainer(
    model: torch.nn.Module, label: str, policy: InputPolicy | None
) -> Callable[[torch.Tensor], tuple[torch.Tensor, list[dict[str, object]]]]:
    """``images -> (scores, per-image explanation columns)`` by ``model.explain``: one pass gives both."""
    explain = getattr(model, "explain", None)
    if not callable(explain):
        raise InputError(f"{label} cannot explain its scores: {_EXPLAIN_NEEDS}")
    chosen = policy if policy is not None else model.input_policy
    if chosen.mode != "full":
        raise InputError(f"{label}: explanations are of whole images, not of policy {chosen.mode}")

    def run(images: torch.Tensor) -> tuple[torch.Tensor, list[dict[str, object]]]:
        placement = model.input_placement()
        if placement is not None:
            images = images.to(*placement)
        result = explain(images)
        extras = [
            {
                "samples": dumps(scores),
                "score_std": std if math.isfinite(std) else None,
                "malformed": int(malformed),
                "rationale": dumps(rationales),
            }
            for scores, std, malformed, rationales in zip(
                result.scores, result.std.tolist(), result.malformed.tolist(), result.rationales, strict=True
            )
        ]
        return result.mean, extras

    return run


def _weights_id(weights: str | Path) -> str:
    """Weights as recorded beside an output: a local path resolved, a hub id as given."""
    return str(Path(weights).resolve()) if Path(weights).exists() else str(weights)
