"""Dataset readers, content-independent splits and within-dataset pair sampling.

Each reader is run on a miniature copy of its dataset's published layout that the test writes into
tmp_path (a few tiny images, the label files in their published formats); the expected manifest is
built from the values the test wrote. Rasterisation is checked against the worked case of
../shared/docs/protocol_cases and hand-drawn polygons; split and pair properties are checked directly,
pair targets against hand-computed normal probabilities (Phi(1) = 0.841344746..., Phi(-1) = 0.158655254...).
"""

from __future__ import annotations

import doctest
import importlib
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch
from PIL import Image

from conftest import load_case_file, shared_data
from perceptiq.data import (
    MANIFEST_COLUMNS,
    DatasetBatchSampler,
    check_content_split,
    content_split,
    kfold,
    list_datasets,
    rasterise_annotations,
    read_dataset,
    read_isrgen_qa,
    read_koniq10k,
    read_live_challenge,
    read_manifest,
    thurstone_target,
    within_dataset_pairs,
    write_manifest,
)
from perceptiq.data.datasets import parse_isrgen_line
from perceptiq.data.splits import assign_groups
from perceptiq.errors import DataFileError, InputError, RegistryError

PHI_1 = 0.8413447460685429  # standard normal CDF at 1 (printed tables: 0.84134)


def _image(path: Path, size: tuple[int, int] = (6, 5), seed: int = 0) -> Path:
    """A tiny RGB image (width, height) in the format of the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _abs(path: Path) -> str:
    return str(path.resolve())


# ---------------------------------------------------------------------------------------------------
# Builders: write one miniature layout, return (options for the reader, expected manifest columns).


def build_koniq10k(root: Path) -> tuple[dict, dict]:
    names = ["826373.jpg", "4572202.jpg", "10993227.jpg"]
    for k, n in enumerate(names):
        _image(root / "1024x768" / n, seed=k)
    table = pd.DataFrame(
        {
            "image_name": names,
            "c1": [0, 2, 10],
            "c2": [3, 5, 40],
            "c3": [20, 60, 50],
            "c4": [60, 30, 5],
            "c5": [17, 3, 0],
            "c_total": [100, 100, 105],
            "MOS": [3.91, 3.27, 2.47],
            "SD": [0.72, 0.68, 0.69],
            "MOS_zscore": [72.3, 60.1, 40.2],
            "set": ["training", "validation", "test"],
        }
    )
    table.to_csv(root / "koniq10k_distributions_sets.csv", index=False)
    return {}, {
        "image": [_abs(root / "1024x768" / n) for n in names],
        "mos": [3.91, 3.27, 2.47],
        "mos_std": [0.72, 0.68, 0.69],
        "split": ["train", "val", "test"],
    }


def build_kadid10k(root: Path) -> tuple[dict, dict]:
    img = root / "images"
    for k, n in enumerate(["I01.png", "I02.png", "I01_01_01.png", "I01_03_05.png", "I02_25_02.png"]):
        _image(img / n, seed=k)
    pd.DataFrame(
        {
            "dist_img": ["I01_01_01.png", "I01_03_05.png", "I02_25_02.png"],
            "ref_img": ["I01.png", "I01.png", "I02.png"],
            "dmos": [4.57, 1.23, 3.1],
            "var": [0.25, 0.64, 1.0],
        }
    ).to_csv(root / "dmos.csv", index=False)
    return {}, {
        "image": [_abs(img / n) for n in ["I01_01_01.png", "I01_03_05.png", "I02_25_02.png"]],
        "ref": [_abs(img / "I01.png"), _abs(img / "I01.png"), _abs(img / "I02.png")],
        "mos": [4.57, 1.23, 3.1],
        "mos_std": [0.5, 0.8, 1.0],  # sqrt of the variances written above
        "method": ["01", "03", "25"],
    }


def _spaq_layout(root: Path) -> tuple[pd.DataFrame, dict]:
    names = ["00001.jpg", "00002.jpg", "00003.jpg"]
    for k, n in enumerate(names):
        _image(root / "TestImage" / n, seed=k)
    table = pd.DataFrame(
        {
            "Image name": names,
            "MOS": [42.5, 81.0, 12.25],
            "Brightness": [50.0, 60.0, 10.0],
            "Colorfulness": [40.0, 70.0, 20.0],
            "Contrast": [45.0, 65.0, 15.0],
            "Noisiness": [44.0, 75.0, 30.0],
            "Sharpness": [38.0, 80.0, 5.0],
        }
    )
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    return table, {"image": [_abs(root / "TestImage" / n) for n in names], "mos": [42.5, 81.0, 12.25]}


def build_spaq(root: Path) -> tuple[dict, dict]:
    table, expected = _spaq_layout(root)
    table.to_csv(root / "Annotations" / "MOS and Image attribute scores.csv", index=False)
    return {}, expected


def build_live_challenge(root: Path) -> tuple[dict, dict]:
    names = ["t1.bmp", "10.bmp", "100.bmp", "1000.JPG"]
    _image(root / "Images" / "trainingImages" / "t1.bmp")
    for k, n in enumerate(names[1:]):
        _image(root / "Images" / n, seed=k)
    data = root / "Data"
    data.mkdir(parents=True)
    cells = np.empty((len(names), 1), dtype=object)
    cells[:, 0] = names
    scipy.io.savemat(data / "AllImages_release.mat", {"AllImages_release": cells})
    scipy.io.savemat(data / "AllMOS_release.mat", {"AllMOS_release": np.array([[50.0, 63.9, 25.4, 71.2]])})
    scipy.io.savemat(
        data / "AllStdDev_release.mat", {"AllStdDev_release": np.array([[10.0, 18.6, 21.1, 15.3]])}
    )
    return {}, {
        "image": [_abs(root / "Images" / n) for n in names[1:]],
        "mos": [63.9, 25.4, 71.2],
        "mos_std": [18.6, 21.1, 15.3],
    }


def _csiq_layout(root: Path) -> tuple[pd.DataFrame, dict]:
    files = {
        "dst_imgs/awgn/1600.AWGN.1.png": "1600",
        "dst_imgs/jpeg2000/1600.jpeg2000.3.png": "1600",
        "dst_imgs/blur/bridge.BLUR.2.png": "bridge",
        "dst_imgs/fnoise/bridge.fnoise.5.png": "bridge",
    }
    for k, f in enumerate([*files, "src_imgs/1600.png", "src_imgs/bridge.png"]):
        _image(root / f, seed=k)
    table = pd.DataFrame(
        {
            "image": [1600, 1600, "bridge", "bridge"],
            "dst_idx": [1, 5, 2, 4],
            "dst_type": ["noise", "jpeg 2000", "blur", "f noise"],
            "dst_lev": [1, 3, 2, 5],
            "dmos_std": [0.05, 0.11, 0.08, 0.12],
            "dmos": [0.061, 0.482, 0.25, 0.75],
        }
    )
    return table, {
        "image": [_abs(root / f) for f in files],
        "ref": [_abs(root / "src_imgs" / f"{n}.png") for n in files.values()],
        "mos": [0.939, 0.518, 0.75, 0.25],  # 1 - dmos
        "mos_std": [0.05, 0.11, 0.08, 0.12],
        "method": ["noise", "jpeg 2000", "blur", "f noise"],
    }


def build_csiq(root: Path) -> tuple[dict, dict]:
    table, expected = _csiq_layout(root)
    table.to_csv(root / "csiq.DMOS.csv", index=False)
    return {}, expected


def build_tid2013(root: Path) -> tuple[dict, dict]:
    dist, ref = root / "distorted_images", root / "reference_images"
    for k, f in enumerate(["i01_01_1.bmp", "i01_17_5.bmp", "i25_24_3.bmp"]):
        _image(dist / f, seed=k)
    _image(ref / "I01.BMP")
    _image(ref / "i25.bmp")
    (root / "mos_with_names.txt").write_text(
        "5.51429 i01_01_1.bmp\n3.11111 i01_17_5.bmp\n4.72973 I25_24_3.BMP\n"
    )
    (root / "mos_std.txt").write_text("0.13094\n0.21005\n0.15333\n")
    return {}, {
        "image": [_abs(dist / f) for f in ["i01_01_1.bmp", "i01_17_5.bmp", "i25_24_3.bmp"]],
        "ref": [_abs(ref / "I01.BMP"), _abs(ref / "I01.BMP"), _abs(ref / "i25.bmp")],
        "mos": [5.51429, 3.11111, 4.72973],
        "mos_std": [0.13094, 0.21005, 0.15333],
        "method": ["01", "17", "24"],
    }


def build_pipal(root: Path) -> tuple[dict, dict]:
    dists = ["Train_Dis/A0001_00_00.bmp", "Train_Dis/A0001_10_03.bmp", "Train_Dis/part2/A0002_02_01.bmp"]
    for k, f in enumerate([*dists, "Train_Ref/A0001.bmp", "Train_Ref/A0002.bmp"]):
        _image(root / f, seed=k)
    (root / "Train_Label").mkdir()
    (root / "Train_Label" / "A0001.txt").write_text("A0001_00_00.bmp,1445.2\nA0001_10_03.bmp,1120.75\n")
    (root / "Train_Label" / "A0002.txt").write_text("A0002_02_01.bmp,1611.0\n")
    return {}, {
        "image": [_abs(root / f) for f in dists],
        "ref": [_abs(root / "Train_Ref/A0001.bmp")] * 2 + [_abs(root / "Train_Ref/A0002.bmp")],
        "mos": [1445.2, 1120.75, 1611.0],
        "method": ["00_00", "10_03", "02_01"],
        "split": ["train"] * 3,
    }


def build_agiqa3k(root: Path) -> tuple[dict, dict]:
    names = ["AttnGAN_normal_000.jpg", "sd1.5_highcorr_011.jpg", "midjourney_lowstep_002.jpg"]
    for k, n in enumerate(names):
        _image(root / "AGIQA-3K" / n, seed=k)
    prompts = ["a red bird on a branch", "an astronaut, oil painting", "a city at night"]
    pd.DataFrame(
        {
            "name": names,
            "prompt": prompts,
            "adj1": ["red", None, None],
            "adj2": [None, None, None],
            "style": [None, "oil painting", None],
            "mos_quality": [1.25, 3.5, 2.75],
            "std_quality": [0.3, 0.4, 0.5],
            "mos_align": [2.0, 3.25, 4.0],
            "std_align": [0.6, 0.7, 0.8],
        }
    ).to_csv(root / "data.csv", index=False)
    return {"target": "alignment"}, {
        "image": [_abs(root / "AGIQA-3K" / n) for n in names],
        "mos": [2.0, 3.25, 4.0],
        "mos_std": [0.6, 0.7, 0.8],
        "prompt": prompts,
        "method": ["AttnGAN", "sd1.5", "midjourney"],
    }


def build_evalmuse40k(root: Path) -> tuple[dict, dict]:
    for k, n in enumerate(["images/a.png", "images/b.png", "images/c.png"]):
        _image(root / n, seed=k)
    train = [
        {
            "prompt_id": "p1",
            "prompt": "a cat wearing a hat",
            "img_path": "images/a.png",
            "total_score": [4, 5, 3],
            "element_score": {"cat (animal)": [1, 1, 0], "hat (object)": [0, 0, 1]},
            "promt_meaningless": [0, 0, 0],
        },
        {
            "prompt": "a cat wearing a hat",
            "img_path": "b.png",
            "total_score": [2, 2],
            "element_score": {"cat (animal)": [1, 0]},
        },
    ]
    test = [{"prompt": "two dogs", "img_path": "images/c.png", "element_score": {"dogs (animal)": [0]}}]
    (root / "train_list.json").write_text(json.dumps(train))
    (root / "test.json").write_text(json.dumps(test))
    return {"parts": ("train", "test")}, {
        "image": [_abs(root / "images" / n) for n in ("a.png", "b.png", "c.png")],
        "mos": [4.0, 2.0, math.nan],
        "mos_std": [1.0, 0.0, math.nan],  # sample std of (4, 5, 3) and of (2, 2)
        "prompt": ["a cat wearing a hat", "a cat wearing a hat", "two dogs"],
        "elements": [
            {"cat (animal)": 2 / 3, "hat (object)": 1 / 3},
            {"cat (animal)": 0.5},
            {"dogs (animal)": 0.0},
        ],
        "split": ["train", "train", "test"],
    }


def build_evalmuse_structure(root: Path) -> tuple[dict, dict]:
    case = load_case_file("ntire25_t2i_structure.json")["annotation_rasterisation"][0]
    _image(root / "images" / "img0.jpg", size=(case["W"], case["H"]))
    _image(root / "images" / "img1.jpg", size=(7, 6), seed=1)
    info = {
        "img0": {"prompt_en": "a hand holding a cup", "mos": 2.4, "bbox_info": case["bbox_info"]},
        "img1": {"prompt_en": "a horse", "mos": 4.6, "bbox_info": [[], [], []]},
    }
    (root / "anno_info.json").write_text(json.dumps(info))
    return {"mask_dir": "masks"}, {
        "image": [_abs(root / "images" / "img0.jpg"), _abs(root / "images" / "img1.jpg")],
        "mos": [2.4, 4.6],
        "prompt": ["a hand holding a cup", "a horse"],
        "mask": [_abs(root / "masks" / "img0.png"), _abs(root / "masks" / "img1.png")],
    }


ISRGEN_TRAIN = (
    "ATD_x2_0833x2.png#4.23809523809524#0833x2.png\nBFSR_EDSR-LINF_x4_813x4.png#2.9047619047619#0849x4.png\n"
)
ISRGEN_VAL = "SeD_RRDB-SeD_0819x4.png#3.33333333333333#0819x4.png\n"
ISRGEN_TEST = "SwinIR_x8_0813x8.png#0813x8.png#1.14285714285714\nReal-ESRGAN_x3_0819x3.png#0819x3.png#3\n"


def build_isrgen_qa(root: Path) -> tuple[dict, dict]:
    sr = ["ATD_x2_0833x2.png", "BFSR_EDSR-LINF_x4_813x4.png", "SeD_RRDB-SeD_0819x4.png"]
    sr += ["SwinIR_x8_0813x8.png", "Real-ESRGAN_x3_0819x3.png"]
    lr = ["0833x2.png", "0849x4.png", "0819x4.png", "0813x8.png", "0819x3.png"]
    hr = ["0833.png", "0849.png", "0819.png", "0813.png", "0819.png"]
    for k, f in enumerate([*(f"SR/{n}" for n in sr), *(f"LR/{n}" for n in lr), *(f"HR/{n}" for n in hr)]):
        _image(root / f, seed=k)
    (root / "train.txt").write_text(ISRGEN_TRAIN)
    (root / "val.txt").write_text(ISRGEN_VAL)
    (root / "test.txt").write_text(ISRGEN_TEST)
    return {}, {
        "image": [_abs(root / "SR" / n) for n in sr],
        "mos": [4.23809523809524, 2.9047619047619, 3.33333333333333, 1.14285714285714, 3.0],
        "lr": [_abs(root / "LR" / n) for n in lr],
        "ref": [_abs(root / "HR" / n) for n in hr],
        "scale": [2.0, 4.0, 4.0, 8.0, 3.0],
        "method": ["ATD", "BFSR_EDSR-LINF", "SeD_RRDB-SeD", "SwinIR", "Real-ESRGAN"],
        "split": ["train", "train", "val", "test", "test"],
    }


def build_face_challenge(root: Path) -> tuple[dict, dict]:
    names = ["z00001.png", "z00002.jpg", "z00003.png"]
    for k, n in enumerate(names):
        _image(root / "train" / n, seed=k)
    pd.DataFrame({"image": names, "mos": [0.61, 0.35, 0.88]}).to_csv(root / "train.csv", index=False)
    return {"split": "train"}, {
        "image": [_abs(root / "train" / n) for n in names],
        "mos": [0.61, 0.35, 0.88],
        "split": ["train"] * 3,
    }


BUILDERS: dict[str, Callable[[Path], tuple[dict, dict]]] = {
    "koniq10k": build_koniq10k,
    "kadid10k": build_kadid10k,
    "spaq": build_spaq,
    "live-challenge": build_live_challenge,
    "csiq": build_csiq,
    "tid2013": build_tid2013,
    "pipal": build_pipal,
    "agiqa3k": build_agiqa3k,
    "evalmuse40k": build_evalmuse40k,
    "evalmuse-structure": build_evalmuse_structure,
    "isrgen-qa": build_isrgen_qa,
    "face-challenge": build_face_challenge,
}


def assert_manifest(frame: pd.DataFrame, expected: dict, dataset: str) -> None:
    """Every manifest column equals what the builder wrote; columns it did not write are empty."""
    assert list(frame.columns) == list(MANIFEST_COLUMNS)
    assert (frame["dataset"] == dataset).all()
    for column in MANIFEST_COLUMNS:
        if column == "dataset":
            continue
        got = frame[column].tolist()
        want = expected.get(column)
        if want is None:
            assert all(v is None or (isinstance(v, float) and math.isnan(v)) for v in got), column
        elif column in ("mos", "mos_std", "scale"):
            np.testing.assert_allclose(np.asarray(got, dtype=float), want, rtol=1e-12, equal_nan=True)
        elif column == "elements":
            decoded = [json.loads(v) for v in got]
            assert [sorted(d) for d in decoded] == [sorted(d) for d in want]
            for d, w in zip(decoded, want, strict=True):
                np.testing.assert_allclose([d[k] for k in sorted(w)], [w[k] for k in sorted(w)], rtol=1e-12)
        else:
            assert got == want, column


def test_every_registered_dataset_has_a_miniature_layout():
    assert sorted(BUILDERS) == list_datasets()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_reader_reads_its_published_layout(tmp_path, name):
    options, expected = BUILDERS[name](tmp_path)
    frame = read_dataset(name, tmp_path, **options)
    assert_manifest(frame, expected, name)
    for column in ("image", "ref", "lr", "mask"):
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in frame[column].dropna())


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_reader_output_round_trips_through_a_manifest_file(tmp_path, name):
    options, _ = BUILDERS[name](tmp_path / "data")
    frame = read_dataset(name, tmp_path / "data", **options)
    back = read_manifest(write_manifest(frame, tmp_path / "manifest.parquet"))
    pd.testing.assert_frame_equal(back[list(MANIFEST_COLUMNS)], frame, check_dtype=False)


# ---------------------------------------------------------------------------------------------------
# Reader details: alternatives of the published layouts, options and errors.


def test_koniq_prefers_scores_file_and_takes_column_overrides(tmp_path):
    build_koniq10k(tmp_path)
    table = pd.read_csv(tmp_path / "koniq10k_distributions_sets.csv").drop(columns="set")
    table.to_csv(tmp_path / "koniq10k_scores_and_distributions.csv", index=False)
    frame = read_koniq10k(tmp_path, columns={"mos": "MOS_zscore", "mos_std": None})
    assert frame["mos"].tolist() == [72.3, 60.1, 40.2]
    assert frame["mos_std"].isna().all()
    assert frame["split"].isna().all()


def test_spaq_and_csiq_read_the_published_excel_workbooks(tmp_path):
    pytest.importorskip("openpyxl", reason="reading .xlsx needs openpyxl")
    table, expected = _spaq_layout(tmp_path / "spaq")
    table.to_excel(tmp_path / "spaq" / "Annotations" / "MOS and Image attribute scores.xlsx", index=False)
    assert_manifest(read_dataset("spaq", tmp_path / "spaq"), expected, "spaq")
    table, expected = _csiq_layout(tmp_path / "csiq")
    with pd.ExcelWriter(tmp_path / "csiq" / "csiq.DMOS.xlsx") as writer:
        pd.DataFrame({"note": ["other sheet"]}).to_excel(writer, sheet_name="experiment", index=False)
        table.to_excel(writer, sheet_name="all_by_image", index=False)
    assert_manifest(read_dataset("csiq", tmp_path / "csiq"), expected, "csiq")


def test_image_folder_is_picked_by_a_case_insensitive_match_of_the_first_image(tmp_path):
    # AGIQA-3K and the face challenge choose their image folder the same way: the first candidate
    # folder holding the first listed image, matched without regard to case like every image lookup.
    _, expected = build_agiqa3k(tmp_path)
    (tmp_path / "AGIQA-3K").rename(tmp_path / "images")
    first = tmp_path / "images" / "AttnGAN_normal_000.jpg"
    first.rename(first.with_name("ATTNGAN_NORMAL_000.JPG"))
    frame = read_dataset("agiqa3k", tmp_path)
    assert [Path(p).name for p in frame["image"]] == [
        "ATTNGAN_NORMAL_000.JPG",
        "sd1.5_highcorr_011.jpg",
        "midjourney_lowstep_002.jpg",
    ]
    assert all(Path(p).parent == tmp_path.resolve() / "images" for p in frame["image"])


def test_live_challenge_keeps_training_images_on_request(tmp_path):
    build_live_challenge(tmp_path)
    frame = read_live_challenge(tmp_path, include_training=True)
    assert frame["image"].iloc[0] == _abs(tmp_path / "Images" / "trainingImages" / "t1.bmp")
    assert frame["mos"].tolist() == [50.0, 63.9, 25.4, 71.2]


def test_live_challenge_rejects_mismatched_mat_files(tmp_path):
    build_live_challenge(tmp_path)
    scipy.io.savemat(tmp_path / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([[1.0, 2.0]])})
    with pytest.raises(DataFileError, match=r"AllMOS_release\.mat: has 2 values but AllImages_release"):
        read_live_challenge(tmp_path)


def test_isrgen_lines_are_parsed_by_type_not_position():
    assert parse_isrgen_line("ATD_x4_0822x4.png#3#0822x4.png") == ("ATD_x4_0822x4.png", 3.0, "0822x4.png")
    assert parse_isrgen_line("ATD_x4_0820x4.png#0820x4.png#2.95238095238095\n") == (
        "ATD_x4_0820x4.png",
        2.95238095238095,
        "0820x4.png",
    )
    with pytest.raises(InputError, match="exactly one"):
        parse_isrgen_line("a.png#b.png#c.png")


def test_isrgen_names_the_bad_line(tmp_path):
    build_isrgen_qa(tmp_path)
    (tmp_path / "test.txt").write_text(ISRGEN_TEST + "broken line\n")
    with pytest.raises(DataFileError, match=r"test\.txt: line 3: expected"):
        read_isrgen_qa(tmp_path)
    frame = read_isrgen_qa(tmp_path, parts=("val",))
    assert frame["split"].tolist() == ["val"]


def test_bad_scores_name_the_record(tmp_path):
    build_evalmuse40k(tmp_path)
    records = json.loads((tmp_path / "train_list.json").read_text())
    records[1]["total_score"] = ["good", "bad"]
    (tmp_path / "train_list.json").write_text(json.dumps(records))
    with pytest.raises(InputError, match=r"train_list\.json: record 1: expected a number or a list"):
        read_dataset("evalmuse40k", tmp_path)


def test_missing_label_file_is_named(tmp_path):
    with pytest.raises(
        DataFileError, match=r"koniq10k_scores_and_distributions\.csv: KonIQ-10k label file not"
    ):
        read_koniq10k(tmp_path)
    with pytest.raises(DataFileError, match=r"Data/AllImages_release\.mat: file not found"):
        read_live_challenge(tmp_path)
    with pytest.raises(DataFileError, match="dataset folder not found"):
        read_dataset("tid2013", tmp_path / "absent")


def test_missing_image_names_the_image_and_the_label_file(tmp_path):
    build_kadid10k(tmp_path)
    (tmp_path / "images" / "I01_03_05.png").unlink()
    with pytest.raises(
        DataFileError, match=r"I01_03_05\.png: image file listed in .*dmos\.csv not found \(1 "
    ):
        read_dataset("kadid10k", tmp_path)
    assert len(read_dataset("kadid10k", tmp_path, check_files=False)) == 3
    _image(tmp_path / "images" / "I01_03_05.png")
    (tmp_path / "images" / "I02.png").unlink()
    with pytest.raises(DataFileError, match=r"I02\.png: ref file listed in"):
        read_dataset("kadid10k", tmp_path)


def test_missing_column_lists_the_columns(tmp_path):
    build_face_challenge(tmp_path)
    with pytest.raises(
        DataFileError, match=r"train\.csv: no column 'score' \(for mos\); columns are: image, mos"
    ):
        read_dataset("face-challenge", tmp_path, columns={"mos": "score"})
    with pytest.raises(InputError, match="unknown field"):
        read_dataset("face-challenge", tmp_path, columns={"moss": "mos"})


def test_unknown_dataset_suggests_a_name(tmp_path):
    with pytest.raises(RegistryError, match="did you mean kadid10k"):
        read_dataset("kadid10", tmp_path)


# ---------------------------------------------------------------------------------------------------
# EvalMuse-Structure rasterisation.


def test_rasterisation_reproduces_the_worked_case():
    case = load_case_file("ntire25_t2i_structure.json")["annotation_rasterisation"][0]
    heat = rasterise_annotations(case["bbox_info"], case["H"], case["W"])
    assert heat.dtype == np.uint8
    np.testing.assert_array_equal(heat, np.asarray(case["expected_heatmap_uint8"], dtype=np.uint8))


def test_written_mask_file_holds_the_worked_case(tmp_path):
    build_evalmuse_structure(tmp_path)
    case = load_case_file("ntire25_t2i_structure.json")["annotation_rasterisation"][0]
    frame = read_dataset("evalmuse-structure", tmp_path, mask_dir=tmp_path / "cache")
    with Image.open(frame["mask"].iloc[0]) as mask:
        assert mask.mode == "L"
        np.testing.assert_array_equal(np.asarray(mask), case["expected_heatmap_uint8"])
    with Image.open(frame["mask"].iloc[1]) as mask:
        assert mask.size == (7, 6)
        assert not np.asarray(mask).any()
    assert read_dataset("evalmuse-structure", tmp_path)["mask"].isna().all()


def test_polygons_fill_their_boundary_rectangles_do_not():
    pytest.importorskip("cv2", reason="polygon annotations are filled with OpenCV")
    square = [{"x": 1, "y": 1}, {"x": 4, "y": 1}, {"x": 4, "y": 3}, {"x": 1, "y": 3}]
    triangle = [[1, 1], [4, 1], [1, 4]]
    heat = rasterise_annotations(
        [
            [{"bbox_type": 2, "bbox": square}],
            [{"bbox_type": 1, "bbox": square[::2]}],
            [{"bbox_type": 2, "bbox": triangle}],
        ],
        6,
        7,
    )
    polygon = np.zeros((6, 7), dtype=int)
    polygon[1:4, 1:5] = 1  # closed square: rows 1..3, columns 1..4
    rectangle = np.zeros((6, 7), dtype=int)
    rectangle[1:3, 1:4] = 1  # end-exclusive [1:3, 1:4]
    tri = np.array([[int(x >= 1 and y >= 1 and x + y <= 5) for x in range(7)] for y in range(6)])
    levels = np.array([0, 64, 127, 180])
    np.testing.assert_array_equal(heat, levels[polygon + rectangle + tri])


def test_rasterisation_rejects_bad_regions():
    with pytest.raises(InputError, match="unknown bbox_type 3"):
        rasterise_annotations([[{"bbox_type": 3, "bbox": [[0, 0], [1, 1]]}]], 4, 4)
    with pytest.raises(InputError, match="rectangle needs 2 points"):
        rasterise_annotations([[{"bbox_type": 1, "bbox": [[0, 0]]}]], 4, 4)


# ---------------------------------------------------------------------------------------------------
# Content-independent splits.


def _content_frame() -> pd.DataFrame:
    sizes = [1, 5, 2, 3, 4, 2, 1, 6, 3, 2, 4, 1]
    refs = [f"ref{k:02d}" for k, n in enumerate(sizes) for _ in range(n)]
    return pd.DataFrame({"image": [f"im{i}.png" for i in range(len(refs))], "ref": refs})


def test_assign_groups_by_hand():
    # sizes 2, 2, 3, 1, 2 laid end to end over 10 images: midpoints 0.1, 0.3, 0.55, 0.75, 0.9
    assert assign_groups(np.array([2, 2, 3, 1, 2]), np.array([0.5, 0.3, 0.2])).tolist() == [0, 0, 1, 1, 2]


def test_content_split_is_leak_free_deterministic_and_close_to_the_fractions():
    frame = _content_frame()
    labels = content_split(frame, "ref", fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    check_content_split(frame, labels, "ref")
    assert labels.groupby(frame["ref"]).nunique().max() == 1
    pd.testing.assert_series_equal(labels, content_split(frame, "ref", fractions=(0.6, 0.2, 0.2), seed=3))
    largest = frame["ref"].value_counts().max()
    for name, share in {"train": 0.6, "val": 0.2, "test": 0.2}.items():
        assert abs((labels == name).sum() - share * len(frame)) <= largest
    others = [content_split(frame, "ref", seed=s).tolist() for s in range(4)]
    assert len({tuple(o) for o in others}) > 1


def test_split_by_prompt_and_by_image():
    frame = pd.DataFrame({"image": list("abcdef"), "prompt": ["p", "q", "p", "r", "q", "p"]})
    labels = content_split(frame, "prompt", fractions=(0.5, 0.5), seed=1)
    assert labels[frame["prompt"] == "p"].nunique() == 1
    assert set(labels) <= {"train", "test"}
    per_image = content_split(frame, "image", fractions=(0.5, 0.5), seed=1)
    assert (per_image == "train").sum() == 3


def test_kfold_partitions_rows_and_contents():
    frame = _content_frame()
    folds = content_split(frame, "ref", n_folds=4, seed=0)
    check_content_split(frame, folds, "ref")
    assert sorted(folds.unique()) == [0, 1, 2, 3]
    seen = []
    for train, val in kfold(frame, "ref", n_folds=4, seed=0):
        assert set(train).isdisjoint(val)
        assert len(train) + len(val) == len(frame)
        assert set(frame["ref"].iloc[train]).isdisjoint(frame["ref"].iloc[val])
        seen.extend(val.tolist())
    assert sorted(seen) == list(range(len(frame)))


def test_leak_check_and_split_errors():
    frame = _content_frame()
    labels = content_split(frame, "ref", seed=0).copy()
    labels.iloc[1] = "test" if labels.iloc[1] != "test" else "train"  # rows 1..5 share ref01
    with pytest.raises(InputError, match="ref01"):
        check_content_split(frame.assign(split=labels), "split", "ref")
    with pytest.raises(InputError, match="no such column"):
        content_split(frame, "prompt")
    with pytest.raises(InputError, match="have no ref"):
        content_split(frame.assign(ref=[None] + frame["ref"].tolist()[1:]), "ref")
    with pytest.raises(InputError, match="not both"):
        content_split(frame, "ref", fractions=(0.5, 0.5), n_folds=3)
    with pytest.raises(InputError, match="at least 13 distinct"):
        content_split(frame, "ref", n_folds=13)


def test_real_clive_subset_splits_by_image():
    path = shared_data("clive", "manifest.csv")
    frame = read_manifest(path)
    labels = content_split(frame, "image", fractions=(0.8, 0.2), seed=0)
    assert abs((labels == "train").sum() - 0.8 * len(frame)) <= 1
    i, j, p = within_dataset_pairs(frame, 50, seed=0)
    d = frame["mos"].to_numpy()[i] - frame["mos"].to_numpy()[j]
    s = np.hypot(frame["mos_std"].to_numpy()[i], frame["mos_std"].to_numpy()[j])
    np.testing.assert_allclose(p, [0.5 * (1 + math.erf(x / math.sqrt(2))) for x in d / s], rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# Within-dataset pairs and batches.


def test_thurstone_target_by_hand():
    p = thurstone_target(
        np.array([3.0, 2.0, 5.0, 1.0, 2.0]),
        np.array([2.0, 3.5, 5.0, 4.0, 1.0]),
        np.array([0.6, 1.2, 0.0, np.nan, 0.0]),
        np.array([0.8, 0.9, 0.0, 1.0, 0.0]),
    )
    # sqrt(0.36 + 0.64) = 1 -> Phi(1); sqrt(1.44 + 0.81) = 1.5, d = -1.5 -> Phi(-1);
    # zero or unknown std -> hard preference
    np.testing.assert_allclose(p, [PHI_1, 1 - PHI_1, 0.5, 0.0, 1.0], rtol=1e-12)
    assert thurstone_target(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])).tolist() == [0.0, 0.5, 1.0]


def _multi_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image": [f"im{k}" for k in range(8)],
            "mos": [3.0, 2.0, 2.0, 4.5, 60.0, 20.0, 35.0, 50.0],
            "mos_std": [0.6, 0.8, 0.6, 0.8, 10.0, np.nan, 5.0, 5.0],
            "dataset": ["koniq"] * 4 + ["clive"] * 3 + ["single"],
        }
    )


def test_within_dataset_pairs_never_cross_datasets_and_have_the_right_targets():
    frame = _multi_frame()
    i, j, p = within_dataset_pairs(frame, 3000, seed=7)
    names = frame["dataset"].to_numpy()
    assert (names[i] == names[j]).all()
    assert (i != j).all()
    assert "single" not in set(names[i])
    share = np.mean(names[i] == "koniq")
    assert abs(share - 4 / 7) < 0.04  # datasets drawn in proportion to size
    hand = {
        (0, 1): PHI_1,  # (3 - 2) / sqrt(0.36 + 0.64)
        (1, 0): 1 - PHI_1,
        (1, 2): 0.5,  # equal MOS
        (0, 2): 0.5 * (1 + math.erf(1 / math.hypot(0.6, 0.6) / math.sqrt(2))),
        (4, 5): 1.0,  # std of 5 unknown -> hard preference
        (6, 4): 0.5 * (1 + math.erf(-25 / math.hypot(5, 10) / math.sqrt(2))),
    }
    got = dict(zip(zip(i.tolist(), j.tolist(), strict=True), p.tolist(), strict=True))
    for pair, value in hand.items():
        assert got[pair] == pytest.approx(value, rel=1e-12)
    again = within_dataset_pairs(frame, 3000, seed=7)
    for a, b in zip((i, j, p), again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_within_dataset_pairs_weights_and_errors():
    frame = _multi_frame()
    i, _, _ = within_dataset_pairs(frame, 200, seed=0, weights={"clive": 1.0})
    assert set(frame["dataset"].to_numpy()[i]) == {"clive"}
    with pytest.raises(InputError, match="single"):
        within_dataset_pairs(frame, 10, weights={"single": 1.0})
    with pytest.raises(InputError, match="no finite MOS"):
        within_dataset_pairs(frame.assign(mos=[np.nan] + frame["mos"].tolist()[1:]), 10)
    i, j, _ = within_dataset_pairs(frame.drop(columns="dataset"), 100, seed=0)
    assert (i != j).all()
    assert max(i.max(), j.max()) == 7


def test_batch_sampler_epoch_mode_covers_every_row_once_within_one_dataset():
    names = ["a"] * 12 + ["b"] * 8 + ["c"] * 1
    sampler = DatasetBatchSampler(names, batch_size=4, seed=5)
    batches = list(sampler)
    assert len(sampler) == len(batches) == 5
    for batch in batches:
        assert len(batch) == 4
        assert len({names[k] for k in batch}) == 1
    assert sorted(k for b in batches for k in b) == list(range(20))
    assert batches == list(DatasetBatchSampler(names, batch_size=4, seed=5))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    tail = list(DatasetBatchSampler(["a"] * 7, batch_size=3, drop_last=False))
    assert sorted(len(b) for b in tail) == [3, 3]  # the last single row cannot form a pair
    tail = list(DatasetBatchSampler(["a"] * 8, batch_size=3, drop_last=False))
    assert sorted(len(b) for b in tail) == [2, 3, 3]


def test_batch_sampler_stream_mode_follows_the_weights():
    names = ["a"] * 10 + ["b"] * 3
    sampler = DatasetBatchSampler(names, batch_size=4, seed=0, weights={"b": 1.0}, num_batches=6)
    batches = list(sampler)
    assert len(batches) == 6
    assert all(sorted(b) == [10, 11, 12] for b in batches)  # smaller than a batch: all its rows
    mixed = list(
        DatasetBatchSampler(names, batch_size=4, seed=0, weights={"a": 1.0, "b": 1.0}, num_batches=50)
    )
    assert all(len({names[k] for k in b}) == 1 and len(set(b)) == len(b) for b in mixed)
    with pytest.raises(InputError, match="batch_size"):
        DatasetBatchSampler(names, batch_size=1)
    with pytest.raises(InputError, match="no dataset has 20 rows"):
        DatasetBatchSampler(names, batch_size=20)


def test_batch_sampler_drives_a_dataloader():
    frame = _multi_frame()
    data = torch.utils.data.TensorDataset(torch.arange(len(frame)), torch.tensor(frame["mos"].to_numpy()))
    sampler = DatasetBatchSampler(frame["dataset"], batch_size=3, seed=0, num_batches=10)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
    for rows, _ in loader:
        assert frame["dataset"].iloc[rows.tolist()].nunique() == 1


@pytest.mark.parametrize(
    "module", ["perceptiq.data.datasets", "perceptiq.data.splits", "perceptiq.data.sampling"]
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
