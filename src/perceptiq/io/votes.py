"""Read paired-comparison vote tables (CSV) into item names and per-row vote counts.

Three layouts are recognised by their columns (names are case-insensitive):

* RealSR 2AFC fractions (Chen et al., Learning from Model Rankings, 2025's ``sr_subjective_results.csv``):
  ``sr_pair_names, name1_column,
  name2_column, score1_column, score2_column`` (``group`` optional). The item of an image is the part of its
  file name after the last ``_`` (extension removed): ``01450_BSRGAN.png`` -> ``BSRGAN``. Scores are the
  fractions of ``raters`` subjects preferring each image; votes = fraction x raters, which must be whole
  numbers. A trailing summary row whose ``sr_pair_names`` is ``average`` is skipped.
* Aggregated counts: ``first, second, count_first, count_second``.
* One vote per row: ``first, second, winner`` with ``winner`` equal to ``first`` or ``second``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from perceptiq.errors import DataFileError
from perceptiq.io.tables import read_table
from perceptiq.ranking.paired import counts_from_pairs

__all__ = ["VoteTable", "item_order", "method_of_images", "read_votes"]

_REALSR = ("sr_pair_names", "name1_column", "name2_column", "score1_column", "score2_column")
_COUNTS = ("first", "second", "count_first", "count_second")
_RECORDS = ("first", "second", "winner")
_INTEGER_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class VoteTable:
    """Votes read from a file: row ``k`` gives ``count_first[k]`` votes to ``items[first[k]]`` over
    ``items[second[k]]`` and ``count_second[k]`` the other way."""

    path: str
    layout: str
    items: tuple[str, ...]
    first: np.ndarray
    second: np.ndarray
    count_first: np.ndarray
    count_second: np.ndarray

    @property
    def n_votes(self) -> int:
        """Total number of votes."""
        return int(self.count_first.sum() + self.count_second.sum())

    def counts(self) -> np.ndarray:
        """Count matrix ``C[i, j]`` = votes for ``items[i]`` over ``items[j]``."""
        return counts_from_pairs(
            self.first, self.second, self.count_first, self.count_second, len(self.items)
        )


def _read_frame(path: Path) -> pd.DataFrame:
    frame = read_table(path, as_text=True)
    frame.columns = [c.strip().lower() for c in frame.columns]
    return frame


def _numbers(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFileError(
            path, f"column {column!r}, line {row + 2}: {frame[column].iloc[row]!r} is not a count"
        )
    return values


def _whole(values: np.ndarray, what: str, path: Path) -> np.ndarray:
    bad = np.abs(values - np.rint(values)) > _INTEGER_TOL * np.maximum(1.0, np.abs(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFileError(path, f"line {row + 2}: {what} = {values[row]:.6g} is not a whole vote count")
    return np.rint(values).astype(np.int64)


def item_order(names: np.ndarray) -> tuple[str, ...]:
    """Distinct item names sorted (numerically when every name is an integer): the order of ``items``."""
    unique = sorted(set(names.tolist()))
    if all(u.lstrip("-").isdigit() for u in unique):
        unique.sort(key=int)
    return tuple(unique)


def method_of_images(image_names: pd.Series, column: str, path: str | Path) -> np.ndarray:
    """The method of each image file name: the part after the last ``_`` (``01450_BSRGAN.png`` ->
    ``BSRGAN``)."""
    stems = image_names.str.strip().str.rsplit(".", n=1).str[0]
    parts = stems.str.rsplit("_", n=1)
    bad = parts.str.len() < 2
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(
            path, f"column {column!r}, line {row + 2}: {image_names.iloc[row]!r} has no '_<method>' suffix"
        )
    return parts.str[1].to_numpy(dtype=str)


def _realsr(frame: pd.DataFrame, path: Path, raters: int | None) -> tuple[np.ndarray, ...]:
    if raters is None or raters < 1:
        raise DataFileError(
            path,
            "scores are fractions of raters: give the number of raters (raters=, --raters; 23 in RealSR-1K)",
        )
    frame = frame[frame["sr_pair_names"].str.strip().str.lower() != "average"]
    m1, m2 = (
        method_of_images(frame["name1_column"], "name1_column", path),
        method_of_images(frame["name2_column"], "name2_column", path),
    )
    c1 = _whole(_numbers(frame, "score1_column", path) * raters, f"score1_column x {raters} raters", path)
    c2 = _whole(_numbers(frame, "score2_column", path) * raters, f"score2_column x {raters} raters", path)
    return m1, m2, c1, c2


def _records(frame: pd.DataFrame, path: Path) -> tuple[np.ndarray, ...]:
    first, second = (
        frame["first"].str.strip().to_numpy(dtype=str),
        frame["second"].str.strip().to_numpy(dtype=str),
    )
    winner = frame["winner"].str.strip().to_numpy(dtype=str)
    bad = (winner != first) & (winner != second)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFileError(
            path,
            f"line {row + 2}: winner {repr(str(winner[row]))} is neither "
            f"{repr(str(first[row]))} nor {repr(str(second[row]))}",
        )
    return first, second, (winner == first).astype(np.int64), (winner == second).astype(np.int64)


def read_votes(path: str | Path, *, raters: int | None = None) -> VoteTable:
    """Read a vote CSV in one of the layouts of this module; ``raters`` converts RealSR fractions to votes."""
    path = Path(path)
    frame = _read_frame(path)
    columns = set(frame.columns)
    if columns.issuperset(_REALSR):
        layout = "realsr"
        first, second, c1, c2 = _realsr(frame, path, raters)
    elif raters is not None:
        raise DataFileError(
            path, "raters applies only to RealSR fraction columns (score1_column, score2_column)"
        )
    elif columns.issuperset(_COUNTS):
        layout = "counts"
        first, second = (
            frame["first"].str.strip().to_numpy(dtype=str),
            frame["second"].str.strip().to_numpy(dtype=str),
        )
        c1 = _whole(_numbers(frame, "count_first", path), "count_first", path)
        c2 = _whole(_numbers(frame, "count_second", path), "count_second", path)
    elif columns.issuperset(_RECORDS):
        layout = "records"
        first, second, c1, c2 = _records(frame, path)
    else:
        raise DataFileError(
            path,
            f"unrecognised columns {sorted(columns)}; expected {', '.join(_REALSR)} or "
            f"{', '.join(_COUNTS)} or {', '.join(_RECORDS)}",
        )
    if len(first) == 0:
        raise DataFileError(path, "no votes")
    same = first == second
    if same.any():
        row = int(np.flatnonzero(same)[0])
        raise DataFileError(path, f"line {row + 2}: item {str(first[row])!r} is compared with itself")
    items = item_order(np.concatenate([first, second]))
    index = pd.Index(items)
    return VoteTable(
        path=str(path),
        layout=layout,
        items=items,
        first=index.get_indexer(first).astype(np.int64),
        second=index.get_indexer(second).astype(np.int64),
        count_first=c1,
        count_second=c2,
    )
