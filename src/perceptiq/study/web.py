"""The study web app (FastAPI): participant pages, the JSON API and the admin exports.

Pages are rendered on the server (Jinja2, autoescaped) and driven by one small vanilla script
(``static/study.js``); the API is the one the pages use, so crowdsourcing platforms and tests can use it too:

* ``POST /api/studies/{name}/sessions`` -> 201 ``{"token", "resume_url"}`` (and a same-site cookie);
* ``GET /api/studies/{name}/next?token=T`` -> ``{"trial_id", "left", "right", ...}`` or 204 when done;
* ``POST /api/studies/{name}/votes`` ``{"token", "trial_id", "choice": "left"|"right"}`` -> 201 once the
  vote is committed; 409 for a second vote on a trial, 401 for an unknown token, 403 for a token of another
  study or a trial of another session, 422 for invalid values, 400 for a body that is not a JSON object;
* ``GET /api/studies/{name}/images/{id}``: an image of the study by id (a path never comes from a URL);
* ``GET /api/studies/{name}/export.csv`` and ``/results.json`` with ``Authorization: Bearer ADMIN_TOKEN``.

Safety: POSTs must be ``application/json`` (415 otherwise; an HTML form cannot send it across sites
without a CORS preflight, which this app never grants) and a cross-site ``Origin`` or
``Sec-Fetch-Site: cross-site`` is refused (403), so no other site can vote or start sessions for a
participant (CSRF); each token and each client address has a token-bucket rate limit (429); responses carry
a strict Content-Security-Policy and ``Referrer-Policy: no-referrer`` (the token in a resume link never
leaks to another site); the admin token is compared in constant time and never rendered into a page.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.datastructures import MutableHeaders

from perceptiq.study.db import Database
from perceptiq.study.models import Image
from perceptiq.study.service import (
    NAME_PATTERN,
    StudyError,
    StudyNotFoundError,
    UnknownTokenError,
    cached_study,
    get_study,
)
from perceptiq.study.sessions import VoteIn, next_trial, record_votes, start_session

__all__ = ["RateLimit", "create_app", "serve"]

_PACKAGE = files("perceptiq.study")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class RateLimit:
    """Token bucket: ``rate`` requests per second on average, bursts of up to ``burst``."""

    rate: float = 20.0
    burst: int = 40


class _Buckets:
    def __init__(self, limit: RateLimit) -> None:
        self.limit, self.lock, self.state = limit, threading.Lock(), {}

    def allow(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.state.get(key, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - last) * self.limit.rate)
            if tokens >= 1.0:
                self.state[key] = (tokens - 1.0, now)
                return 0.0
            self.state[key] = (tokens, now)
            if len(self.state) > 100_000:
                self.state.clear()
            return (1.0 - tokens) / self.limit.rate


class _SecurityHeaders:
    """Pure ASGI middleware adding :data:`_SECURITY_HEADERS` to every response (unless already set) and a
    ``Server-Timing: app;dur=MS`` header (time from request to response start inside the server)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in _SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
                headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - start):.2f}"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _same_origin(request: Request) -> bool:
    """False for a request a browser marks as coming from another site (Origin or Sec-Fetch-Site)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    parts = urlsplit(origin)
    return parts.netloc == host and parts.scheme in ("http", "https")


def _cookie_name(name: str) -> str:
    return f"perceptiq_{name}"


def _set_token_cookie(response: Response, request: Request, name: str, token: str) -> None:
    """The participant's token for resuming: HttpOnly, SameSite=Strict, Secure when served over HTTPS."""
    response.set_cookie(
        _cookie_name(name), token, httponly=True, samesite="strict", max_age=30 * 86400,
        secure=request.url.scheme == "https",
    )  # fmt: skip


def create_app(
    db: Database,
    *,
    admin_token: str,
    rate_limit: RateLimit | None = None,
    session_rate_limit: RateLimit | None = None,
    threads: int | None = None,
) -> FastAPI:
    """The web app over ``db``. ``rate_limit`` applies per participant token, ``session_rate_limit`` to
    session starts per client address; ``threads`` caps the worker threads of blocking handlers (default
    8 on SQLite, 32 otherwise)."""
    if len(admin_token) < 16:
        raise ValueError("the admin token must be at least 16 characters")
    workers = threads or (8 if db.is_sqlite else 32)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        # Blocking handlers run in anyio's thread pool (40 threads by default). Fewer threads contend less
        # for the GIL and, on SQLite, for the single writer: shorter tails under many voters.
        anyio.to_thread.current_default_thread_limiter().total_tokens = workers
        yield

    app = FastAPI(title="perceptiq study", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    templates = Environment(
        loader=FileSystemLoader(str(_PACKAGE / "templates")), autoescape=select_autoescape(["html"])
    )
    per_token = _Buckets(rate_limit or RateLimit())
    per_client = _Buckets(session_rate_limit or RateLimit(rate=5.0, burst=300))
    app.mount("/static", StaticFiles(directory=str(_PACKAGE / "static")), name="static")

    app.add_middleware(_SecurityHeaders)

    @app.exception_handler(StudyError)
    async def study_error(_request: Request, err: StudyError) -> JSONResponse:
        return _error(err.status, str(err))

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(template).render(**context), status_code=status)

    def check_name(name: str) -> None:
        if not NAME_PATTERN.match(name):
            raise StudyNotFoundError("no such study")

    def limited(key: str, buckets: _Buckets) -> JSONResponse | None:
        wait = buckets.allow(key)
        if wait:
            return _error(429, "too many requests", {"Retry-After": str(max(1, math.ceil(wait)))})
        return None

    async def json_body(request: Request) -> dict[str, Any] | JSONResponse:
        if not _same_origin(request):
            return _error(403, "cross-site request refused")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _error(415, "the body must be JSON (Content-Type: application/json)")
        raw = await request.body()
        if len(raw) > 10_000:
            return _error(413, "request body too large")
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        return body

    def admin(request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            value.strip().encode(), admin_token.encode()
        ):
            return _error(
                401, "admin token required (Authorization: Bearer ...)", {"WWW-Authenticate": "Bearer"}
            )
        return None

    def study_context(name: str) -> dict[str, Any]:
        with db.sessionmaker() as session:
            study = get_study(session, name)
            return {"name": study.name, "instructions": study.instructions}

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return page("index.html")

    @app.get("/s/{name}", response_class=HTMLResponse)
    def consent(name: str, request: Request) -> Response:
        check_name(name)
        context = study_context(name)
        return page("consent.html", has_session=_cookie_name(name) in request.cookies, **context)

    @app.get("/s/{name}/trial", response_class=HTMLResponse)
    def trial_page(name: str, request: Request, token: str | None = None) -> Response:
        check_name(name)
        context = study_context(name)
        token = token or request.cookies.get(_cookie_name(name))
        if not token:
            return RedirectResponse(f"/s/{name}", status_code=303)
        try:
            view = next_trial(db, name, token)
        except UnknownTokenError:
            return page(
                "message.html", 401, title="Unknown link", text="This study link is not valid.", **context
            )
        if view is None:
            return RedirectResponse(f"/s/{name}/done", status_code=303)
        response = page("trial.html", token=token, **context)
        _set_token_cookie(response, request, name, token)
        return response

    @app.get("/s/{name}/done", response_class=HTMLResponse)
    def done_page(name: str) -> Response:
        check_name(name)
        return page(
            "message.html",
            title="Thank you",
            text="You have answered every comparison. You may close this tab.",
            **study_context(name),
        )

    @app.post("/api/studies/{name}/sessions", status_code=201)
    async def new_session(name: str, request: Request) -> Response:
        check_name(name)
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        client = request.client.host if request.client else "unknown"
        if (refused := limited(f"client:{client}", per_client)) is not None:
            return refused
        observer = body.get("observer")
        if observer is not None and not isinstance(observer, str):
            return _error(422, "observer must be a string")
        token, _ = start_session(db, name, observer=observer)
        resume = f"/s/{name}/trial?token={token}"
        response = JSONResponse({"token": token, "resume_url": resume}, status_code=201)
        _set_token_cookie(response, request, name, token)
        return response

    @app.get("/api/studies/{name}/next")
    def next_api(name: str, token: str | None = None) -> Response:
        check_name(name)
        if not token:
            return _error(401, "missing participant token")
        if (refused := limited(f"token:{token[:64]}", per_token)) is not None:
            return refused
        view = next_trial(db, name, token)
        if view is None:
            return Response(status_code=204)
        return JSONResponse(
            {
                "trial_id": view.trial_id,
                "left": f"/api/studies/{name}/images/{view.left_id}",
                "right": f"/api/studies/{name}/images/{view.right_id}",
                "left_size": list(view.left_size),
                "right_size": list(view.right_size),
                "done": view.done,
                "total": view.total,
            }
        )

    @app.post("/api/studies/{name}/votes", status_code=201)
    async def vote_api(name: str, request: Request) -> Response:
        check_name(name)
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        unknown = set(body) - {"token", "trial_id", "choice", "response_ms"}
        if unknown:
            return _error(422, f"unknown field(s): {sorted(unknown)}")
        token = body.get("token")
        if not isinstance(token, str) or not token:
            return _error(401, "missing participant token")
        if (refused := limited(f"token:{token[:64]}", per_token)) is not None:
            return refused
        vote = VoteIn(token, body.get("trial_id"), body.get("choice"), body.get("response_ms"))
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(record_votes, db, name, [vote])
        return JSONResponse({"stored": True}, status_code=201)

    @app.get("/api/studies/{name}/images/{image_id}")
    def image(name: str, image_id: int) -> Response:
        check_name(name)
        study = cached_study(db, name)
        with db.sessionmaker() as session:
            row = session.scalar(select(Image).where(Image.id == image_id, Image.study_id == study.id))
        if row is None:
            return _error(404, "no such image in this study")
        root = Path(study.image_dir).resolve()
        path = (root / row.name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return _error(404, "image file missing")
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/studies/{name}/export.csv")
    def export_csv(name: str, request: Request) -> Response:
        check_name(name)
        if (denied := admin(request)) is not None:
            return denied
        from perceptiq.study.results import vote_frame

        frame, _ = vote_frame(db, name)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8")

    @app.get("/api/studies/{name}/results.json")
    def results_json(name: str, request: Request, exclude_flagged: bool = False) -> Response:
        check_name(name)
        if (denied := admin(request)) is not None:
            return denied
        from perceptiq.io.json_text import dumps
        from perceptiq.study.results import study_results

        payload = study_results(db, name, exclude_flagged=exclude_flagged).to_dict()
        return Response(dumps(payload), media_type="application/json")

    return app


def serve(
    db: Database,
    *,
    admin_token: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    rate_limit: RateLimit | None = None,
    log_level: str = "warning",
) -> None:
    """Run the app with uvicorn until interrupted (one process; SQLite writes are serialised by its lock)."""
    import uvicorn

    app = create_app(db, admin_token=admin_token, rate_limit=rate_limit)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
