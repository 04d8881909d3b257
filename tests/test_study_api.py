"""The study's JSON API and pages through FastAPI's TestClient: votes are stored once, tokens and origins are
checked, inputs are validated, images are served by id only, and each session follows its recorded seed."""

from __future__ import annotations

import io
import sqlite3
from collections import Counter

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from perceptiq.errors import DataFileError
from perceptiq.study.creation import create_study, read_pairs
from perceptiq.study.db import open_database
from perceptiq.study.service import StudySettings
from perceptiq.study.sessions import plan_session
from perceptiq.study.web import RateLimit, create_app
from study_helpers import make_images

ADMIN = "admin-token-for-tests-0123456789"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    pairs = make_images(root)
    other = make_images(root / "other", inputs=1)
    db = open_database(root / "study.db")
    create_study(db, "demo", pairs, root / "img", StudySettings(repeats=2))
    create_study(db, "other", other, root / "other" / "img")
    client = TestClient(create_app(db, admin_token=ADMIN))
    yield {"root": root, "db": db, "client": client}
    db.close()


def _session(client, study="demo"):
    response = client.post(f"/api/studies/{study}/sessions", json={})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def _votes_in_db(root):
    with sqlite3.connect(root / "study.db") as con:
        return con.execute("SELECT trial_id, choice FROM votes ORDER BY trial_id").fetchall()


def test_double_vote_is_refused_and_stored_once(env):
    client = env["client"]
    token = _session(client)
    trial = client.get("/api/studies/demo/next", params={"token": token}).json()
    vote = {"token": token, "trial_id": trial["trial_id"], "choice": "left"}
    assert client.post("/api/studies/demo/votes", json=vote).status_code == 201
    again = client.post("/api/studies/demo/votes", json=vote | {"choice": "right"})
    assert again.status_code == 409
    stored = [row for row in _votes_in_db(env["root"]) if row[0] == trial["trial_id"]]
    assert stored == [(trial["trial_id"], "left")]
    assert (
        client.get("/api/studies/demo/next", params={"token": token}).json()["trial_id"] != trial["trial_id"]
    )


def test_forged_and_foreign_tokens(env):
    client = env["client"]
    token = _session(client)
    trial = client.get("/api/studies/demo/next", params={"token": token}).json()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client.get("/api/studies/demo/next", params={"token": forged}).status_code == 401
    assert client.get("/api/studies/demo/next").status_code == 401
    vote = {"token": forged, "trial_id": trial["trial_id"], "choice": "left"}
    assert client.post("/api/studies/demo/votes", json=vote).status_code == 401
    other = _session(client, "other")  # a real token, of another study
    assert client.get("/api/studies/demo/next", params={"token": other}).status_code == 403
    someone = _session(client)  # a real token of this study, voting on another participant's trial
    vote = {"token": someone, "trial_id": trial["trial_id"], "choice": "left"}
    assert client.post("/api/studies/demo/votes", json=vote).status_code == 403
    assert client.get("/api/studies/nosuch/next", params={"token": token}).status_code == 404


def test_tokens_are_unguessable_and_not_stored(env):
    tokens = {_session(env["client"]) for _ in range(3)}
    assert len(tokens) == 3
    assert all(len(t) >= 43 for t in tokens)
    with sqlite3.connect(env["root"] / "study.db") as con:
        stored = {row[0] for row in con.execute("SELECT token_hash FROM sessions")}
    assert not tokens & stored


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ('{"token": "x"', JSON, 400),  # not JSON
        ("[1, 2]", JSON, 400),  # not an object
        ("token=x&trial_id=1&choice=left", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ('{"trial_id": 1, "choice": "left"}', JSON, 401),  # no token
    ],
)
def test_malformed_bodies(env, body, headers, status):
    response = env["client"].post("/api/studies/demo/votes", content=body, headers=headers)
    assert response.status_code == status
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "change",
    [{"choice": "up"}, {"choice": None}, {"trial_id": "1"}, {"trial_id": -3}, {"trial_id": True},
     {"response_ms": -1}, {"response_ms": "fast"}, {"extra": 1}],
)  # fmt: skip
def test_invalid_vote_values_are_422(env, change):
    client = env["client"]
    token = _session(client)
    trial = client.get("/api/studies/demo/next", params={"token": token}).json()
    vote = {"token": token, "trial_id": trial["trial_id"], "choice": "left"} | change
    response = client.post("/api/studies/demo/votes", json=vote)
    assert response.status_code == 422, response.text
    assert all(row[0] != trial["trial_id"] for row in _votes_in_db(env["root"]))


def test_cross_site_posts_are_refused(env):
    client = env["client"]
    token = _session(client)
    trial = client.get("/api/studies/demo/next", params={"token": token}).json()
    vote = {"token": token, "trial_id": trial["trial_id"], "choice": "left"}
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        assert client.post("/api/studies/demo/votes", json=vote, headers=headers).status_code == 403
        assert client.post("/api/studies/demo/sessions", json={}, headers=headers).status_code == 403
    assert all(row[0] != trial["trial_id"] for row in _votes_in_db(env["root"]))
    same = client.post("/api/studies/demo/votes", json=vote, headers={"Origin": "http://testserver"})
    assert same.status_code == 201


def test_rate_limit_per_token(env):
    client = TestClient(create_app(env["db"], admin_token=ADMIN, rate_limit=RateLimit(rate=0.5, burst=3)))
    token, other = _session(client), _session(client)
    codes = [client.get("/api/studies/demo/next", params={"token": token}).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]
    assert int(client.get("/api/studies/demo/next", params={"token": token}).headers["Retry-After"]) >= 1
    assert client.get("/api/studies/demo/next", params={"token": other}).status_code == 200


def test_images_by_id_only(env):
    client = env["client"]
    token = _session(client)
    trial = client.get("/api/studies/demo/next", params={"token": token}).json()
    image = client.get(trial["left"])
    assert image.status_code == 200
    assert image.content[:4] == b"\x89PNG"
    for url in (
        "/api/studies/demo/images/../../../../etc/passwd",
        "/api/studies/demo/images/..%2F..%2Fetc%2Fpasswd",
        "/api/studies/demo/images/%2Fetc%2Fpasswd",
        "/api/studies/demo/images/x0_A.png",
        "/api/studies/demo/images/999999",
        "/api/studies/..%2F..%2Fetc/images/1",
    ):
        response = client.get(url)
        assert response.status_code in (404, 422), url
        assert b"root:" not in response.content
    other_image = client.get("/api/studies/other/next", params={"token": _session(client, "other")}).json()[
        "left"
    ]
    foreign_id = other_image.rsplit("/", 1)[1]
    assert client.get(f"/api/studies/demo/images/{foreign_id}").status_code == 404


def test_pair_files_cannot_point_outside_the_image_folder(tmp_path):
    pairs = make_images(tmp_path)
    (tmp_path / "secret.png").write_bytes((tmp_path / "img" / "x0_A.png").read_bytes())
    bad = tmp_path / "bad.csv"
    bad.write_text("image_a,image_b\nx0_A.png,../secret.png\n")
    with pytest.raises(
        DataFileError, match=r"line 2, image_b: '\.\./secret\.png' is outside the image folder"
    ):
        read_pairs(bad, tmp_path / "img")
    assert len(read_pairs(pairs, tmp_path / "img")) == 6


def test_a_broken_image_is_named_in_one_line(tmp_path):
    pairs = make_images(tmp_path)
    (tmp_path / "img" / "x1_B.png").write_bytes(b"not an image")
    db = open_database(tmp_path / "s.db")
    with pytest.raises(DataFileError) as err:
        create_study(db, "broken", pairs, tmp_path / "img")
    assert "x1_B.png" in str(err.value)
    assert "\n" not in str(err.value)
    db.close()


def test_session_follows_its_seed_and_ends_with_204(env):
    client = env["client"]
    token = _session(client)
    seen = []
    while (response := client.get("/api/studies/demo/next", params={"token": token})).status_code == 200:
        trial = response.json()
        seen.append((trial["trial_id"], trial["left"], trial["right"], trial["done"], trial["total"]))
        vote = {"token": token, "trial_id": trial["trial_id"], "choice": "left"}
        assert client.post("/api/studies/demo/votes", json=vote).status_code == 201
    assert response.status_code == 204
    assert [s[3] for s in seen] == list(range(len(seen)))
    assert {s[4] for s in seen} == {len(seen)}
    with sqlite3.connect(env["root"] / "study.db") as con:
        (sid, seed), *_ = con.execute(
            "SELECT s.id, s.seed FROM sessions s JOIN trials t ON t.session_id = s.id WHERE t.id = ?",
            (seen[0][0],),
        ).fetchall()
        pairs = con.execute(
            "SELECT id, image_a_id, image_b_id FROM pairs WHERE study_id = 1 ORDER BY id"
        ).fetchall()
        trials = con.execute(
            "SELECT id, pair_id, swapped, repeat FROM trials WHERE session_id = ? ORDER BY position", (sid,)
        ).fetchall()
    plan = plan_session([p[0] for p in pairs], [], seed, repeats=2)
    assert [(t[1], bool(t[2]), t[3]) for t in trials] == [(p.pair_id, p.swapped, p.repeat) for p in plan]
    images = {p[0]: (p[1], p[2]) for p in pairs}
    for (trial_id, left, right, *_), planned, row in zip(seen, plan, trials, strict=True):
        a, b = images[planned.pair_id]
        expected = (b, a) if planned.swapped else (a, b)
        assert trial_id == row[0]
        assert (int(left.rsplit("/", 1)[1]), int(right.rsplit("/", 1)[1])) == expected
    firsts = Counter(t[1] for t in trials if t[3] == 0)
    assert sorted(firsts) == [p[0] for p in pairs]
    assert set(firsts.values()) == {1}
    repeats = [t for t in trials if t[3] == 1]
    assert len(repeats) == 2
    for trial in repeats:  # a repeat comes after its first showing, sides swapped
        first = next(k for k, t in enumerate(trials) if t[1] == trial[1] and t[3] == 0)
        assert trials.index(trial) > first
        assert bool(trials[first][2]) != bool(trial[2])


def test_plan_differs_between_seeds_and_caps_pairs():
    a = plan_session(range(1, 21), [50, 51], seed=1, pairs_per_session=5, repeats=1)
    b = plan_session(range(1, 21), [50, 51], seed=2, pairs_per_session=5, repeats=1)
    assert a != b
    assert len(a) == len(b) == 5 + 2 + 1
    assert {t.pair_id for t in a} >= {50, 51}
    assert a == plan_session(range(1, 21), [50, 51], seed=1, pairs_per_session=5, repeats=1)


def test_admin_endpoints_need_the_token_which_no_page_shows(env):
    client = env["client"]
    for url in ("/api/studies/demo/export.csv", "/api/studies/demo/results.json"):
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(url, headers={"Authorization": f"Basic {ADMIN}"}).status_code == 401
        assert client.get(url, headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
    token = _session(client)
    pages = [client.get(u) for u in ("/", "/s/demo", f"/s/demo/trial?token={token}", "/static/study.js")]
    assert all(p.status_code == 200 for p in pages)
    assert all(ADMIN not in p.text for p in pages)
    assert "default-src 'none'" in pages[1].headers["content-security-policy"]
    export = client.get("/api/studies/demo/export.csv", headers={"Authorization": f"Bearer {ADMIN}"})
    frame = pd.read_csv(io.StringIO(export.text))
    assert sorted(frame["trial"]) == [row[0] for row in _votes_in_db(env["root"])]


def test_pages_resume_from_the_cookie(env):
    client = TestClient(create_app(env["db"], admin_token=ADMIN))
    assert client.get("/s/demo/trial", follow_redirects=False).status_code == 303  # no session yet
    token = _session(client)
    assert client.cookies.get("perceptiq_demo") == token
    resumed = client.get("/s/demo/trial")
    assert resumed.status_code == 200
    assert f'data-token="{token}"' in resumed.text
    assert client.get("/s/demo/trial", params={"token": "forged"}).status_code == 401
    assert client.get("/s/nosuch").status_code == 404


def test_reads_the_pair_list_of_perceptiq_mad(tmp_path, monkeypatch):
    make_images(tmp_path)
    monkeypatch.chdir(tmp_path)  # perceptiq mad writes the paths it was given: here relative to the cwd
    mad = tmp_path / "mad.csv"
    mad.write_text(
        "pair_id,method_a,method_b,input,path_a,path_b,d1,d2_mean,objective,rank_in_pair\n"
        "0,A,B,x0,img/x0_A.png,img/x0_B.png,0.5,,0.5,0\n"
        f"0,A,B,x1,{tmp_path / 'img' / 'x1_A.png'},{tmp_path / 'img' / 'x1_B.png'},0.4,0.1,0.41,1\n"
    )
    specs = read_pairs(mad, "img")
    assert [(p.image_a, p.image_b, p.method_a, p.method_b) for p in specs] == [
        ("x0_A.png", "x0_B.png", "A", "B"),
        ("x1_A.png", "x1_B.png", "A", "B"),
    ]
