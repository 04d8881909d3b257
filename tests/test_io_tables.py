"""Table and submission readers: formats, joins and every kind of bad input."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from conftest import load_case_file
from perceptiq.errors import DataFileError
from perceptiq.evaluation.protocols import AlignmentData, PairData, StructureData, create_protocol
from perceptiq.io.submissions import load_alignment, load_pairs, load_structure, safe_load_pickle
from perceptiq.io.tables import join_tables, read_table


@pytest.fixture
def frames():
    ids = [f"im{i}" for i in range(6)]
    pred = pd.DataFrame({"image": ids, "score": [0.1, 0.4, 0.35, 0.8, 0.7, 0.95]})
    gt = pd.DataFrame({"image": ids[::-1], "mos": [4.8, 3.9, 4.1, 2.0, 2.2, 1.1], "mos_std": [0.5] * 6})
    return pred, gt


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_every_format_reads_and_joins_in_ground_truth_order(tmp_path, frames, suffix):
    pred, gt = frames
    paths = []
    for frame, stem in ((pred, "pred"), (gt, "gt")):
        path = tmp_path / f"{stem}{suffix}"
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        elif suffix == ".tsv":
            frame.to_csv(path, sep="\t", index=False)
        elif suffix == ".jsonl":
            frame.to_json(path, orient="records", lines=True)
        elif suffix == ".json":
            path.write_text(json.dumps(frame.to_dict(orient="records")))
        else:
            frame.to_parquet(path)
        paths.append(path)
    joined = join_tables(*paths)
    assert joined.ids.tolist() == gt["image"].tolist()
    expected = pred.set_index("image").loc[gt["image"], "score"].to_numpy()
    np.testing.assert_array_equal(joined.pred, expected)
    np.testing.assert_array_equal(joined.mos_std, gt["mos_std"].to_numpy())


def _write(tmp_path, name, frame):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_mismatched_ids_are_counted_and_shown(tmp_path, frames):
    pred, gt = frames
    p = _write(tmp_path, "p.csv", pred.iloc[:4])
    g = _write(tmp_path, "g.csv", gt)
    with pytest.raises(
        DataFileError, match=r"p\.csv: 2 ground-truth id\(s\) have no prediction, e\.g\. \['im4', 'im5'\]"
    ):
        join_tables(p, g)
    joined = join_tables(p, g, allow_missing=True)
    assert joined.ids.size == 4
    assert joined.dropped_gt == ("im4", "im5")


def test_duplicates_nan_columns_and_unreadable_files(tmp_path, frames):
    pred, gt = frames
    g = _write(tmp_path, "g.csv", gt)
    dup = _write(tmp_path, "dup.csv", pd.concat([pred, pred.iloc[:1]]))
    with pytest.raises(DataFileError, match="1 duplicate id"):
        join_tables(dup, g)
    nan = _write(tmp_path, "nan.csv", pred.assign(score=[0.1, np.nan, 0.3, 0.4, np.inf, 0.6]))
    with pytest.raises(
        DataFileError, match=r"nan\.csv: column 'score' has 2 missing, non-numeric or infinite"
    ):
        join_tables(nan, g)
    with pytest.raises(DataFileError, match="no prediction column 'quality'; columns are: image, score"):
        join_tables(_write(tmp_path, "p.csv", pred), g, pred_col="quality")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFileError, match="empty.csv: file is empty"):
        read_table(empty)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(os.urandom(64))
    with pytest.raises(DataFileError, match="garbage.parquet: cannot be read as parquet"):
        read_table(garbage)
    with pytest.raises(DataFileError, match="file not found"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(DataFileError, match="unsupported table format"):
        read_table(_write(tmp_path, "x.xlsx", pred))


def test_read_table_as_text_keeps_every_cell_as_written(tmp_path, monkeypatch):
    csv = tmp_path / "votes.csv"
    csv.write_text("first, second,count\nNA, 007,1.50\nnull,,2\n")
    frame = read_table(csv, as_text=True)
    assert frame.columns.tolist() == ["first", "second", "count"]
    assert frame.to_dict("list") == {"first": ["NA", "null"], "second": ["007", ""], "count": ["1.50", "2"]}
    jsonl = tmp_path / "votes.jsonl"
    jsonl.write_text('{"first": "a", "count": 3}\n{"second": "b", "count": 4}\n')
    assert read_table(jsonl, as_text=True).to_dict("list") == {
        "first": ["a", ""],
        "count": ["3", "4"],
        "second": ["", "b"],
    }
    monkeypatch.setenv("PERCEPTIQ_MAX_TABLE_BYTES", "10")  # the size cap holds for text reads too
    with pytest.raises(DataFileError, match="votes.csv: .* exceeds the 10-byte cap"):
        read_table(csv, as_text=True)


def _evalmuse_records(case, pred: bool) -> list[dict]:
    out = []
    for im in case["inputs"]["images"]:
        values = im["element_pred"] if pred else im["element_gt"]
        out.append(
            {
                "prompt": "p",
                "img_path": im["img"],
                "total_score": im["total_pred"] if pred else im["total_gt"],
                "element_score": {f"element {k} (object)": v for k, v in enumerate(values)},
            }
        )
    return out


def test_evalmuse_output_json_gives_the_official_score(tmp_path):
    case = load_case_file("ntire25_t2i_alignment.json")["cases"][0]
    pred, gt = tmp_path / "output.json", tmp_path / "gt.json"
    pred.write_text(json.dumps(_evalmuse_records(case, True)[::-1]))  # order must not matter
    gt.write_text(json.dumps(_evalmuse_records(case, False)))
    data = AlignmentData(**load_alignment(pred, gt))
    result = create_protocol("ntire25-t2i-alignment").evaluate(data)
    assert result.score == pytest.approx(case["expected"]["main_logistic4"], abs=1e-4)
    broken = _evalmuse_records(case, True)
    broken[0]["element_score"].popitem()
    pred.write_text(json.dumps(broken))
    with pytest.raises(DataFileError, match="lacks element"):
        load_alignment(pred, gt)


def test_structure_pickle_roundtrip_heatmaps_and_resizing(tmp_path):
    rng = np.random.default_rng(0)
    gt_masks = {f"im{i}.png": (rng.random((8, 8)) > 0.6).astype(np.uint8) for i in range(4)}
    pred_heat = {k: np.clip(v * 0.7 + rng.random(v.shape) * 0.3, 0, 1) for k, v in gt_masks.items()}
    pred_file, gt_file = tmp_path / "pred.pkl", tmp_path / "gt.pkl"
    with pred_file.open("wb") as fh:
        pickle.dump(
            {k: {"score": float(i), "pred_area": h} for i, (k, h) in enumerate(pred_heat.items())}, fh
        )
    with gt_file.open("wb") as fh:
        pickle.dump(
            {k: {"score": float(i) + 0.5, "gt_area": m} for i, (k, m) in enumerate(gt_masks.items())}, fh
        )
    fields, notes = load_structure(pred_file, gt_file)
    data = StructureData(**fields)
    for got, k in zip(data.pred_masks, sorted(gt_masks), strict=True):  # reading computes nothing
        np.testing.assert_array_equal(got, pred_heat[k])
    protocol = create_protocol("ntire25-t2i-structure")
    expected = [(np.round(pred_heat[k] * 255) > 40).astype(np.uint8) for k in sorted(gt_masks)]
    for got, want in zip(protocol.masks(data)[0], expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert notes == []
    with pred_file.open("wb") as fh:  # masks at twice the GT size are resized with nearest neighbour
        pickle.dump(
            {
                k: {"score": 1.0, "pred_area": np.kron(m, np.ones((2, 2), np.uint8))}
                for k, m in gt_masks.items()
            },
            fh,
        )
    fields, notes = load_structure(pred_file, gt_file)
    data = StructureData(**fields)
    assert "4 predicted mask(s) resized" in notes[0]
    for got, k in zip(protocol.masks(data)[0], sorted(gt_masks), strict=True):
        np.testing.assert_array_equal(got, gt_masks[k])


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickles_cannot_run_code(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"a": {"score": 1.0, "pred_area": _Exploit()}}))
    with pytest.raises(DataFileError, match="refusing to load"):
        safe_load_pickle(path)


def test_pairs_join_predictions_by_image_name(tmp_path):
    pairs = pd.DataFrame(
        {"name1_column": ["a.png", "b.png"], "name2_column": ["b.png", "c.png"], "score1_column": [0.8, 0.4]}
    )
    preds = pd.DataFrame({"image": ["a.png", "b.png", "c.png"], "score": [3.0, 2.0, 2.5]})
    pp, vp = _write(tmp_path, "pred.csv", preds), _write(tmp_path, "votes.csv", pairs)
    data = PairData(**load_pairs(pp, vp))
    np.testing.assert_array_equal(data.score_first, [3.0, 2.0])
    np.testing.assert_array_equal(data.score_second, [2.0, 2.5])
    with pytest.raises(DataFileError, match="1 image"):
        load_pairs(_write(tmp_path, "p2.csv", preds.iloc[:2]), vp)


class _HugeDeclaredArray:
    """Pickles as numpy's own array constructor asked for 10^12 int8 elements, with no data."""

    def __reduce__(self):
        return (np.ndarray.__reduce__(np.zeros(0, np.int8))[0], (np.ndarray, (10**12,), b"b"))


def test_a_pickle_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.pkl"
    path.write_bytes(pickle.dumps({"a.png": {"score": 1.0, "pred_area": _HugeDeclaredArray()}}, protocol=4))
    assert path.stat().st_size < 400
    with pytest.raises(DataFileError, match=r"huge\.pkl: .*1,000,000,000,000 elements"):
        safe_load_pickle(path)
    # real numpy arrays still load, from every pickle protocol
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for protocol in (3, 4, 5):
        path.write_bytes(pickle.dumps({"a.png": {"score": 1.0, "pred_area": mask}}, protocol=protocol))
        np.testing.assert_array_equal(safe_load_pickle(path)["a.png"]["pred_area"], mask)


def test_tables_above_the_size_cap_are_refused_with_a_way_to_raise_it(tmp_path, monkeypatch):
    path = tmp_path / "long.csv"
    path.write_text("id,score\n" + "".join(f"img{i},{i}\n" for i in range(100)))
    assert len(read_table(path)) == 100
    monkeypatch.setenv("PERCEPTIQ_MAX_TABLE_BYTES", "200")
    with pytest.raises(
        DataFileError, match=r"long\.csv: .*exceeds the 200-byte cap.*PERCEPTIQ_MAX_TABLE_BYTES"
    ):
        read_table(path)
    pkl = tmp_path / "s.pkl"
    pkl.write_bytes(pickle.dumps({f"{i}": {"score": 1.0, "pred_area": np.zeros((8, 8))} for i in range(5)}))
    with pytest.raises(DataFileError, match="byte cap"):
        safe_load_pickle(pkl)


@pytest.mark.parametrize("payload", ["[1, 2, 3]", '["a.png", "b.png"]', '[{"id": "a", "score": 1}, 7]'])
def test_a_json_list_of_non_objects_is_a_one_line_error(tmp_path, payload):
    path = tmp_path / "preds.json"
    path.write_text(payload)
    with pytest.raises(
        DataFileError, match=r"preds\.json: JSON list element \d is .* expected an object"
    ) as err:
        read_table(path)
    assert "\n" not in str(err.value)


def test_a_2afc_pair_of_an_image_with_itself_is_refused(tmp_path):
    pairs = pd.DataFrame(
        {"name1_column": ["a.png", "b.png"], "name2_column": ["b.png", "b.png"], "score1_column": [0.8, 0.5]}
    )
    preds = pd.DataFrame({"image": ["a.png", "b.png"], "score": [3.0, 2.0]})
    pp, vp = _write(tmp_path, "pred.csv", preds), _write(tmp_path, "votes.csv", pairs)
    with pytest.raises(DataFileError, match=r"votes\.csv: line 3: image 'b.png' is compared with itself"):
        load_pairs(pp, vp)


def test_score_output_paths_join_a_manifest_relative_to_its_folder(tmp_path):
    """perceptiq score writes absolute paths; a manifest names the same files relative to its folder."""
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    names = ["a.png", "b.png", "c.png"]
    pd.DataFrame({"image": [f"img/{n}" for n in names], "mos": [1.0, 3.0, 2.0]}).to_csv(
        data / "manifest.csv", index=False
    )
    elsewhere = tmp_path / "runs"
    elsewhere.mkdir()
    absolute = [os.path.join(str(data), "img", n) for n in ("c.png", "a.png", "b.png")]
    pd.DataFrame({"image": absolute, "score": [20.0, 10.0, 30.0]}).to_csv(elsewhere / "s.csv", index=False)
    joined = join_tables(elsewhere / "s.csv", data / "manifest.csv")
    assert joined.matched_as_paths
    assert joined.ids.tolist() == ["img/a.png", "img/b.png", "img/c.png"]  # the manifest's ids and order
    np.testing.assert_array_equal(joined.pred, [10.0, 30.0, 20.0])
    np.testing.assert_array_equal(joined.mos, [1.0, 3.0, 2.0])
    # ids equal as written are joined as written
    pd.DataFrame({"image": [f"img/{n}" for n in names], "score": [1, 2, 3]}).to_csv(
        elsewhere / "same.csv", index=False
    )
    assert not join_tables(elsewhere / "same.csv", data / "manifest.csv").matched_as_paths
