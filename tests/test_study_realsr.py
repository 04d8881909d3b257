"""RealSR-1K's human votes (Chen et al., Learning from Model Rankings, 2025) loaded into a study database
through the insert path of the web API give exactly the ranking and scores of ``perceptiq rank`` on the same
file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from conftest import shared_data
from perceptiq.cli import main
from perceptiq.study.creation import create_study
from perceptiq.study.db import open_database
from perceptiq.study.models import Image, Pair, Trial
from perceptiq.study.sessions import VoteIn, record_votes, start_session

RATERS = 23


def _json_of(argv, capsys):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.shared_data
@pytest.mark.slow
def test_realsr_votes_through_the_study_give_the_rank_results(tmp_path: Path, capsys):
    votes_file = shared_data("realsr_votes", "sr_subjective_results.csv")
    frame = pd.read_csv(votes_file)
    frame = frame[frame["sr_pair_names"].str.lower() != "average"]
    images = tmp_path / "img"
    images.mkdir()
    png = io.BytesIO()
    PILImage.new("RGB", (4, 3)).save(png, format="PNG")
    for name in set(frame["name1_column"]) | set(frame["name2_column"]):
        (images / name).write_bytes(png.getvalue())
    db = open_database(tmp_path / "realsr.db")
    create_study(db, "realsr", votes_file, images)  # pairs straight from the votes file
    wins_first = np.rint(frame["score1_column"].to_numpy() * RATERS).astype(int)
    wins = dict(zip(zip(frame["name1_column"], frame["name2_column"], strict=True), wins_first, strict=True))
    for rater in range(RATERS):
        token, session_id = start_session(db, "realsr", observer=f"rater{rater}")
        with db.sessionmaker() as s:
            names = dict(s.execute(select(Image.id, Image.name)).all())
            trials = s.execute(
                select(Trial.id, Trial.swapped, Pair.image_a_id, Pair.image_b_id)
                .join(Pair, Pair.id == Trial.pair_id)
                .where(Trial.session_id == session_id)
            ).all()
        batch = []
        for trial_id, swapped, a, b in trials:
            first_wins = rater < wins[(names[a], names[b])]  # rater k votes for image 1 iff k < its votes
            batch.append(VoteIn(token, trial_id, "left" if first_wins != swapped else "right"))
        assert record_votes(db, "realsr", batch) == len(frame)
    db.close()
    study = _json_of(["study", "results", "realsr", "--db", str(tmp_path / "realsr.db"), "--json"], capsys)
    rank = _json_of(["rank", str(votes_file), "--raters", str(RATERS), "--json"], capsys)
    assert study["n_votes"] == rank["n_votes"] == len(frame) * RATERS
    mine, reference = study["ranking"], rank
    assert mine["ridge"] == reference["ridge"] == 0.0
    assert [r["item"] for r in mine["ranking"]] == [r["item"] for r in reference["ranking"]]
    assert mine["ranking"][0]["item"] == "SeeSR"
    for a, b in zip(mine["ranking"], reference["ranking"], strict=True):
        for key in ("score", "se", "ci_low", "ci_high"):
            assert a[key] == pytest.approx(b[key], abs=1e-9), (a["item"], key)
    assert mine["log_likelihood"] == pytest.approx(reference["log_likelihood"], rel=1e-12)
