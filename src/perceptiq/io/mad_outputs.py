"""Read the method outputs of a MAD competition from disk and write the selected pairs (CSV or JSON).

Two layouts of ``OUTPUTS_DIR`` are recognised:

* **manifest**: a CSV file, or a folder holding ``manifest.csv``. Columns (case-insensitive)
  ``input, method, path`` and optionally ``lr`` (the LR input of the row) and ``dataset``; or the
  layout ``path, role, method, image_id`` plus ``input``
  (the LR path) and ``dataset``, of which the ``role == "sr_output"`` rows are used, ``image_id``
  naming the input. Relative paths are relative to the manifest's folder. When the manifest holds
  several datasets, one must be chosen (``dataset=``).
* **folders**: one sub-folder per method holding one image per input, matched by file name without
  the suffix (``DIR/<method>/<input>.png``); a sub-folder named ``lr`` (``lr_folder=``) holds the LR
  inputs instead of a method's outputs.

Methods and inputs keep the manifest's order of first appearance, or sorted folder and file names.
Every method must have an output for every input. The LR image of an input is the ``lr`` of its row
for the first method (methods may have been run on different LR versions, e.g. Set5 for RCAN).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import torch

from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images import find_images, load_images, read_image
from perceptiq.io.tables import read_table
from perceptiq.ranking.mad import MadPairs

__all__ = ["PAIR_COLUMNS", "MadInputs", "read_outputs_dir", "pair_rows", "write_pairs"]

PAIR_COLUMNS = (
    "pair_id",
    "method_a",
    "method_b",
    "input",
    "path_a",
    "path_b",
    "d1",
    "d2_mean",
    "objective",
    "rank_in_pair",
)
"""Columns of the pair list, in file order."""

_GENERIC = ("input", "method", "path")
_SHARED = ("path", "role", "method", "image_id")


@dataclass(frozen=True, eq=False)
class MadInputs:
    """Method outputs on a grid of inputs, as found on disk.

    Attributes:
        source: the folder or manifest file that was read.
        layout: ``"manifest"`` or ``"folders"``.
        methods: method names.
        inputs: input names.
        paths: ``paths[i][m]`` is the output of method ``m`` for input ``i``.
        lr_paths: the LR image of each input, or None when some input has none.
    """

    source: Path
    layout: Literal["manifest", "folders"]
    methods: tuple[str, ...]
    inputs: tuple[str, ...]
    paths: tuple[tuple[Path, ...], ...]
    lr_paths: tuple[Path, ...] | None

    def load_outputs(self, i: int) -> torch.Tensor:
        """The outputs of every method for input ``i``: (n_methods, 3, H, W) float in [0, 1] (decoded in
        up to 4 threads).

        Raises:
            DataFileError: a file cannot be decoded or differs in size from the first method's output.
        """
        images = []
        for item in load_images(self.paths[i], workers=min(4, len(self.paths[i])), channels="rgb"):
            if item.error is not None:
                raise item.error
            images.append(item.image)
        first = images[0].shape[-2:]
        for path, image in zip(self.paths[i], images, strict=True):
            if image.shape[-2:] != first:
                raise DataFileError(
                    path,
                    f"is {image.shape[-1]}x{image.shape[-2]} but {self.paths[i][0]} is "
                    f"{first[1]}x{first[0]}; the outputs for input {self.inputs[i]!r} must have one size",
                )
        return torch.cat(images)

    def load_lr(self, i: int) -> torch.Tensor:
        """The LR image of input ``i``, (1, 3, h, w) float in [0, 1]."""
        if self.lr_paths is None:
            raise InputError(f"{self.source}: no LR image is listed for the inputs")
        return read_image(self.lr_paths[i], channels="rgb")


def _read_manifest(path: Path) -> pd.DataFrame:
    frame = read_table(path, as_text=True)
    frame.columns = [c.strip().lower() for c in frame.columns]
    return frame


def _pick_dataset(frame: pd.DataFrame, path: Path, dataset: str | None) -> pd.DataFrame:
    if "dataset" not in frame.columns:
        if dataset is not None:
            raise DataFileError(path, f"has no 'dataset' column to select {dataset!r} from")
        return frame
    names = list(dict.fromkeys(frame["dataset"]))
    if dataset is None:
        if len(names) > 1:
            raise DataFileError(path, f"holds several datasets ({', '.join(names)}); choose one (--dataset)")
        return frame
    if dataset not in names:
        raise DataFileError(path, f"has no dataset {dataset!r} (datasets: {', '.join(names)})")
    return frame[frame["dataset"] == dataset]


def _manifest_inputs(path: Path, dataset: str | None) -> MadInputs:
    frame = _read_manifest(path)
    cols = set(frame.columns)
    if set(_SHARED) <= cols:
        frame = frame[frame["role"].str.strip() == "sr_output"]
        input_col, lr_col = "image_id", ("input" if "input" in cols else None)
    elif set(_GENERIC) <= cols:
        input_col, lr_col = "input", ("lr" if "lr" in cols else None)
    else:
        raise DataFileError(
            path,
            "needs columns input, method, path (optional lr, dataset) or the sr_outputs layout "
            f"path, role, method, image_id; found {', '.join(frame.columns)}",
        )
    frame = _pick_dataset(frame, path, dataset)
    if frame.empty:
        raise DataFileError(path, "lists no method outputs")
    base = path.parent
    cells: dict[tuple[str, str], tuple[Path, Path | None]] = {}
    for line, row in zip(frame.index + 2, frame.itertuples(index=False), strict=True):
        rec = row._asdict()
        key = (str(rec[input_col]).strip(), str(rec["method"]).strip())
        if not key[0] or not key[1] or not str(rec["path"]).strip():
            raise DataFileError(path, f"line {line}: empty {input_col}, method or path")
        if key in cells:
            raise DataFileError(path, f"line {line}: a second row for input {key[0]!r}, method {key[1]!r}")
        lr = str(rec[lr_col]).strip() if lr_col is not None else ""
        cells[key] = (base / str(rec["path"]).strip(), base / lr if lr else None)
    inputs = tuple(dict.fromkeys(i for i, _ in cells))
    methods = tuple(dict.fromkeys(m for _, m in cells))
    return _grid(path, "manifest", inputs, methods, cells)


def _grid(
    source: Path,
    layout: Literal["manifest", "folders"],
    inputs: tuple[str, ...],
    methods: tuple[str, ...],
    cells: dict[tuple[str, str], tuple[Path, Path | None]],
) -> MadInputs:
    if len(methods) < 2:
        raise DataFileError(source, f"MAD needs outputs of at least 2 methods, found {len(methods)}")
    paths = []
    lrs: list[Path | None] = []
    for name in inputs:
        row = []
        for method in methods:
            if (name, method) not in cells:
                raise DataFileError(source, f"method {method!r} has no output for input {name!r}")
            row.append(cells[name, method][0])
        paths.append(tuple(row))
        lrs.append(next((cells[name, m][1] for m in methods if cells[name, m][1] is not None), None))
    for p in (q for row in paths for q in row):
        if not p.is_file():
            raise DataFileError(p, f"listed in {source} but not found")
    lr_paths = None if any(p is None for p in lrs) else tuple(p for p in lrs if p is not None)
    for p in lr_paths or ():
        if not p.is_file():
            raise DataFileError(p, f"LR image listed in {source} but not found")
    return MadInputs(source, layout, methods, inputs, tuple(paths), lr_paths)


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for f in find_images(folder, recursive=False):
        if f.stem in files:
            raise DataFileError(folder, f"two images named {f.stem!r}: {files[f.stem].name}, {f.name}")
        files[f.stem] = f
    return files


def _folder_inputs(root: Path, lr_folder: str) -> MadInputs:
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    method_dirs = [d for d in subdirs if d.name != lr_folder]
    if not method_dirs:
        raise DataFileError(root, "has no manifest.csv and no method sub-folders (DIR/<method>/<input>.png)")
    files = {d.name: _by_stem(d) for d in method_dirs}
    for name, found in files.items():
        if not found:
            raise DataFileError(root / name, "holds no images")
    inputs = tuple(sorted(set().union(*(f.keys() for f in files.values()))))
    lr = _by_stem(root / lr_folder) if (root / lr_folder).is_dir() else {}
    for name in inputs if lr else ():
        if name not in lr:
            raise DataFileError(root / lr_folder, f"has no LR image for input {name!r}")
    cells = {(i, m): (f[i], lr.get(i)) for m, f in files.items() for i in f}
    for i in inputs:
        for m in files:
            if (i, m) not in cells:
                raise DataFileError(root / m, f"has no image named {i!r} (found for other methods)")
    return _grid(root, "folders", inputs, tuple(files), cells)


def read_outputs_dir(path: str | Path, *, dataset: str | None = None, lr_folder: str = "lr") -> MadInputs:
    """Find the method outputs under ``path`` (a manifest CSV, a folder with ``manifest.csv``, or
    method sub-folders; see the module docstring).

    Raises:
        DataFileError: the path does not exist, the layout is not recognised, an output is missing
            for some (method, input), or a listed file does not exist.
    """
    p = Path(path)
    if p.is_file():
        return _manifest_inputs(p, dataset)
    if not p.is_dir():
        raise DataFileError(p, "no such file or folder")
    if (p / "manifest.csv").is_file():
        return _manifest_inputs(p / "manifest.csv", dataset)
    if dataset is not None:
        raise DataFileError(p, f"has no manifest.csv to select dataset {dataset!r} from")
    return _folder_inputs(p, lr_folder)


def pair_rows(result: MadPairs, inputs: MadInputs) -> list[dict[str, object]]:
    """The selected pairs as rows with the :data:`PAIR_COLUMNS` (``d2_mean`` None for a pair's first pick)."""
    rows = []
    for rec in result.records():
        i = int(rec["input_index"])  # type: ignore[call-overload]
        a = result.methods.index(str(rec["method_a"]))
        b = result.methods.index(str(rec["method_b"]))
        rec = rec | {"path_a": str(inputs.paths[i][a]), "path_b": str(inputs.paths[i][b])}
        rows.append({c: rec[c] for c in PAIR_COLUMNS})
    return rows


def _write_csv(path: Path, rows: Iterable[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PAIR_COLUMNS)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)


def write_pairs(
    result: MadPairs, inputs: MadInputs, path: str | Path, *, meta: dict[str, object] | None = None
) -> list[dict[str, object]]:
    """Write the pair list to ``path``: ``.csv`` (one row per selected pair and input, an empty
    ``d2_mean`` for a first pick) or ``.json`` (an object with the settings, ``methods``, ``inputs``
    and ``pairs``: the same rows, ``d2_mean`` null for a first pick). Returns the rows."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise InputError(f"{out}: the pair list is written as .csv or .json, not {suffix or 'no suffix'!r}")
    rows = pair_rows(result, inputs)
    try:
        if suffix == ".csv":
            _write_csv(out, rows)
        else:
            payload = {
                "metric": result.metric,
                "metric_lower_is_better": result.lower_is_better,
                **result.options,
                **(meta or {}),
                "source": str(inputs.source),
                "methods": list(result.methods),
                "inputs": list(result.inputs),
                "pairs": rows,
            }
            out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise DataFileError(out, f"cannot write the pair list ({err.strerror or err})") from None
    return rows
