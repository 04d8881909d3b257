"""Benchmark of ``perceptiq study serve``: many participants voting at once on loopback, and a server crash.

Two runs, each against a fresh SQLite study database and a ``perceptiq study serve`` subprocess bound to
127.0.0.1 (nothing leaves the machine):

* ``steady``: ``--participants`` simulated participants (asyncio tasks sharing one httpx client) start a
  session each and answer ``--votes`` trials as fast as the server lets them (GET next, POST vote).
  Reported: acknowledged votes per second, p50/p99 latency of the vote POST (201 = committed) and of GET next
  as the participants see it, and inside the server (its ``Server-Timing`` header: the rest is queueing in
  the server's event loop and the clients' own, which share the machine's CPUs).
* ``crash``: the same, but the server is SIGKILLed once ``--kill-after`` of the votes are acknowledged and
  restarted on the same database; participants retry until it answers and resume with their token. A vote
  whose response was lost in the crash is re-posted: 201 if it never reached the database, 409 if it did.

After each run the database is read directly: every acknowledged vote must be stored exactly once with its
choice, and every stored vote must be acknowledged (201) or confirmed by a 409 on retry.

Bounded: ``--participants`` x ``--votes`` votes at most and ``--max-seconds`` per run; loopback only.
Usage: ``python benchmarks/bench_study.py [--participants 200] [--votes 10]``; results are written to
``benchmarks/results/bench_study.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "bench_study.json"
ADMIN = secrets.token_urlsafe(24)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_study(folder: Path, methods: int, inputs: int, votes: int) -> Path:
    """Images (32x32 random PNGs), a pair list of every method pair per input and the study database."""
    rng = np.random.default_rng(0)
    img = folder / "img"
    img.mkdir(parents=True)
    rows = ["image_a,image_b"]
    names = [f"m{m}" for m in range(methods)]
    for i in range(inputs):
        for m in names:
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(img / f"in{i}_{m}.png")
        rows += [f"in{i}_{a}.png,in{i}_{b}.png" for a, b in combinations(names, 2)]
    (folder / "pairs.csv").write_text("\n".join(rows) + "\n")
    db = folder / "study.db"
    _cli("study", "create", "bench", "--pairs", str(folder / "pairs.csv"), "--images", str(img),
         "--db", str(db), "--pairs-per-session", str(votes))  # fmt: skip
    return db


def _cli(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "perceptiq", *args], check=True, env=env, capture_output=True)


def _start_server(db: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "OMP_NUM_THREADS": "1",
        "PERCEPTIQ_ADMIN_TOKEN": ADMIN,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "perceptiq", "study", "serve", "--db", str(db), "--port", str(port),
         "--rate-limit", "50"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the study server did not start: " + proc.stderr.read().decode()[-2000:])


@dataclass
class Tally:
    acked: list[tuple[int, str]] = field(default_factory=list)  # (trial, choice) answered 201
    confirmed: list[tuple[int, str]] = field(default_factory=list)  # re-posted after a lost answer: 409
    vote_ms: list[float] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    vote_server_ms: list[float] = field(default_factory=list)  # Server-Timing: inside the server
    next_server_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    rate_limited: int = 0


def _server_ms(response: httpx.Response) -> float:
    """The server's own processing time (its ``Server-Timing: app;dur=MS`` header)."""
    return float(response.headers.get("server-timing", "app;dur=nan").split("dur=")[1])


async def _request(client: httpx.AsyncClient, tally: Tally, deadline: float, method: str, url: str, **kw):
    """Send until the server answers (retrying connection errors while it is down); None past the deadline."""
    while time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as err:
            tally.errors[type(err).__name__] += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code == 429:
            tally.rate_limited += 1
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        return response, (time.perf_counter() - start) * 1000
    return None


async def _participant(client, tally: Tally, deadline: float, rng: np.random.Generator) -> None:
    got = await _request(client, tally, deadline, "POST", "/api/studies/bench/sessions", json={})
    if got is None:
        return
    token = got[0].json()["token"]
    while True:
        got = await _request(
            client, tally, deadline, "GET", "/api/studies/bench/next", params={"token": token}
        )
        if got is None or got[0].status_code == 204:
            return
        response, ms = got
        tally.next_ms.append(ms)
        tally.next_server_ms.append(_server_ms(response))
        trial = response.json()["trial_id"]
        choice = "left" if rng.random() < 0.5 else "right"
        lost = False
        while True:
            start = time.perf_counter()
            try:
                response = await client.post(
                    "/api/studies/bench/votes", json={"token": token, "trial_id": trial, "choice": choice}
                )
            except httpx.HTTPError as err:  # the answer is lost: the vote may or may not be stored
                tally.errors[type(err).__name__] += 1
                lost = True
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.2)
                continue
            if response.status_code == 429:
                tally.rate_limited += 1
                await asyncio.sleep(1.0)
                continue
            break
        if response.status_code == 201:
            tally.acked.append((trial, choice))
            tally.vote_ms.append((time.perf_counter() - start) * 1000)
            tally.vote_server_ms.append(_server_ms(response))
        elif response.status_code == 409 and lost:
            tally.confirmed.append((trial, choice))
        else:
            tally.errors[f"HTTP {response.status_code}"] += 1


async def _crowd(port: int, n: int, max_seconds: float, tally: Tally) -> float:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    deadline = time.monotonic() + max_seconds
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30.0) as client:
        start = time.perf_counter()
        await asyncio.gather(
            *(_participant(client, tally, deadline, np.random.default_rng(k)) for k in range(n))
        )
        return time.perf_counter() - start


async def _killer(proc_box: list, db: Path, port: int, tally: Tally, target: int, report: dict) -> None:
    while len(tally.acked) < target:
        await asyncio.sleep(0.01)
    proc_box[0].send_signal(signal.SIGKILL)
    proc_box[0].wait()
    report["killed_after_acked"] = len(tally.acked)
    start = time.perf_counter()
    proc_box[0] = await asyncio.to_thread(_start_server, db, port)
    report["restart_seconds"] = time.perf_counter() - start


def _check(db: Path, tally: Tally) -> dict[str, Any]:
    with sqlite3.connect(db) as con:
        stored = con.execute("SELECT trial_id, choice FROM votes").fetchall()
    counts = Counter(t for t, _ in stored)
    by_trial = dict(stored)
    acked_ok = all(by_trial.get(t) == c and counts[t] == 1 for t, c in tally.acked)
    explained = {t for t, _ in tally.acked} | {t for t, _ in tally.confirmed}
    return {
        "stored_votes": len(stored),
        "acknowledged_votes": len(tally.acked),
        "confirmed_by_409_after_lost_answer": len(tally.confirmed),
        "every_acknowledged_vote_stored_once": bool(acked_ok),
        "duplicate_votes": sum(c - 1 for c in counts.values() if c > 1),
        "stored_but_never_acknowledged": len(set(by_trial) - explained),
    }


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def run(args: argparse.Namespace, crash: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = _make_study(Path(tmp), args.methods, args.inputs, args.votes)
        port = _free_port()
        box = [_start_server(db, port)]
        tally, report = Tally(), {}
        target = int(args.kill_after * args.participants * args.votes)

        async def main() -> float:
            crowd = asyncio.create_task(_crowd(port, args.participants, args.max_seconds, tally))
            if crash:
                await _killer(box, db, port, tally, target, report)
            return await crowd

        try:
            seconds = asyncio.run(main())
        finally:
            box[0].send_signal(signal.SIGTERM)
            box[0].wait(timeout=30)
        check = _check(db, tally)
    return {
        "run": "crash" if crash else "steady",
        "participants": args.participants,
        "votes_per_participant": args.votes,
        "seconds": seconds,
        "votes_per_second": len(tally.acked) / seconds,
        "vote_p50_ms": _pct(tally.vote_ms, 50),
        "vote_p99_ms": _pct(tally.vote_ms, 99),
        "next_p50_ms": _pct(tally.next_ms, 50),
        "next_p99_ms": _pct(tally.next_ms, 99),
        "server_vote_p50_ms": _pct(tally.vote_server_ms, 50),
        "server_vote_p99_ms": _pct(tally.vote_server_ms, 99),
        "server_next_p50_ms": _pct(tally.next_server_ms, 50),
        "server_next_p99_ms": _pct(tally.next_server_ms, 99),
        "rate_limited": tally.rate_limited,
        "client_errors": dict(tally.errors),
        **report,
        **check,
    }


def _print(rows: list[dict[str, Any]]) -> None:
    header = (f"{'run':<7} {'votes':>6} {'s':>6} {'votes/s':>8} {'vote p50':>9} {'vote p99':>9} "
              f"{'next p50':>9} {'next p99':>9} {'stored once':>11} {'dupes':>5} {'unacked':>7}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['run']:<7} {r['acknowledged_votes']:>6} {r['seconds']:>6.1f} "
              f"{r['votes_per_second']:>8.1f} {r['vote_p50_ms']:>7.1f}ms {r['vote_p99_ms']:>7.1f}ms "
              f"{r['next_p50_ms']:>7.1f}ms "
              f"{r['next_p99_ms']:>7.1f}ms {str(r['every_acknowledged_vote_stored_once']):>11} "
              f"{r['duplicate_votes']:>5} {r['stored_but_never_acknowledged']:>7}")  # fmt: skip
        print(f"        inside the server: vote p50 {r['server_vote_p50_ms']:.1f} ms, p99 "
              f"{r['server_vote_p99_ms']:.1f} ms; next p50 {r['server_next_p50_ms']:.1f} ms, p99 "
              f"{r['server_next_p99_ms']:.1f} ms")  # fmt: skip
        if r["run"] == "crash":
            print(f"        killed after {r['killed_after_acked']} acknowledged votes, restarted in "
                  f"{r['restart_seconds']:.1f} s; {r['confirmed_by_409_after_lost_answer']} lost answers "
                  f"confirmed by 409; client errors {r['client_errors']}")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--votes", type=int, default=10, help="trials per participant")
    parser.add_argument("--methods", type=int, default=6)
    parser.add_argument("--inputs", type=int, default=4)
    parser.add_argument("--kill-after", type=float, default=0.4, help="fraction of the votes before SIGKILL")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time limit of each run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load = os.getloadavg()
    rows = [run(args, crash=False), run(args, crash=True)]
    _print(rows)
    import fastapi
    import sqlalchemy
    import uvicorn

    payload = {
        "environment": {
            "python": platform.python_version(),
            "fastapi": fastapi.__version__,
            "uvicorn": uvicorn.__version__,
            "sqlalchemy": sqlalchemy.__version__,
            "sqlite": sqlite3.sqlite_version,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load,
            "note": "server and the simulated participants share the machine's CPUs (loopback)",
        },
        "sections": {"study": {"setup": vars(args) | {"output": str(args.output)}, "rows": rows}},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    ok = all(r["every_acknowledged_vote_stored_once"] and not r["duplicate_votes"] for r in rows)
    ok = ok and all(r["stored_but_never_acknowledged"] == 0 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
