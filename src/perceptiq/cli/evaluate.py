"""``perceptiq evaluate``, ``perceptiq compare`` and ``perceptiq protocols``."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from perceptiq.cli._app import app
from perceptiq.cli._common import console, err_console, fmt, handle_errors, parse_options, print_json
from perceptiq.errors import DataFileError, InputError, PerceptiqWarning, UndefinedStatisticError

if TYPE_CHECKING:  # statistics import scipy: loaded only when a command runs (fast --help)
    from perceptiq.evaluation.protocols import Direction, EvaluationResult, PairData, Protocol, ScoreData

PredArg = Annotated[
    Path,
    typer.Argument(
        help="Predictions: CSV, TSV, JSON Lines, JSON or Parquet (EvalMuse output.json; structure pickle)."
    ),
]
GtArg = Annotated[
    Path,
    typer.Argument(help="Ground truth: MOS table, EvalMuse JSON, structure pickle or vote pairs."),
]
ProtocolOpt = Annotated[
    str, typer.Option("--protocol", "-p", help="Evaluation protocol; `perceptiq protocols` lists them.")
]
IdOpt = Annotated[
    str | None, typer.Option(help="Id column joining the two files (default: id, image, name, ...).")
]
PredColOpt = Annotated[
    str | None, typer.Option(help="Prediction column (default: score, pred, prediction, ...).")
]
GtColOpt = Annotated[str | None, typer.Option(help="Ground-truth column (default: mos, dmos, gt, ...).")]
GtIdOpt = Annotated[
    str | None, typer.Option(help="Id column of the ground truth when it differs from --id-col.")
]
StdOpt = Annotated[
    str | None, typer.Option(help="MOS standard-deviation column (enables the outlier ratio).")
]
MappingOpt = Annotated[
    str | None,
    typer.Option(
        help="PLCC mapping: none, logistic4, logistic4_std, logistic4_deqa, logistic5, poly3, poly4, ..."
    ),
]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Protocol option KEY=VALUE (repeatable), e.g. tie=second."),
]
BootOpt = Annotated[int, typer.Option(min=0, help="Bootstrap resamples for confidence intervals (0 = none).")]
ConfOpt = Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")]
MissingOpt = Annotated[
    bool, typer.Option("--allow-missing", help="Evaluate the ids present in both files instead of failing.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LowerOpt = Annotated[
    bool,
    typer.Option(
        "--lower-is-better",
        help="Predictions are lower-is-better (NIQE, BRISQUE, a distance): negate them before evaluating. "
        "Read from the scorer column of `perceptiq score` output when present.",
    ),
]


def _direction(path: Path, lower_is_better: bool) -> Direction:
    from perceptiq.evaluation.protocols import score_direction
    from perceptiq.io.tables import read_scorer

    try:
        return score_direction(read_scorer(path), lower_is_better)
    except DataFileError:
        raise
    except InputError as err:
        raise DataFileError(path, str(err)) from None


def _build_protocol(name: str, plcc_mapping: str | None, option: list[str] | None) -> Protocol:
    from perceptiq.evaluation.protocols import PROTOCOLS, create_protocol

    options = parse_options(option)
    if plcc_mapping is not None:
        fields = {f.name for f in dataclasses.fields(PROTOCOLS.get(name))}
        if "plcc_mapping" not in fields:
            raise InputError(f"protocol {name!r} has no PLCC mapping option")
        options["plcc_mapping"] = plcc_mapping
    return create_protocol(name, **options)


def _check_evaluable(protocol: Protocol, data: ScoreData | PairData, pred_path: Path, gt_path: Path) -> None:
    """The protocol's refusal of data on which its statistics are undefined, naming the file at fault."""
    try:
        protocol.check(data)
    except UndefinedStatisticError as err:
        raise DataFileError(gt_path if err.side == "ground truth" else pred_path, str(err)) from None


def _result_table(result: EvaluationResult) -> Table:
    with_ci = bool(result.intervals)
    table = Table(title=f"{result.protocol}  (n = {result.n})", title_justify="left")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    if with_ci:
        conf = next(iter(result.intervals.values())).confidence
        table.add_column(f"{conf:.0%} CI", justify="right")
    for name, value in result.statistics.items():
        row = [f"[bold]{name}[/]" if name == "main" else name, fmt(value)]
        if with_ci:
            ci = result.intervals.get(name)
            row.append(f"[{fmt(ci.low)}, {fmt(ci.high)}]" if ci else "")
        table.add_row(*row)
    return table


def _print_notes(notes: list[str] | tuple[str, ...]) -> None:
    for note in notes:
        err_console.print(f"[yellow]note:[/] {note}", soft_wrap=True)


@app.command("evaluate")
@handle_errors
def evaluate_command(
    predictions: PredArg,
    ground_truth: GtArg,
    protocol: ProtocolOpt = "generic",
    id_col: IdOpt = None,
    pred_col: PredColOpt = None,
    gt_col: GtColOpt = None,
    gt_id_col: GtIdOpt = None,
    std_col: StdOpt = None,
    plcc_mapping: MappingOpt = None,
    option: OptionOpt = None,
    bootstrap: BootOpt = 0,
    confidence: ConfOpt = 0.95,
    seed: SeedOpt = 0,
    allow_missing: MissingOpt = False,
    json_output: JsonOpt = False,
    lower_is_better: LowerOpt = False,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Directory for summary.json and scatter.png: prediction vs MOS with the curve PLCC "
            "measures (and its bootstrap band with --bootstrap); for 2AFC pairs, the human preference "
            "vs the model's score difference."
        ),
    ] = None,
) -> None:
    """Evaluate quality predictions against ground truth exactly as a challenge does.

    Example: perceptiq evaluate preds.csv mos.csv --protocol isrg-q-2025 --bootstrap 1000
    """
    from perceptiq.evaluation.loading import load_for_protocol
    from perceptiq.evaluation.protocols import ScoreData, orient
    from perceptiq.evaluation.report import write_report

    proto = _build_protocol(protocol, plcc_mapping, option)
    data, notes = load_for_protocol(
        proto,
        predictions,
        ground_truth,
        id_col=id_col,
        pred_col=pred_col,
        gt_col=gt_col,
        gt_id_col=gt_id_col,
        std_col=std_col,
        allow_missing=allow_missing,
    )
    direction = _direction(predictions, lower_is_better)
    data = orient(data, direction)
    _check_evaluable(proto, data, predictions, ground_truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerceptiqWarning)  # printed from result.warnings below
        result = proto.evaluate(data, bootstrap=bootstrap, confidence=confidence, seed=seed)
    result = dataclasses.replace(result, warnings=(*notes, *result.warnings))
    if report is not None:
        per_item = isinstance(data, ScoreData)
        write_report(
            result,
            report,
            pred=data.pred if per_item else None,
            mos=data.mos if per_item else None,
            pairs=None if per_item else data,
            inputs={"predictions": str(predictions), "ground_truth": str(ground_truth)},
            bootstrap=(bootstrap, seed),
        )
    if json_output:
        print_json({**result.as_dict(), "direction": direction.as_dict() | {"note": direction.note}})
    else:
        console.print(_result_table(result))
        console.print(direction.note, soft_wrap=True)
        if report is not None:
            console.print(f"report written to {report}/")
    _print_notes(result.warnings)


@app.command("compare")
@handle_errors
def compare_command(
    predictions_a: Annotated[Path, typer.Argument(help="Predictions of model A.")],
    predictions_b: Annotated[Path, typer.Argument(help="Predictions of model B (same ids as A).")],
    ground_truth: GtArg,
    protocol: ProtocolOpt = "generic",
    id_col: IdOpt = None,
    pred_col: PredColOpt = None,
    gt_col: GtColOpt = None,
    gt_id_col: GtIdOpt = None,
    plcc_mapping: MappingOpt = None,
    option: OptionOpt = None,
    bootstrap: Annotated[int, typer.Option(min=1, help="Bootstrap resamples of the paired test.")] = 1000,
    confidence: ConfOpt = 0.95,
    seed: SeedOpt = 0,
    allow_missing: MissingOpt = False,
    json_output: JsonOpt = False,
    lower_is_better: Annotated[
        bool,
        typer.Option(
            "--lower-is-better",
            help="Both prediction files are lower-is-better (negated before evaluating); "
            "each file's scorer column is read when present.",
        ),
    ] = False,
    lower_is_better_a: Annotated[
        bool, typer.Option("--lower-is-better-a", help="Only model A's predictions are lower-is-better.")
    ] = False,
    lower_is_better_b: Annotated[
        bool, typer.Option("--lower-is-better-b", help="Only model B's predictions are lower-is-better.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Write the comparison as JSON to this file.")] = None,
) -> None:
    """Does model A beat model B on the same items? Paired bootstrap of every statistic (A - B).

    Example: perceptiq compare a.csv b.csv mos.csv --protocol vquala25-fiqa
    """
    from perceptiq.evaluation.compare import common_items, compare_models
    from perceptiq.evaluation.loading import load_for_protocol
    from perceptiq.evaluation.protocols import orient
    from perceptiq.evaluation.report import write_json

    proto = _build_protocol(protocol, plcc_mapping, option)
    kwargs = {"id_col": id_col, "pred_col": pred_col, "gt_col": gt_col, "gt_id_col": gt_id_col}
    data_a, notes_a = load_for_protocol(
        proto, predictions_a, ground_truth, allow_missing=allow_missing, **kwargs
    )
    data_b, notes_b = load_for_protocol(
        proto, predictions_b, ground_truth, allow_missing=allow_missing, **kwargs
    )
    direction_a = _direction(predictions_a, lower_is_better or lower_is_better_a)
    direction_b = _direction(predictions_b, lower_is_better or lower_is_better_b)
    data_a, data_b = orient(data_a, direction_a), orient(data_b, direction_b)
    try:
        data_a, data_b = common_items(
            data_a, data_b, allow_missing=allow_missing, names=(predictions_a.name, predictions_b.name)
        )
    except InputError as err:
        raise DataFileError(predictions_b, str(err)) from None
    _check_evaluable(proto, data_a, predictions_a, ground_truth)
    _check_evaluable(proto, data_b, predictions_b, ground_truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerceptiqWarning)  # printed from the results' warnings below
        comparison = compare_models(
            proto, data_a, data_b, n_resamples=bootstrap, confidence=confidence, seed=seed
        )
    payload = {
        **comparison.as_dict(),
        "direction": {
            "a": direction_a.as_dict() | {"note": direction_a.note},
            "b": direction_b.as_dict() | {"note": direction_b.note},
        },
    }
    if out is not None:
        write_json(payload, out)
    if json_output:
        print_json(payload)
    else:
        table = Table(
            title=f"{proto.name}: A = {predictions_a.name}, B = {predictions_b.name}  (n = {data_a.n})"
        )
        for col in (
            "statistic",
            "A",
            "B",
            "A - B",
            f"{confidence:.0%} CI of A - B",
            "p (bootstrap)",
            "p (Williams)",
        ):
            table.add_column(col, justify="left" if col == "statistic" else "right")
        for name, diff in comparison.differences.items():
            ci = diff.difference
            will = comparison.williams.get(name)
            table.add_row(
                name,
                fmt(diff.a),
                fmt(diff.b),
                fmt(ci.estimate),
                f"[{fmt(ci.low)}, {fmt(ci.high)}]",
                fmt(diff.p_value, 3),
                fmt(will["p_value"], 3) if will else "",
            )
        console.print(table)
        console.print(f"A: {direction_a.note}", soft_wrap=True)
        console.print(f"B: {direction_b.note}", soft_wrap=True)
    notes = [*notes_a, *notes_b, *comparison.a.warnings, *comparison.b.warnings]
    _print_notes(list(dict.fromkeys(notes)))


@app.command("protocols")
def protocols_command(json_output: JsonOpt = False) -> None:
    """List the evaluation protocols with their main score and options."""
    from perceptiq.evaluation.protocols import PROTOCOLS, list_protocols

    rows = []
    for name in list_protocols():
        cls = PROTOCOLS.get(name)
        opts = {f.name: f.default for f in dataclasses.fields(cls)}
        rows.append({"name": name, "description": cls.description, "source": cls.source, "options": opts})
    if json_output:
        print_json(rows)
        return
    table = Table(title="evaluation protocols")
    for col in ("name", "description", "options (defaults)"):
        table.add_column(col)
    for row in rows:
        opts = ", ".join(f"{k}={v}" for k, v in row["options"].items()) or "-"
        table.add_row(row["name"], row["description"], opts)
    console.print(table)
