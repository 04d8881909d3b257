"""``perceptiq rank VOTES.csv``: global ranking from paired-comparison votes (Chen et al., Learning from
Model Rankings, 2025, eq. 2 and Fig. 5)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from perceptiq.cli._app import app
from perceptiq.cli._common import console, fmt, handle_errors, print_json
from perceptiq.errors import DataFileError, PerceptiqError

if TYPE_CHECKING:  # the solvers import scipy; loaded only when a ranking runs (fast --help)
    from perceptiq.ranking.paired import PairedComparisonResult
    from perceptiq.ranking.stability import StabilityResult

__all__ = ["rank"]

_MODEL_NAMES = {"thurstone": "Thurstone Case V", "bt": "Bradley-Terry"}


class ModelChoice(StrEnum):
    thurstone = "thurstone"
    bt = "bt"


class IntervalChoice(StrEnum):
    wald = "wald"
    bootstrap = "bootstrap"


def _print_table(result: PairedComparisonResult) -> None:
    pct = f"{100 * result.level:g}%"
    table = Table(
        title=f"{_MODEL_NAMES[result.model]} ranking of {len(result.items)} items, {result.n_votes:,} votes",
        caption=f"log-likelihood {result.log_likelihood:.4f}; CI: {result.ci_method}",
    )
    for name in ("rank", "item", "score", "se", f"{pct} CI"):
        table.add_column(name, justify="left" if name == "item" else "right")
    for r, i in enumerate(result.ranking):
        ci = f"[{fmt(float(result.ci_low[i]))}, {fmt(float(result.ci_high[i]))}]"
        table.add_row(str(r + 1), result.items[i], fmt(float(result.scores[i])), fmt(float(result.se[i])), ci)
    console.print(table)
    console.print(f"ridge {result.ridge:g}: {result.ridge_reason}", soft_wrap=True)
    if result.n_boot_failed:
        console.print(
            f"{result.n_boot_failed} of {result.n_boot} bootstrap resamples had no MLE and were dropped"
        )


def _print_stability(stability: StabilityResult) -> None:
    table = Table(title="Stability (Fig. 4)", caption=f"SRCC top-K vs all; {stability.order} order")
    table.add_column("K", justify="right")
    table.add_column("SRCC", justify="right")
    for k, value in zip(stability.ks, stability.srcc, strict=True):
        table.add_row(str(k), fmt(float(value)))
    console.print(table)


VotesArg = Annotated[
    Path, typer.Argument(help="Vote CSV: RealSR fractions, first/second/count_* or first/second/winner.")
]
ModelOpt = Annotated[ModelChoice, typer.Option("--model", "-m", help="Paired-comparison model.")]
RatersOpt = Annotated[
    int | None,
    typer.Option(
        "--raters", "--n-votes-per-pair", min=1, help="Raters per image pair (RealSR fractions -> votes)."
    ),
]
RidgeOpt = Annotated[
    float, typer.Option(min=0.0, help="Ridge prior weight (needed if an item never loses/wins).")
]
CiOpt = Annotated[IntervalChoice, typer.Option(help="Interval: Wald (observed information) or bootstrap.")]
LevelOpt = Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals.")]
BootOpt = Annotated[int, typer.Option(min=1, help="Bootstrap resamples of the votes (with --ci bootstrap).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap and of the stability draws.")]
StabilityOpt = Annotated[
    bool, typer.Option(help="Also print the SRCC of top-K rankings vs the full one (Fig. 4).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
PlotOpt = Annotated[
    Path | None, typer.Option(help="Write a PNG of the scores with error bars (like Fig. 5).")
]


@app.command("rank")
@handle_errors
def rank(
    votes: VotesArg,
    model: ModelOpt = ModelChoice.thurstone,
    raters: RatersOpt = None,
    ridge: RidgeOpt = 0.0,
    ci: CiOpt = IntervalChoice.wald,
    level: LevelOpt = 0.95,
    n_boot: BootOpt = 1000,
    seed: SeedOpt = 0,
    stability: StabilityOpt = False,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Rank items (e.g. SR methods) by Thurstone Case V or Bradley-Terry maximum likelihood, with CIs."""
    from perceptiq.io.votes import read_votes
    from perceptiq.ranking.paired import fit_paired
    from perceptiq.ranking.stability import ranking_stability

    table = read_votes(votes, raters=raters)
    try:
        result = fit_paired(
            table.counts(), model.value, ridge=ridge, items=table.items, ci=ci.value, level=level,
            n_boot=n_boot, seed=seed,
        )  # fmt: skip
        stab = None
        if stability:
            stab = ranking_stability(
                table.first, table.second, table.count_first, table.count_second, model=model.value,
                ridge=ridge, seed=seed, items=table.items,
            )  # fmt: skip
    except DataFileError:
        raise
    except PerceptiqError as err:
        raise DataFileError(votes, str(err)) from None
    if plot is not None:
        from perceptiq.evaluation.report import ranking_plot

        ranking_plot(result, plot)
    if as_json:
        payload = result.to_dict() | {"votes": str(votes), "layout": table.layout}
        if stab is not None:
            payload["stability"] = stab.to_dict()
        print_json(payload)
        return
    _print_table(result)
    if stab is not None:
        _print_stability(stab)
    if plot is not None:
        console.print(f"plot written to {plot}")
