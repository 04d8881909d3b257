"""Readers of generated-content datasets: AGIQA-3K, EvalMuse-40K, EvalMuse-Structure (text-to-image) and
ISRGen-QA (super-resolution outputs with their LR and HR references).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from perceptiq.data.readers._common import (
    DATASETS,
    ColumnMap,
    FolderIndex,
    column_strings,
    dataset_root,
    find_label_file,
    finish,
    image_folder,
    load_label_table,
    map_columns,
)
from perceptiq.data.readers.annotations import rasterise_annotations
from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images import probe_image, save_image

__all__ = [
    "read_agiqa3k",
    "read_evalmuse40k",
    "read_evalmuse_structure",
    "read_isrgen_qa",
    "parse_isrgen_line",
]

_AGIQA_TARGETS = {"quality": ("mos_quality", "std_quality"), "alignment": ("mos_align", "std_align")}
_EVALMUSE_FILES = {"train": "train_list.json", "test": "test.json"}
_ISRGEN_NAME = re.compile(r"^(?P<method>.+?)(?:_x(?P<scale>\d+))?_(?P<tail>[^_]+)$")


@DATASETS.register("agiqa3k")
def read_agiqa3k(
    root: str | Path,
    *,
    target: str = "quality",
    label_file: str = "data.csv",
    image_dir: str | None = None,
    columns: ColumnMap | None = None,
    check_files: bool = True,
) -> pd.DataFrame:
    """AGIQA-3K (Li et al., IEEE TCSVT 2023): 2,982 images of 6 text-to-image models, MOS higher = better.

    Published layout::

        root/data.csv          name, prompt, adj1, adj2, style, mos_quality, std_quality, mos_align,
                               std_align
        root/<images>/<name>   the images, e.g. AttnGAN_normal_000.jpg; the folder is the first of
                               AGIQA-3K/, images/, root itself that holds the first image (or ``image_dir``)

    ``target="quality"`` reads mos_quality / std_quality (perceptual quality), ``"alignment"`` reads
    mos_align / std_align (text-image correspondence). ``method`` = the generator, the file-name part
    before the first underscore.
    """
    if target not in _AGIQA_TARGETS:
        raise InputError(f"target must be one of {sorted(_AGIQA_TARGETS)}, got {target!r}")
    base = dataset_root(root)
    source = find_label_file(base, (label_file,), "AGIQA-3K label file")
    table = load_label_table(source)
    mos, std = _AGIQA_TARGETS[target]
    cols = map_columns(
        table,
        source,
        {"image": "name", "prompt": "prompt", "mos": mos, "mos_std": std},
        columns,
        optional=("mos_std",),
    )
    names = column_strings(table, cols["image"])
    folder = image_folder(base, image_dir, ("AGIQA-3K", "images", ""), names[0])
    return finish(
        {
            "image": [folder.find(n) for n in names],
            "mos": table[cols["mos"]],
            "mos_std": None if cols["mos_std"] is None else table[cols["mos_std"]],
            "prompt": [str(p) for p in table[cols["prompt"]]],
            "method": [n.split("_")[0] for n in names],
        },
        dataset="agiqa3k",
        source=source,
        check_files=check_files,
    )


def _mean_and_std(value: object, where: str) -> tuple[float, float]:
    """Mean and sample std (ddof = 1; NaN for fewer than two ratings) of a score or a list of scores."""
    if value is None:
        return math.nan, math.nan
    try:
        values = None if isinstance(value, str) else np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 1 or values.size == 0:
        raise InputError(f"{where}: expected a number or a list of numbers, got {value!r}")
    std = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
    return float(values.mean()), std


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFileError(path, f"not valid JSON: {err}") from err


def _check_parts(parts: Sequence[str], known: Sequence[str]) -> None:
    """``parts`` must be a non-empty subset of ``known`` (the label files of a release)."""
    if not parts or set(parts) - set(known):
        raise InputError(f"parts must be a non-empty subset of {sorted(known)}, got {list(parts)}")


def _read_json_records(path: Path) -> list[dict]:
    records = _read_json(path)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataFileError(path, "expected a JSON list of records")
    if not records:
        raise DataFileError(path, "lists no images")
    return records


@DATASETS.register("evalmuse40k")
def read_evalmuse40k(
    root: str | Path,
    *,
    parts: Sequence[str] = ("train",),
    check_files: bool = True,
) -> pd.DataFrame:
    """EvalMuse-40K (Han et al., 2024; NTIRE 2025 T2I alignment track, EvalMuse eval.py): alignment scores
    1-5.

    Published layout::

        root/train_list.json   list of {prompt, img_path, total_score, element_score, ...}
        root/test.json         the same records without scores (``parts=("test",)``)
        root/<img_path>        the images (img_path is taken relative to root, else to root/images)

    In train_list.json ``total_score`` is the list of the annotators' 1-5 ratings and ``element_score``
    maps ``"<element> (<category>)"`` to the annotators' 0/1 presence labels; the organisers'
    ``process_train.py`` averages both. So ``mos`` = mean of total_score, ``mos_std`` = its sample std
    (ddof = 1; NaN with a single rating) and ``elements`` = JSON of the per-element means. Already
    averaged files (numbers instead of lists) read the same, without ``mos_std``. ``split`` = the part.
    """
    base = dataset_root(root)
    _check_parts(parts, tuple(_EVALMUSE_FILES))
    columns: dict[str, list] = {k: [] for k in ("image", "mos", "mos_std", "prompt", "elements", "split")}
    sources = []
    images_dir = base / "images"
    for part in parts:
        source = find_label_file(base, (_EVALMUSE_FILES[part],), f"EvalMuse-40K {part} list")
        sources.append(source)
        for k, rec in enumerate(_read_json_records(source)):
            where = f"{source}: record {k}"
            if "img_path" not in rec:
                raise DataFileError(source, f"record {k} has no 'img_path'")
            rel = str(rec["img_path"])
            path = base / rel
            if not path.is_file() and (images_dir / rel).is_file():
                path = images_dir / rel
            mos, std = _mean_and_std(rec.get("total_score"), where)
            raw_elements = rec.get("element_score")
            elements = None
            if raw_elements is not None:
                if not isinstance(raw_elements, dict):
                    raise DataFileError(source, f"record {k}: element_score must be an object")
                elements = json.dumps(
                    {
                        str(key): _mean_and_std(v, f"{where}, element {key!r}")[0]
                        for key, v in raw_elements.items()
                    }
                )
            columns["image"].append(path)
            columns["mos"].append(mos)
            columns["mos_std"].append(std)
            columns["prompt"].append(rec.get("prompt"))
            columns["elements"].append(elements)
            columns["split"].append(part)
    return finish(columns, dataset="evalmuse40k", source=sources[0], check_files=check_files)


@DATASETS.register("evalmuse-structure")
def read_evalmuse_structure(
    root: str | Path,
    *,
    label_file: str = "anno_info.json",
    image_dir: str = "images",
    image_suffix: str = ".jpg",
    mask_dir: str | Path | None = None,
    check_files: bool = True,
) -> pd.DataFrame:
    """EvalMuse-Structure (NTIRE 2025 T2I structure track, EvalMuse-Structure evaluate.py): structure MOS 1-5
    and
    annotated distortion regions.

    Published layout (as the organisers' ``data_process.py`` reads it)::

        root/anno_info.json        {"<image id>": {"prompt_en": .., "mos": .., "bbox_info": [..]}}
        root/images/<image id>.jpg the generated images

    With ``mask_dir`` the annotations are rasterised at the image's displayed size (the header's size
    after EXIF orientation, as ``cv2.imread`` sees it) by
    :func:`~perceptiq.data.readers.annotations.rasterise_annotations` and written as 8-bit grey PNGs
    ``mask_dir/<image id>.png`` (levels 0/64/127/180), whose paths fill ``mask``; a relative
    ``mask_dir`` is taken relative to root. Without it ``mask`` is empty.
    """
    base = dataset_root(root)
    source = find_label_file(base, (label_file,), "EvalMuse-Structure annotation file")
    info = _read_json(source)
    if not isinstance(info, dict) or not info:
        raise DataFileError(source, "expected a non-empty JSON object keyed by image id")
    folder = FolderIndex(base / image_dir)
    masks = None if mask_dir is None else (base / mask_dir)
    columns: dict[str, list] = {k: [] for k in ("image", "mos", "prompt", "mask")}
    for key, rec in info.items():
        if not isinstance(rec, dict) or "mos" not in rec:
            raise DataFileError(source, f"entry {key!r} has no 'mos'")
        image = folder.find(f"{key}{image_suffix}")
        columns["image"].append(image)
        columns["mos"].append(rec["mos"])
        columns["prompt"].append(rec.get("prompt_en", rec.get("prompt")))
        if masks is None:
            columns["mask"].append(None)
            continue
        if not image.is_file():
            raise DataFileError(image, f"image of entry {key!r} in {source} not found")
        height, width = probe_image(image).display_size
        try:
            heatmap = rasterise_annotations(rec.get("bbox_info") or [], height, width)
        except InputError as err:
            raise DataFileError(source, f"entry {key!r}: {err}") from err
        masks.mkdir(parents=True, exist_ok=True)
        out = masks / f"{key}.png"
        save_image(torch.from_numpy(heatmap.astype(np.float64) / 255.0), out)
        columns["mask"].append(out)
    return finish(columns, dataset="evalmuse-structure", source=source, check_files=check_files)


def parse_isrgen_line(line: str) -> tuple[str, float, str]:
    """(SR image name, MOS, LR reference name) of one ISRGen-QA split-file line.

    train.txt/val.txt lines are ``name#MOS#LR_ref`` but test.txt lines are ``name#LR_ref#MOS``
    (Lighting-YXLI/ISRGen-QA README and split files), so the two last fields are told apart by type: the MOS
    is the one that parses
    as a number.
    """
    fields = [f.strip() for f in line.strip().split("#")]
    if len(fields) != 3 or not all(fields):
        raise InputError(f"expected 'name#MOS#LR_ref' or 'name#LR_ref#MOS', got {line.strip()!r}")
    name, a, b = fields
    numbers = []
    for field in (a, b):
        try:
            numbers.append(float(field))
        except ValueError:
            numbers.append(None)
    if (numbers[0] is None) == (numbers[1] is None):
        raise InputError(f"exactly one of {a!r}, {b!r} must be the numeric MOS in {line.strip()!r}")
    return (name, numbers[0], b) if numbers[0] is not None else (name, numbers[1], a)


def _isrgen_method(name: str) -> str:
    match = _ISRGEN_NAME.match(Path(name).stem)
    return match.group("method") if match else Path(name).stem


@DATASETS.register("isrgen-qa")
def read_isrgen_qa(
    root: str | Path,
    *,
    parts: Sequence[str] = ("train", "val", "test"),
    sr_dir: str = "SR",
    lr_dir: str = "LR",
    hr_dir: str = "HR",
    check_files: bool = True,
) -> pd.DataFrame:
    """ISRGen-QA (VQualA 2025 ISRGC-Q challenge, Lighting-YXLI/ISRGen-QA README and split files): 720 SR
    images, MOS 1-5 from 21 raters.

    Published layout (repository Lighting-YXLI/ISRGen-QA: split files, README; images in the archive)::

        root/train.txt, val.txt, test.txt  "name#MOS#LR_ref" (test.txt: "name#LR_ref#MOS")
        root/SR/<name>                     SR outputs, "{method}_x{scale}_{HRref}x{downscale}.png"
        root/LR/<LR_ref>                   the 76 LR inputs, "{HRref}x{downscale}.png" (e.g. 0820x4.png)
        root/HR/<HRref>.png                the 19 HR references (file name assumed: HR id + LR suffix)

    ``lr`` = the LR input, ``ref`` = its HR reference (the LR name up to its last "x"), ``scale`` = the
    downscale factor of the LR name (the SR factor). ``method`` = the SR-image name before ``_x{scale}_``
    and the reference part; some released names lack ``_x{scale}`` or carry another id
    (``SeD_SwinIR-SeD_0884x4.png``, ``BFSR_EDSR-LINF_x4_803x4.png``), which is why the references come
    from the LR_ref field, not the name. ``split`` = the part the line came from.
    """
    base = dataset_root(root)
    _check_parts(parts, ("train", "val", "test"))
    srs, lrs, hrs = FolderIndex(base / sr_dir), FolderIndex(base / lr_dir), FolderIndex(base / hr_dir)
    columns: dict[str, list] = {k: [] for k in ("image", "mos", "lr", "ref", "scale", "method", "split")}
    sources = []
    for part in parts:
        source = find_label_file(base, (f"{part}.txt",), f"ISRGen-QA {part} split file")
        sources.append(source)
        for k, line in enumerate(source.read_text(encoding="utf-8-sig").splitlines(), 1):
            if not line.strip():
                continue
            try:
                name, mos, lr = parse_isrgen_line(line)
            except InputError as err:
                raise DataFileError(source, f"line {k}: {err}") from err
            hr_id, sep, downscale = Path(lr).stem.rpartition("x")
            if not sep or not hr_id or not downscale.isdigit():
                raise DataFileError(
                    source, f"line {k}: LR reference {lr!r} is not '<HR id>x<downscale>.<ext>'"
                )
            columns["image"].append(srs.find(name))
            columns["mos"].append(mos)
            columns["lr"].append(lrs.find(lr))
            columns["ref"].append(hrs.find(f"{hr_id}{Path(lr).suffix}"))
            columns["scale"].append(float(downscale))
            columns["method"].append(_isrgen_method(name))
            columns["split"].append(part)
    return finish(columns, dataset="isrgen-qa", source=sources[0], check_files=check_files)
