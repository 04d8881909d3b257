"""The results file of ``perceptiq score``: rows appended as they come, resumable, de-duplicated at the end.

Formats by suffix: ``.csv``, ``.jsonl``, ``.parquet`` (rows are streamed to a ``.partial.jsonl``
beside it and the Parquet file is written at the end). JSON Lines are strict JSON
(:func:`perceptiq.io.json_text.dumps`): a non-finite number (the ``inf`` PSNR of identical images) is
written as ``null``. Each batch of rows is flushed when appended, so a killed run loses nothing
already written; a last line cut short by a kill is dropped on resume (:meth:`ResultWriter.drop_torn_tail`),
and :meth:`ResultWriter.finalize` rewrites the file atomically without duplicate rows (the last row of
an image wins; images are matched by resolved path, :func:`image_key`). Beside the output,
``<output>.meta.json`` records the settings of the scorer that wrote it.

:class:`ShardStore` holds the rows of a distributed run (``perceptiq score --engine ray``) before they
reach the output: one Parquet file per batch of rows, written atomically (a temporary name, then a
rename), so a killed run leaves only whole shards and loses at most the batches in flight.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pandas as pd

from perceptiq.errors import DataFileError, InputError
from perceptiq.io.json_text import dumps, json_safe
from perceptiq.io.tables import read_table

__all__ = [
    "COLUMNS",
    "EXPLAIN_COLUMNS",
    "META_SUFFIX",
    "SHARDS_SUFFIX",
    "ResultWriter",
    "ShardStore",
    "image_key",
]

COLUMNS = ("image", "score", "error", "reference", "height", "width", "seconds", "scorer")
"""Columns of a results file, in order."""
EXPLAIN_COLUMNS = ("samples", "score_std", "malformed", "rationale")
"""Columns added after :data:`COLUMNS` by ``perceptiq score --explain``: the K sampled scores (a JSON list),
their standard deviation, the number of malformed answers and the K rationales (a JSON list)."""
META_SUFFIX = ".meta.json"
"""Suffix added to the output's name for the sidecar recording the scorer (``scores.csv.meta.json``)."""
SHARDS_SUFFIX = ".shards"
"""Suffix added to the output's name for the folder of Parquet shards of a distributed run."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def image_key(path: str | Path) -> str:
    """The key that identifies an image across runs: its resolved absolute path (a URL as written)."""
    if isinstance(path, str) and _URL.match(path):
        return path
    return str(Path(path).resolve())


class ResultWriter:
    """Appends rows to CSV/JSON Lines (Parquet via a streamed ``.partial.jsonl``), flushing each batch."""

    def __init__(self, path: Path, columns: tuple[str, ...] = COLUMNS) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
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
            self.stream.open("a", encoding="utf-8").close()  # fails now, not after scoring, if unwritable
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
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(self.columns))

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

    def check_settings(self, name: str, settings: dict[str, object], rows: pd.DataFrame) -> None:
        """Refuse to continue an output written with other settings; record this run's in the sidecar.

        ``name`` is the scorer's name (the ``scorer`` column), ``settings`` what determines its scores;
        ``rows`` are the rows already written (:meth:`existing`). Without a sidecar, the ``scorer``
        column of the rows is compared with ``name``.
        """
        wanted = json_safe(settings)
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
            if names and names != [name]:
                raise InputError(
                    f"{self.path} was scored with {', '.join(names)}, this run uses {name}: "
                    "resume with the same scorer, or write to another output file"
                )
        try:
            self.meta.write_text(dumps({"scorer": wanted}, indent=2) + "\n", encoding="utf-8")
        except OSError as err:
            raise DataFileError(self.meta, f"cannot write: {err.strerror or err}") from None

    def append(self, rows: list[dict[str, object]]) -> None:
        """Append ``rows`` (dicts over this writer's columns, :data:`COLUMNS` by default) and flush them."""
        if not rows:
            return
        try:
            if self.kind == "csv":
                header = not self.path.exists() or self.path.stat().st_size == 0
                frame = pd.DataFrame(rows, columns=list(self.columns))
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


class ShardStore:
    """A folder of Parquet shards, one per batch of result rows; whole shards only, read back in write order.

    Shard names are ``<run>-<seq>.parquet`` with ``run`` the start time of the writing run in
    nanoseconds, so sorting the names gives the order the rows were written in (a later row of an
    image wins, as in :meth:`ResultWriter.finalize`).
    """

    def __init__(self, folder: Path, columns: tuple[str, ...] = COLUMNS) -> None:
        self.folder = Path(folder)
        self.columns = tuple(columns)
        self.run = f"{time.time_ns():020d}"
        self.seq = 0
        if self.folder.exists() and not self.folder.is_dir():
            raise DataFileError(
                self.folder, "is a file; the shards of a distributed run need this name as a folder"
            )

    def shards(self) -> list[Path]:
        """The whole shards, in write order (a temporary file left by a kill is not one)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.suffix == ".parquet")

    def write(self, rows: pd.DataFrame) -> Path:
        """Write ``rows`` as the next shard of this run: a temporary file renamed when complete."""
        path = self.folder / f"{self.run}-{self.seq:08d}.parquet"
        tmp = path.with_suffix(".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            rows.reindex(columns=list(self.columns)).to_parquet(tmp, index=False)
            os.replace(tmp, path)
        except OSError as err:
            raise DataFileError(path, f"cannot write a shard: {err.strerror or err}") from None
        self.seq += 1
        return path

    def read(self, run: str | None = None) -> pd.DataFrame:
        """All rows of the whole shards, in write order; only those written by run ``run`` when given."""
        frames = []
        for path in self.shards():
            if run is not None and not path.name.startswith(f"{run}-"):
                continue
            try:
                frames.append(pd.read_parquet(path))
            except (OSError, ValueError) as err:
                raise DataFileError(path, f"unreadable shard ({err}); remove it and resume") from None
        if not frames:
            return pd.DataFrame(columns=list(self.columns))
        return pd.concat([f.astype(object) for f in frames], ignore_index=True)

    def remove(self) -> None:
        """Delete the folder (its rows are in the output now)."""
        shutil.rmtree(self.folder, ignore_errors=True)


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
