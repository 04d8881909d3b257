"""The study on a real PostgreSQL server (Debian's ``postgresql`` package), started here in a temporary folder
on a Unix socket: migrations create exactly the models, and votes are stored once even when raced."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from perceptiq.study.creation import create_study
from perceptiq.study.db import open_database
from perceptiq.study.models import Base
from perceptiq.study.results import study_results
from perceptiq.study.service import StudySettings
from perceptiq.study.web import create_app
from study_helpers import make_images

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ADMIN = "postgres-test-admin-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="perceptiq-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        shutil.chown(root, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    try:
        initdb = [*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "perceptiq", "--auth=trust"]
        subprocess.run(initdb, check=True, capture_output=True, timeout=120)
        options = f"-p {port} -k {root} -c listen_addresses=''"
        start = [
            *run_as,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(root / "log.txt"),
        ]
        subprocess.run([*start, "start"], check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as err:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {err}")
    yield f"postgresql+psycopg://perceptiq@/postgres?host={root}&port={port}"
    subprocess.run([*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                   capture_output=True, timeout=60)  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def test_postgres_schema_and_votes(pg_url, tmp_path):
    db = open_database(pg_url)
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    pairs = make_images(tmp_path, inputs=1)
    create_study(db, "pg", pairs, tmp_path / "img", StudySettings(repeats=1))
    client = TestClient(create_app(db, admin_token=ADMIN))
    token = client.post("/api/studies/pg/sessions", json={}).json()["token"]
    trial = client.get("/api/studies/pg/next", params={"token": token}).json()
    vote = {"token": token, "trial_id": trial["trial_id"], "choice": "right"}
    codes: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: codes.append(client.post("/api/studies/pg/votes", json=vote).status_code)
        )
        for _ in range(8)
    ]  # the same vote raced from 8 threads: the unique constraint lets exactly one in
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] + [409] * 7
    while (response := client.get("/api/studies/pg/next", params={"token": token})).status_code == 200:
        trial_id = response.json()["trial_id"]
        assert (
            client.post(
                "/api/studies/pg/votes", json={"token": token, "trial_id": trial_id, "choice": "left"}
            ).status_code
            == 201
        )
    assert response.status_code == 204
    result = study_results(db, "pg")
    assert len(result.votes) == 3 + 1
    assert result.counts.sum() == 3
    db.close()
    open_database(pg_url).close()  # reopening an up-to-date database migrates nothing
