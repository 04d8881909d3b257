"""Readers of in-the-wild (authentically distorted) photo datasets: KonIQ-10k, SPAQ, LIVE Challenge and the
VQualA 2025 face challenge. No reference images; ``mos`` is higher = better on each dataset's own scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from perceptiq.data.readers._common import (
    DATASETS,
    ColumnMap,
    FolderIndex,
    cell_strings,
    column_strings,
    dataset_root,
    find_label_file,
    finish,
    image_folder,
    load_label_table,
    load_mat_variable,
    map_columns,
)
from perceptiq.errors import DataFileError
from perceptiq.io.tables import ID_CANDIDATES, MOS_CANDIDATES, pick_column, std_column

__all__ = ["read_koniq10k", "read_spaq", "read_live_challenge", "read_face_challenge"]

_KONIQ_SETS = {"training": "train", "train": "train", "validation": "val", "val": "val", "test": "test"}


@DATASETS.register("koniq10k")
def read_koniq10k(
    root: str | Path,
    *,
    label_file: str | None = None,
    image_dir: str = "1024x768",
    columns: ColumnMap | None = None,
    check_files: bool = True,
) -> pd.DataFrame:
    """KonIQ-10k (Hosu et al., IEEE TIP 2020): 10,073 in-the-wild photos, MOS 1-5, higher = better.

    Published layout::

        root/koniq10k_scores_and_distributions.csv   image_name, c1..c5 (votes per level), c_total,
                                                     MOS, SD, MOS_zscore
        root/koniq10k_distributions_sets.csv         the same columns plus ``set``
        root/1024x768/<image_name>                   the images (``512x384/`` holds half-size copies)

    The first of the two label files found is read (or ``label_file``). ``mos`` = MOS, ``mos_std`` = SD
    (the standard deviation of the ratings, same 1-5 scale). MOS_zscore is the 0-100 rescaling; to train
    on it pass ``columns={"mos": "MOS_zscore", "mos_std": None}``. A ``set`` column (training /
    validation / test) becomes ``split`` (train / val / test).
    """
    base = dataset_root(root)
    names = (
        (label_file,)
        if label_file
        else (
            "koniq10k_scores_and_distributions.csv",
            "koniq10k_distributions_sets.csv",
        )
    )
    source = find_label_file(base, names, "KonIQ-10k label file")
    table = load_label_table(source)
    cols = map_columns(
        table,
        source,
        {"image": "image_name", "mos": "MOS", "mos_std": "SD", "split": "set"},
        columns,
        optional=("mos_std", "split"),
    )
    folder = FolderIndex(base / image_dir)
    split = None
    if cols["split"] is not None:
        raw = table[cols["split"]].astype(str).str.strip().str.lower()
        split = [_KONIQ_SETS.get(v, v) for v in raw]
    return finish(
        {
            "image": [folder.find(n) for n in column_strings(table, cols["image"])],
            "mos": table[cols["mos"]],
            "mos_std": None if cols["mos_std"] is None else table[cols["mos_std"]],
            "split": split,
        },
        dataset="koniq10k",
        source=source,
        check_files=check_files,
    )


@DATASETS.register("spaq")
def read_spaq(
    root: str | Path,
    *,
    label_file: str | None = None,
    image_dir: str = "TestImage",
    sheet: str | int = 0,
    columns: ColumnMap | None = None,
    check_files: bool = True,
) -> pd.DataFrame:
    """SPAQ (Fang et al., CVPR 2020): 11,125 smartphone photos, MOS 0-100, higher = better.

    Published layout (as we know the release; pass ``label_file``/``image_dir`` if yours differs)::

        root/Annotations/MOS and Image attribute scores.xlsx   Image name, MOS, Brightness,
                                                               Colorfulness, Contrast, Noisiness, Sharpness
        root/TestImage/<Image name>                            the photos (00001.jpg ...)

    A CSV export of the sheet (same columns, ``.csv`` beside the ``.xlsx``) is read when the workbook is
    absent; reading ``.xlsx`` needs openpyxl. No rating standard deviations are published.
    """
    base = dataset_root(root)
    stem = "MOS and Image attribute scores"
    names = (
        (label_file,)
        if label_file
        else tuple(f"{folder}{stem}{ext}" for folder in ("Annotations/", "") for ext in (".xlsx", ".csv"))
    )
    source = find_label_file(base, names, "SPAQ label file")
    table = load_label_table(source, sheet=sheet)
    cols = map_columns(table, source, {"image": "Image name", "mos": "MOS"}, columns)
    folder = FolderIndex(base / image_dir)
    return finish(
        {"image": [folder.find(n) for n in column_strings(table, cols["image"])], "mos": table[cols["mos"]]},
        dataset="spaq",
        source=source,
        check_files=check_files,
    )


@DATASETS.register("live-challenge")
def read_live_challenge(
    root: str | Path,
    *,
    include_training: bool = False,
    check_files: bool = True,
) -> pd.DataFrame:
    """LIVE In the Wild Image Quality Challenge (Ghadiyaram and Bovik, IEEE TIP 2016): MOS 0-100, higher
    = better.

    Published layout (the release's readme)::

        root/Data/AllImages_release.mat    cell array AllImages_release: 1,169 image names
        root/Data/AllMOS_release.mat       AllMOS_release: the MOS of each, same order
        root/Data/AllStdDev_release.mat    AllStdDev_release: the std of the raw ratings, same order
        root/Images/<name>                 the 1,162 test images (500x500)
        root/Images/trainingImages/<name>  the 7 images used to train the subjects

    The 7 training images (listed in the .mat files, stored under ``trainingImages``) are dropped
    unless ``include_training``. A file holding one variable under another name is accepted.
    """
    base = dataset_root(root)
    data = base / "Data"
    names_path = data / "AllImages_release.mat"
    names = cell_strings(load_mat_variable(names_path, "AllImages_release"), names_path)
    values = {}
    for column, stem in (("mos", "AllMOS_release"), ("mos_std", "AllStdDev_release")):
        path = data / f"{stem}.mat"
        arr = load_mat_variable(path, stem).astype(np.float64, copy=False).ravel(order="F")
        if arr.size != len(names):
            raise DataFileError(
                path, f"has {arr.size} values but {names_path.name} lists {len(names)} images"
            )
        values[column] = arr
    images, training = FolderIndex(base / "Images"), FolderIndex(base / "Images" / "trainingImages")
    paths, keep = [], []
    for name in names:
        path = images.find(name)
        is_training = not path.is_file() and training.find(name).is_file()
        if is_training:
            path = training.find(name)
        paths.append(path)
        keep.append(include_training or not is_training)
    keep_arr = np.asarray(keep)
    return finish(
        {
            "image": [p for p, k in zip(paths, keep, strict=True) if k],
            "mos": values["mos"][keep_arr],
            "mos_std": values["mos_std"][keep_arr],
        },
        dataset="live-challenge",
        source=names_path,
        check_files=check_files,
    )


@DATASETS.register("face-challenge")
def read_face_challenge(
    root: str | Path,
    *,
    label_file: str | None = None,
    image_dir: str | None = None,
    columns: ColumnMap | None = None,
    split: str | None = None,
    check_files: bool = True,
) -> pd.DataFrame:
    """VQualA 2025 face image quality challenge (MobileNetV2 baseline count): face photos with pseudo-MOS,
    higher
    = better.

    The organisers' archive layout is not documented anywhere we could read, so this reader assumes the
    common form of such releases and says so: a label table (CSV, TSV, JSONL, JSON, Parquet or xlsx) with
    one row per image holding the image file name and its MOS, and the images in one folder::

        root/<label file>          first found of train.csv, train_labels.csv, labels.csv, mos.csv,
                                   gt.csv, ground_truth.csv (or ``label_file``)
        root/<image folder>/<name> first of train/, images/, root itself holding the first image
                                   (or ``image_dir``)

    Columns are recognised by name (image: image, img, img_path, image_name, name, filename, ...; MOS:
    mos, gt, label, score, ...; std: mos_std, std, sd) unless ``columns`` names them. ``split`` fills
    the split column (e.g. ``"train"``).
    """
    base = dataset_root(root)
    names = (
        (label_file,)
        if label_file
        else (
            "train.csv",
            "train_labels.csv",
            "labels.csv",
            "mos.csv",
            "gt.csv",
            "ground_truth.csv",
        )
    )
    source = find_label_file(base, names, "face challenge label table")
    table = load_label_table(source)
    chosen = dict(columns or {})
    defaults = {
        "image": chosen.get("image") or pick_column(table, source, None, ID_CANDIDATES, "id"),
    }
    defaults["mos"] = chosen.get("mos") or pick_column(
        table, source, None, MOS_CANDIDATES, "MOS", exclude=(defaults["image"],)
    )
    std = std_column(table)
    defaults["mos_std"] = std if std is not None else "mos_std"
    cols = map_columns(table, source, defaults, columns, optional=("mos_std",))
    image_names = column_strings(table, cols["image"])
    folder = image_folder(base, image_dir, ("train", "images", ""), image_names[0])
    return finish(
        {
            "image": [folder.find(n) for n in image_names],
            "mos": table[cols["mos"]],
            "mos_std": None if cols["mos_std"] is None else table[cols["mos_std"]],
            "split": None if split is None else [split] * len(table),
        },
        dataset="face-challenge",
        source=source,
        check_files=check_files,
    )
