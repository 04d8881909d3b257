"""``perceptiq score``, ``perceptiq metrics`` and ``perceptiq samples``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from perceptiq._registry import REQUIRED
from perceptiq.cli._app import app
from perceptiq.cli._common import console, err_console, fmt, handle_errors, parse_options, print_json
from perceptiq.errors import InputError
from perceptiq.functional._color_names import COLOR_SPACES

if TYPE_CHECKING:  # decoding and scoring import torch: loaded only when a command runs (fast --help)
    from perceptiq.functional.patches import InputPolicy

T = TypeVar("T")


def _progress(items: Iterator[T], total: int) -> Iterator[T]:
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("scoring", total=total)
        for item in items:
            yield item
            bar.advance(task)


def _policy(mode: str | None, tile: int, patches: int, seed: int) -> InputPolicy | None:
    from perceptiq.functional.patches import InputPolicy

    if mode is None:
        return None
    return InputPolicy(mode=mode, tile_size=tile, num_patches=patches, seed=seed, border="shift")


@app.command("score")
@handle_errors
def score_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders (searched recursively), glob patterns ('shots/**/*.png'), manifests "
            "(.csv/.tsv/.jsonl/.parquet with an 'image' column) or, with --engine ray, fsspec URLs "
            "(s3://bucket/dir, gs://..., file:///...).",
            show_default=False,
        ),
    ],
    metric: Annotated[
        str | None, typer.Option("--metric", "-m", help="Metric name; `perceptiq metrics` lists them.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Learned model name; `perceptiq models` lists them.")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="Model weights: directory, .safetensors file or hub id.")
    ] = None,
    allow_random_weights: Annotated[
        bool,
        typer.Option(help="Score with a model that has no trained weights (random; differs every run)."),
    ] = False,
    ref: Annotated[
        Path | None,
        typer.Option(
            "--ref",
            help="References: a folder (paired by file name) or a manifest (image, ref). "
            "Ignored, with a warning, for a no-reference scorer.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Results file: .csv, .jsonl or .parquet.")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Skip images already scored in --out and continue it; a last line cut short by a "
            "killed run is dropped and its image scored again. The scorer and its options are "
            "recorded in <out>.meta.json and a resume with others is refused."
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    batch_size: Annotated[
        int, typer.Option(min=1, help="Images per batch (same-size images are stacked).")
    ] = 8,
    workers: Annotated[
        int, typer.Option(min=0, help="Decoding threads (--engine local; Ray decodes in tasks).")
    ] = 2,
    policy: Annotated[
        str | None,
        typer.Option(
            help="full, tiles, random_patches or resize_budget, for a metric or a model "
            "\\[default: full for a metric, the model's own input policy for a model]."
        ),
    ] = None,
    tile: Annotated[int, typer.Option(help="Tile/patch side for --policy tiles/random_patches.")] = 512,
    patches: Annotated[int, typer.Option(help="Number of random patches.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of random patches.")] = 0,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="Metric or model option KEY=VALUE (repeatable), e.g. color=y; "
            "`perceptiq metrics` lists each metric's options.",
        ),
    ] = None,
    max_pixels: Annotated[
        int | None, typer.Option(help="Refuse images with more pixels (bomb guard).")
    ] = None,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            min=1, help="Refuse files larger than this many bytes, checked before reading \\[default: 1 GiB]."
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            help="For a model that explains its scores (vlm_reasoning): add the columns samples (the K "
            "sampled scores, a JSON list), score_std, malformed (answers without a score) and "
            "rationale (the K rationales, a JSON list), from the same pass as the score (their mean)."
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="local: this process (decoding threads, one scorer); ray: a Ray Data pipeline (decode "
            "tasks, an actor pool of scorers) on this machine or, with --address, a Ray cluster; same "
            "output, error rows and --resume."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="--engine ray: join the Ray cluster at this address (`ray start --head` prints it; "
            "'auto' finds one on this machine) \\[default: start Ray here]."
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="--engine ray: scoring actors, each loading the metric or model once \\[default: one per "
            "GPU on CUDA; on the CPU half the CPUs left after a quarter is kept for decoding].",
        ),
    ] = None,
    gpus_per_actor: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="--engine ray: GPUs per actor (a fraction shares a GPU) \\[default: 1 on CUDA, else 0].",
        ),
    ] = None,
    cpus_per_actor: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="--engine ray: CPUs per actor (its torch threads: the whole part, at least 1) \\[default: "
            "the actors share the CPUs left after a quarter (at least 1) is kept for decoding].",
        ),
    ] = None,
) -> None:
    """Score images with a metric or a learned model (default: perceptiq_nr_v2); broken images are reported.

    Without --metric or --model, images are scored by perceptiq's default no-reference model
    (perceptiq_nr_v2: ImageNet EfficientNet-Lite0 features trained on CLIVE; higher = better, 0-100;
    --model perceptiq_nr is the first version). A broken image is reported in the
    output with its error and the run goes on; so is a file that is not a regular file (FIFO, device)
    or is over --max-bytes, and an image whose score is undefined (e.g. NIQE/BRISQUE of a flat
    image). Paths are written as absolute paths; folder entries with a suffix perceptiq does not
    read (e.g. .heic) are listed as unsupported. --json output is strict JSON (NaN/inf as null).

    Exit code 0 when every image was scored, 1 when any failed (see the error column).

    A model without trained weights (neither shipped, see `perceptiq models`, nor given by
    --weights) is refused unless --allow-random-weights is given.

    Example: perceptiq score samples/distorted --ref samples/manifest.csv --metric ssim --out scores.csv

    Example: perceptiq score sr/ --ref hr/ --metric psnr --option color=y --option crop_border=4

    Example: perceptiq score img/ --model vlm_reasoning --option checkpoint=DIR --option samples=6 --explain

    Example: perceptiq score photos/ --out scores.parquet --engine ray --actors 4 --address HOST:6379
    """
    from perceptiq.io.images import DEFAULT_MAX_BYTES, is_url, list_sources, pair_references
    from perceptiq.scoring import ScorerSpec, score_files

    if engine not in ("local", "ray"):
        raise InputError(f"--engine must be local or ray, got {engine!r}")
    ray_only = {"--address": address, "--actors": actors, "--gpus-per-actor": gpus_per_actor}
    ray_only["--cpus-per-actor"] = cpus_per_actor
    given = [name for name, value in ray_only.items() if value is not None]
    if engine == "local" and given:
        raise InputError(f"{', '.join(given)} only apply to --engine ray")
    if max_bytes is None:
        max_bytes = DEFAULT_MAX_BYTES
    spec = ScorerSpec(
        metric=metric,
        model=model,
        weights=weights,
        allow_random_weights=allow_random_weights,
        policy=_policy(policy, tile, patches, seed),
        explain=explain,
        options=parse_options(option),
        device=device,
    )
    files, unsupported = list_sources(paths)
    if not files:
        raise InputError(f"no image files found in {', '.join(map(str, paths))}")
    if engine == "local" and any(is_url(f) for f in files):
        raise InputError("URL inputs are read by the distributed engine: add --engine ray")
    if engine == "ray":
        from perceptiq.scale.ray_engine import require_ray

        require_ray()  # a missing Ray is one line before anything is built
    scorer = spec.build(device="cpu" if engine == "ray" else None)
    references = None
    if ref is not None and not scorer.needs_reference:
        err_console.print(f"[yellow]warning:[/] --ref ignored: {scorer.name} is a no-reference scorer")
    if scorer.needs_reference:
        if ref is None:
            raise InputError(
                f"{scorer.name} is full-reference: give the references with --ref DIR_OR_MANIFEST"
            )
        if any(is_url(f) for f in files):
            raise InputError("--ref pairs local images only: give local paths, or a manifest of local paths")
        references = pair_references(files, ref)  # type: ignore[arg-type]
    if engine == "ray":
        from perceptiq.scale.ray_engine import RayOptions, score_files_ray

        ray_options = RayOptions(address, actors, gpus_per_actor, cpus_per_actor, batch_size)
        summary = score_files_ray(
            files,
            spec,
            references=references,
            output=out,
            resume=resume,
            options=ray_options,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            unsupported_files=unsupported,
            progress=_progress,
            scorer=scorer,
        )
    else:
        summary = score_files(
            files,  # type: ignore[arg-type]
            scorer,
            references=references,
            output=out,
            resume=resume,
            workers=workers,
            batch_size=batch_size,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            unsupported_files=unsupported,  # type: ignore[arg-type]
            progress=_progress,
        )
    if json_output:
        print_json(summary.rows)
    else:
        table = Table(
            title=f"{scorer.name}: {summary.scored} scored, {summary.failed} failed, "
            f"{summary.skipped} skipped"
        )
        table.add_column("image")
        table.add_column("score", justify="right")
        table.add_column("error")
        for row in summary.rows[:50]:
            table.add_row(str(row["image"]), fmt(row["score"]), str(row["error"] or ""))
        if len(summary.rows) > 50:
            table.add_row(f"... {len(summary.rows) - 50} more rows", "", "")
        console.print(table)
        if out is not None:
            console.print(f"results written to {out}")
    for note in summary.notes:
        err_console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    if summary.unsupported_files:
        names = ", ".join(summary.unsupported_files)
        err_console.print(
            f"[yellow]unsupported:[/] {len(summary.unsupported_files)} file(s) not read (suffix not an "
            f"image format perceptiq reads): {names}",
            soft_wrap=True,
        )
    for path, error in summary.failures:
        err_console.print(f"[red]failed:[/] {path}: {error}", soft_wrap=True)
    if summary.failed:
        raise typer.Exit(1)


_METRICS_HELP = (
    "List the registered metrics: kind, direction, range and options (KEY=DEFAULT).\n\n"
    "Set options with `perceptiq score --metric NAME --option KEY=VALUE`; an option a metric does not "
    "take is refused with the list of those it takes. The colour option `color` has one vocabulary "
    "for every metric:\n\n"
    + "\n\n".join(f"{name}: {meaning}" for name, meaning in COLOR_SPACES.items())
    + "\n\nFull-reference metrics with a color option take all three (FSIM is computed in YIQ and has "
    "a chromatic option instead); NIQE and BRISQUE work on one grey channel and take "
    "gray (default, as the published values) or y."
)


def _option_text(value: object) -> object:
    """An option default as JSON can hold it."""
    if value is REQUIRED:
        return "required"
    return value if isinstance(value, bool | int | float | str | tuple | list | None) else repr(value)


@app.command("metrics", help=_METRICS_HELP)
def metrics_command(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    from perceptiq.metrics import METRICS

    rows = []
    for name in METRICS.names():
        cls = METRICS.get(name)
        options, open_ended = METRICS.options(name)
        rows.append(
            {
                "name": name,
                "kind": cls.kind,
                "lower_is_better": cls.lower_is_better,
                "score_range": cls.score_range,
                "differentiable": cls.is_differentiable,
                "options": {key: _option_text(value) for key, value in options.items()},
                "more_options": open_ended,
                "colors": list(cls.colors),
                "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            }
        )
    if json_output:
        print_json(rows)
        return
    table = Table(title="metrics")
    for col in ("name", "kind", "better", "range", "options (defaults)", "summary"):
        table.add_column(col)
    for row in rows:
        better = "lower" if row["lower_is_better"] else "higher"
        options = [f"{key}={value}" for key, value in row["options"].items()]
        options += ["(and the model's options)"] if row["more_options"] else []
        table.add_row(
            row["name"],
            row["kind"],
            better,
            str(row["score_range"] or "-"),
            ", ".join(options),
            row["summary"],
        )
    console.print(table)
    colors = Table(title="color option")
    for col in ("color", "meaning", "metrics"):
        colors.add_column(col)
    for name, meaning in COLOR_SPACES.items():
        colors.add_row(name, meaning, ", ".join(row["name"] for row in rows if name in row["colors"]))
    console.print(colors)


@app.command("samples")
@handle_errors
def samples_command(
    directory: Annotated[Path, typer.Argument(help="Folder to write the sample images into.")],
) -> None:
    """Write public-domain photos bundled with scikit-image and graded distortions of them.

    Layout: reference/*.png, distorted/<photo>_<distortion>_<1..3>.png, manifest.csv (image, ref, ...).
    """
    from perceptiq.data.samples import write_samples

    manifest = write_samples(directory)
    console.print(
        f"wrote {manifest['photo'].nunique()} reference photos and {len(manifest)} distorted images "
        f"to {directory}/ "
        f"(manifest: {directory / 'manifest.csv'})"
    )
