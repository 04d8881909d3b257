"""Readers of full-reference datasets with synthetic distortions: KADID-10k, CSIQ, TID2013 and PIPAL.

Each row carries its pristine reference in ``ref`` and the distortion code in ``method``; ``mos`` is
higher = better on each dataset's own scale (CSIQ's DMOS is flipped, see :func:`read_csiq`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from perceptiq.data.readers._common import (
    DATASETS,
    ColumnMap,
    FolderIndex,
    column_strings,
    dataset_root,
    find_label_file,
    finish,
    load_label_table,
    map_columns,
)
from perceptiq.errors import DataFileError

__all__ = ["CSIQ_DISTORTIONS", "read_kadid10k", "read_csiq", "read_tid2013", "read_pipal"]

CSIQ_DISTORTIONS: dict[str, tuple[str, str]] = {
    "noise": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg 2000": ("jpeg2000", "jpeg2000"),
    "f noise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}
"""CSIQ ``dst_type`` label -> (folder under ``dst_imgs/``, distortion tag in the file name)."""


def _code(name: str, field: int, pattern: str) -> str | None:
    parts = Path(name).stem.split("_")
    return parts[field] if re.fullmatch(pattern, Path(name).stem) else None


@DATASETS.register("kadid10k")
def read_kadid10k(
    root: str | Path,
    *,
    label_file: str = "dmos.csv",
    image_dir: str = "images",
    columns: ColumnMap | None = None,
    check_files: bool = True,
) -> pd.DataFrame:
    """KADID-10k (Lin, Hosu and Saupe, QoMEX 2019): 81 references x 25 distortions x 5 levels.

    Published layout::

        root/dmos.csv              dist_img, ref_img, dmos, var
        root/images/I01_03_02.png  distorted image: reference 01, distortion type 03, level 02
        root/images/I01.png        the references, in the same folder

    ``mos`` = dmos, which despite its name is a mean degradation-category rating on 1-5 (higher = better);
    ``mos_std`` = sqrt(var) (var = variance of the ratings). ``method`` = the two-digit distortion type of
    the file name (``"03"``).
    """
    base = dataset_root(root)
    source = find_label_file(base, (label_file,), "KADID-10k label file")
    table = load_label_table(source)
    cols = map_columns(
        table,
        source,
        {"image": "dist_img", "ref": "ref_img", "mos": "dmos", "mos_std": "var"},
        columns,
        optional=("mos_std",),
    )
    folder = FolderIndex(base / image_dir)
    names = column_strings(table, cols["image"])
    std = None
    if cols["mos_std"] is not None:
        var = pd.to_numeric(table[cols["mos_std"]], errors="coerce").to_numpy(np.float64)
        if (var < 0).any():
            raise DataFileError(source, f"column {cols['mos_std']!r} holds negative variances")
        std = np.sqrt(var)
    return finish(
        {
            "image": [folder.find(n) for n in names],
            "ref": [folder.find(n) for n in column_strings(table, cols["ref"])],
            "mos": table[cols["mos"]],
            "mos_std": std,
            "method": [_code(n, 1, r"I\d+_\d+_\d+") for n in names],
        },
        dataset="kadid10k",
        source=source,
        check_files=check_files,
    )


@DATASETS.register("csiq")
def read_csiq(
    root: str | Path,
    *,
    label_file: str | None = None,
    sheet: str | int = "all_by_image",
    columns: ColumnMap | None = None,
    check_files: bool = True,
) -> pd.DataFrame:
    """CSIQ (Larson and Chandler, J. Electron. Imaging 2010): 30 references x 6 distortions x 4-5 levels.

    Published layout (as we know the release; the workbook's header row is taken as the column names)::

        root/csiq.DMOS.xlsx                         sheet all_by_image: image, dst_idx, dst_type,
                                                    dst_lev, dmos_std, dmos
        root/src_imgs/<image>.png                   the references
        root/dst_imgs/<folder>/<image>.<TAG>.<lev>.png  distorted images, e.g. dst_imgs/awgn/1600.AWGN.1.png

    ``dst_type`` -> (folder, TAG) follows :data:`CSIQ_DISTORTIONS`; files are matched without regard
    to case anywhere below ``dst_imgs``. A CSV export of the sheet (``csiq.DMOS.csv``) is read when the
    workbook is absent. CSIQ publishes a DMOS in [0, 1] (lower = better); ``mos`` = 1 - dmos so that
    higher is better like every other manifest, and ``mos_std`` = dmos_std. ``method`` = dst_type.
    """
    base = dataset_root(root)
    names = (label_file,) if label_file else ("csiq.DMOS.xlsx", "csiq.DMOS.csv")
    source = find_label_file(base, names, "CSIQ label file")
    table = load_label_table(source, sheet=sheet)
    cols = map_columns(
        table,
        source,
        {"image": "image", "method": "dst_type", "level": "dst_lev", "mos": "dmos", "mos_std": "dmos_std"},
        columns,
        optional=("mos_std",),
    )
    refs, dists = FolderIndex(base / "src_imgs"), FolderIndex(base / "dst_imgs", recursive=True)
    images, ref_paths, methods = [], [], []
    for row, (name, kind, level) in enumerate(
        zip(
            column_strings(table, cols["image"]),
            column_strings(table, cols["method"]),
            table[cols["level"]],
            strict=True,
        )
    ):
        key = kind.lower()
        if key not in CSIQ_DISTORTIONS:
            raise DataFileError(
                source, f"row {row + 2}: unknown dst_type {kind!r} (known: {', '.join(CSIQ_DISTORTIONS)})"
            )
        folder, tag = CSIQ_DISTORTIONS[key]
        lev = int(float(level))
        found = dists.find(f"{name}.{tag}.{lev}.png")
        images.append(found if found.is_file() else base / "dst_imgs" / folder / f"{name}.{tag}.{lev}.png")
        ref_paths.append(refs.find(f"{name}.png"))
        methods.append(key)
    dmos = pd.to_numeric(table[cols["mos"]], errors="coerce").to_numpy(np.float64)
    if np.isnan(dmos).any():
        raise DataFileError(source, f"column {cols['mos']!r} has missing or non-numeric values")
    return finish(
        {
            "image": images,
            "ref": ref_paths,
            "mos": 1.0 - dmos,
            "mos_std": None if cols["mos_std"] is None else table[cols["mos_std"]],
            "method": methods,
        },
        dataset="csiq",
        source=source,
        check_files=check_files,
    )


def _parse_tid_line(line: str, path: Path, number: int) -> tuple[float, str]:
    fields = line.split()
    if len(fields) != 2:
        raise DataFileError(path, f"line {number}: expected '<MOS> <image name>', got {line.strip()!r}")
    for a, b in (fields, fields[::-1]):
        try:
            return float(a), b
        except ValueError:
            continue
    raise DataFileError(path, f"line {number}: no numeric MOS in {line.strip()!r}")


@DATASETS.register("tid2013")
def read_tid2013(root: str | Path, *, check_files: bool = True) -> pd.DataFrame:
    """TID2013 (Ponomarenko et al., Signal Process. Image Commun. 2015): 25 references x 24 distortions
    x 5 levels.

    Published layout::

        root/mos_with_names.txt             one line per image: "<MOS> <name>", e.g. "5.51429 i01_01_1.bmp"
        root/mos_std.txt                    optional: the std of each MOS, one per line, same order
        root/distorted_images/iXX_YY_Z.bmp  reference XX, distortion type YY, level Z
        root/reference_images/IXX.BMP       the references

    MOS is in [0, 9], higher = better. File names are matched without regard to case (the release mixes
    ``I01.BMP`` and ``i25.bmp``). ``method`` = the two-digit distortion type (``"01"`` .. ``"24"``).
    """
    base = dataset_root(root)
    source = find_label_file(base, ("mos_with_names.txt",), "TID2013 label file")
    lines = [
        (k, ln) for k, ln in enumerate(source.read_text(encoding="latin-1").splitlines(), 1) if ln.strip()
    ]
    if not lines:
        raise DataFileError(source, "file is empty")
    parsed = [_parse_tid_line(line, source, k) for k, line in lines]
    std = None
    std_path = base / "mos_std.txt"
    if std_path.is_file():
        try:
            std = [float(v) for v in std_path.read_text(encoding="latin-1").split()]
        except ValueError as err:
            raise DataFileError(std_path, f"non-numeric value ({err})") from err
        if len(std) != len(parsed):
            raise DataFileError(
                std_path, f"has {len(std)} values but {source.name} lists {len(parsed)} images"
            )
    dists, refs = FolderIndex(base / "distorted_images"), FolderIndex(base / "reference_images")
    names = [name for _, name in parsed]
    pattern = r"[iI]\d+_\d+_\d+"
    return finish(
        {
            "image": [dists.find(n) for n in names],
            "ref": [refs.find(f"I{n[1:3]}.BMP") for n in names],
            "mos": [m for m, _ in parsed],
            "mos_std": std,
            "method": [_code(n, 1, pattern) for n in names],
        },
        dataset="tid2013",
        source=source,
        check_files=check_files,
    )


@DATASETS.register("pipal")
def read_pipal(
    root: str | Path,
    *,
    label_dir: str = "Train_Label",
    dist_dir: str = "Train_Dis",
    ref_dir: str = "Train_Ref",
    split: str = "train",
    check_files: bool = True,
) -> pd.DataFrame:
    """PIPAL (Jinjin et al., ECCV 2020; NTIRE 2021/2022 perceptual IQA challenges): 200 references x 116
    distortions incl. GAN-based super-resolution, Elo scores (higher = better).

    Published layout of the training release (the validation/test parts have no public labels)::

        root/Train_Ref/A0001.bmp                    the references
        root/Train_Dis/A0001_00_00.bmp              distorted images (found anywhere below Train_Dis)
        root/Train_Label/A0001.txt                  one line per distorted image: "A0001_00_00.bmp,1445.2"

    ``ref`` = the reference named by the part before the first underscore; ``method`` = the distortion
    code of the file name (``"00_00"``: the two fields after the reference id).
    """
    base = dataset_root(root)
    labels = base / label_dir
    files = sorted(labels.glob("*.txt")) if labels.is_dir() else []
    if not files:
        raise DataFileError(labels, "PIPAL label folder not found or holds no .txt files")
    names, scores = [], []
    for path in files:
        for k, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split(",")]
            try:
                score = float(fields[1]) if len(fields) == 2 else None
            except ValueError:
                score = None
            if score is None:
                raise DataFileError(path, f"line {k}: expected '<image name>,<score>', got {line.strip()!r}")
            names.append(fields[0])
            scores.append(score)
    dists, refs = FolderIndex(base / dist_dir, recursive=True), FolderIndex(base / ref_dir)
    stems = [Path(n).stem.split("_") for n in names]
    return finish(
        {
            "image": [dists.find(n) for n in names],
            "ref": [refs.find(f"{s[0]}{Path(n).suffix}") for s, n in zip(stems, names, strict=True)],
            "mos": scores,
            "method": ["_".join(s[1:]) or None for s in stems],
            "split": [split] * len(names),
        },
        dataset="pipal",
        source=labels,
        check_files=check_files,
    )
