"""``perceptiq study``: run a 2AFC study in the browser and rank methods from its votes (Chen et al.,
Learning from Model Rankings, 2025, Sec. III-C and Fig. 2)."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from perceptiq.cli._app import app
from perceptiq.cli._common import console, err_console, fmt, handle_errors, print_json
from perceptiq.errors import InputError

__all__ = ["study_app"]

study_app = typer.Typer(
    help=(
        "Run a two-alternative forced-choice (2AFC) study in the browser: create it from a pair list "
        "(e.g. from `perceptiq mad`), serve it to participants, export the votes and rank the methods."
    ),
    no_args_is_help=True,
)
app.add_typer(study_app, name="study")

ENV_ADMIN_TOKEN = "PERCEPTIQ_ADMIN_TOKEN"

NameArg = Annotated[
    str, typer.Argument(help="Study name (letters, digits, '_', '.', '-'); it is in the URL.")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Study database: a SQLite file path or a SQLAlchemy URL (postgresql+psycopg://user@host/db). "
        "Default: perceptiq_study.db in the working folder.",
    ),
]


class IntervalChoice(StrEnum):
    wald = "wald"
    bootstrap = "bootstrap"


@study_app.command("create")
@handle_errors
def create(
    name: NameArg,
    pairs: Annotated[
        Path,
        typer.Option(
            "--pairs",
            help="Pair list: the CSV of `perceptiq mad` or any table with image_a/image_b (or "
            "name1_column/name2_column, first/second) and optional method_a/method_b, group, gold (a|b).",
        ),
    ],
    images: Annotated[Path, typer.Option("--images", help="Folder holding every image of the pair list.")],
    db: DbOpt = None,
    pairs_per_session: Annotated[
        int | None, typer.Option(min=1, help="Regular pairs per participant (random subset; default: all).")
    ] = None,
    repeats: Annotated[
        int,
        typer.Option(
            min=0, help="Pairs shown twice (sides swapped) to check each participant's consistency."
        ),
    ] = 0,
    active: Annotated[
        bool,
        typer.Option(help="Serve next the method pair whose Thurstone score difference is most uncertain."),
    ] = False,
    max_gold_failure_rate: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Flag participants failing more gold pairs than this fraction."),
    ] = 0.0,
    min_repeat_agreement: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Flag participants agreeing with themselves less often.")
    ] = 0.5,
    gold: Annotated[
        int,
        typer.Option(
            min=0,
            help="Add N gold pairs: a study image beside a strongly blurred copy (written to "
            "IMAGES/perceptiq_gold/); every participant sees them all.",
        ),
    ] = 0,
    instructions: Annotated[str, typer.Option(help="Extra text for the consent page.")] = "",
) -> None:
    """Create a study: check every image (sizes recorded) and store the pairs in the database."""
    from perceptiq.study.creation import create_study
    from perceptiq.study.db import open_database
    from perceptiq.study.service import StudySettings

    settings = StudySettings(
        pairs_per_session=pairs_per_session,
        repeats=repeats,
        active=active,
        max_gold_failure_rate=max_gold_failure_rate,
        min_repeat_agreement=min_repeat_agreement,
        instructions=instructions,
    )
    database = open_database(db)
    summary = create_study(database, name, pairs, images, settings, gold_pairs=gold)
    console.print(
        f"study {name!r} created in {database.url}: {summary['pairs']} pairs of {len(summary['methods'])} "
        f"methods, {summary['gold_pairs']} gold pairs, {summary['images']} images checked",
        soft_wrap=True,
    )
    console.print(f"serve it with: perceptiq study serve --db {database.url}", soft_wrap=True)


@study_app.command("serve")
@handle_errors
def serve(
    db: DbOpt = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind; the default answers this machine only (use 0.0.0.0 behind a proxy)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token of the admin API (export.csv, results.json); default: "
            f"${ENV_ADMIN_TOKEN}, else a new random token printed once."
        ),
    ] = None,
    rate_limit: Annotated[
        float, typer.Option(min=0.1, help="Requests per second per participant token.")
    ] = 20.0,
) -> None:
    """Serve every study of the database: participants open http://HOST:PORT/s/NAME."""
    from perceptiq.study.db import open_database
    from perceptiq.study.web import RateLimit
    from perceptiq.study.web import serve as run_server

    token = admin_token or os.environ.get(ENV_ADMIN_TOKEN)
    if token is not None and len(token) < 16:
        raise InputError("the admin token must be at least 16 characters")
    if token is None:
        token = secrets.token_urlsafe(24)
        console.print(f"admin token (shown once): {token}", soft_wrap=True)
    database = open_database(db)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"warning: listening on {host}: tokens and votes travel unencrypted unless an HTTPS proxy is in "
            "front",
            soft_wrap=True,
        )
    console.print(
        f"serving {database.url} on http://{host}:{port}/s/STUDY_NAME (Ctrl-C stops)", soft_wrap=True
    )
    run_server(
        database,
        admin_token=token,
        host=host,
        port=port,
        rate_limit=RateLimit(rate_limit, int(2 * rate_limit)),
    )


@study_app.command("export")
@handle_errors
def export(
    name: NameArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Vote table to write: .csv or .parquet.")],
    db: DbOpt = None,
) -> None:
    """Write one row per vote: observer, session, pair, left, right, choice, time, gold/repeat flags and
    flagged."""
    from perceptiq.study.db import open_database
    from perceptiq.study.results import export_votes

    n = export_votes(open_database(db), name, out)
    console.print(f"{n} votes written to {out}")


@study_app.command("results")
@handle_errors
def results(
    name: NameArg,
    db: DbOpt = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Folder for results.json, counts/ranking/observers/votes CSVs, benchmark_2afc.csv and "
            "ranking.png."
        ),
    ] = None,
    exclude_flagged: Annotated[
        bool, typer.Option(help="Leave participants flagged by gold or repeat checks out of the ranking.")
    ] = False,
    ridge: Annotated[
        float | None,
        typer.Option(min=0.0, help="Ridge prior weight (default: 0 when the MLE exists, else 0.01)."),
    ] = None,
    ci: Annotated[IntervalChoice, typer.Option(help="Interval: Wald or bootstrap.")] = IntervalChoice.wald,
    level: Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level.")] = 0.95,
    n_boot: Annotated[int, typer.Option(min=1, help="Bootstrap resamples (with --ci bootstrap).")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    absolute_paths: Annotated[
        bool,
        typer.Option(
            help="benchmark_2afc.csv names images by absolute path (as `perceptiq score` does) instead of "
            "relative to the image folder."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Thurstone Case V ranking of the methods with CIs, observer checks and the 2AFC benchmark file."""
    from perceptiq.study.db import open_database
    from perceptiq.study.results import study_results, write_results

    result = study_results(
        open_database(db), name, exclude_flagged=exclude_flagged, ridge=ridge, ci=ci.value, level=level,
        n_boot=n_boot, seed=seed, absolute_paths=absolute_paths,
    )  # fmt: skip
    written = write_results(result, report) if report is not None else {}
    if as_json:
        print_json(result.to_dict())
        return
    summary = result.to_dict()
    console.print(
        f"study {name!r}: {summary['n_votes']} votes from {summary['n_sessions']} sessions, "
        f"{summary['n_flagged']} flagged"
        + (" (excluded)" if exclude_flagged else " (kept; --exclude-flagged)"),
        soft_wrap=True,
    )
    if result.ranking is None:
        console.print(f"no ranking yet: {result.ranking_error}", soft_wrap=True)
    else:
        r = result.ranking
        table = Table(title=f"Thurstone Case V ranking of {len(r.items)} methods, {r.n_votes:,} votes")
        for col in ("rank", "method", "score", "se", f"{100 * r.level:g}% CI"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for k, i in enumerate(r.ranking):
            ci_text = f"[{fmt(float(r.ci_low[i]))}, {fmt(float(r.ci_high[i]))}]"
            table.add_row(str(k + 1), r.items[i], fmt(float(r.scores[i])), fmt(float(r.se[i])), ci_text)
        console.print(table)
    for key, label in (("gold_failure_rate", "gold failure rate"), ("repeat_agreement", "repeat agreement")):
        if summary[key] is not None:
            console.print(f"{label}: {summary[key]:.3f}")
    if written:
        console.print(f"report written to {report} ({', '.join(sorted(p.name for p in written.values()))})")
