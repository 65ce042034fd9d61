"""Ranking by a person: a local page that shows every candidate's rollout video in a
synchronised grid and takes their ranking (order with ties, "can't tell", comments).

The page is served on 127.0.0.1 (another host only with ``host=``), behind an unguessable
token in its URL, as Jupyter does. It serves only the page itself and the videos of the
candidates being ranked, by index (no path from the client reaches the filesystem). State
changes only by a POST that carries the token in a header and comes from the page's own
origin. Every string a candidate controls is escaped. The ranking is written to the run
store the moment it is submitted, so a run waiting for one survives the server being
restarted (``eureka-lab rank RUN_DIR``) and the whole process being killed (``resume``).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.text import safe_text
from eureka_lab.runs.records import Ranking
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore
from eureka_lab.selectors.base import Selector

MAX_BODY = 256 * 1024
"""Largest ranking a page may post."""


class RankingRequest:
    """What the page asks a person to rank: one iteration's candidates with their videos."""

    def __init__(self, store: RunStore, iteration: int, trained: Sequence[Trained], task: str):
        self.store = store
        self.iteration = iteration
        self.ids = [t.id for t in trained]
        self.components = {t.id: list(t.candidate.components) for t in trained}
        self.task = task
        self.done = threading.Event()
        self.ranking: Ranking | None = None

    def submit(self, payload: Any, annotator: str) -> Ranking:
        """Validate a posted ranking and record it; ValueError on anything malformed."""
        if not isinstance(payload, dict):
            raise ValueError("the ranking must be a JSON object")
        order = payload.get("order")
        cant_tell = bool(payload.get("cant_tell", False))
        if cant_tell:
            order = [list(self.ids)]
        if not (
            isinstance(order, list)
            and all(isinstance(g, list) and g for g in order)
            and sorted(c for g in order for c in g) == sorted(self.ids)
        ):
            raise ValueError("order must place every candidate exactly once")
        comments = payload.get("comments") or {}
        if not isinstance(comments, dict) or not set(comments) <= set(self.ids):
            raise ValueError("comments must be keyed by candidate id")
        overall = payload.get("overall")
        ranking = Ranking(
            annotator=safe_text(annotator, 64),
            time=time.time(),
            iteration=self.iteration,
            candidates=self.ids,
            order=order,
            comments={k: safe_text(v, 2000) for k, v in comments.items() if str(v).strip()},
            overall=safe_text(overall, 2000) if overall else None,
            cant_tell=cant_tell,
        )
        self.store.append_ranking(ranking)
        self.ranking = ranking
        self.done.set()
        return ranking


def _page(request: RankingRequest, token: str) -> bytes:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "web")),
        autoescape=True,  # everything a candidate controls is escaped
        undefined=jinja2.StrictUndefined,
    )
    page = env.get_template("rank.html.j2").render(
        task=request.task,
        iteration=request.iteration,
        candidates=[
            {"index": i, "id": cid, "components": ", ".join(request.components[cid])}
            for i, cid in enumerate(request.ids)
        ],
        token=token,
        data=json.dumps({"ids": request.ids, "token": token}),
    )
    return page.encode()


class RankingServer:
    """The page for one ranking request, served in a background thread."""

    def __init__(
        self,
        request: RankingRequest,
        host: str = "127.0.0.1",
        port: int = 0,
        annotator: str = "person",
    ) -> None:
        self.request = request
        self.token = secrets.token_urlsafe(24)
        self.annotator = annotator
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header(
                    "Content-Security-Policy",
                    "default-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
                    "script-src 'unsafe-inline'",
                )
                self.end_headers()
                self.wfile.write(body)

            def _token_ok(self, given: str | None) -> bool:
                return given is not None and hmac.compare_digest(given, server.token)

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                url = urlsplit(self.path)
                params = dict(p.split("=", 1) for p in url.query.split("&") if "=" in p)
                if not self._token_ok(params.get("token")):
                    return self._send(HTTPStatus.FORBIDDEN, b"a valid token is required")
                if url.path == "/":
                    return self._send(
                        HTTPStatus.OK, _page(server.request, server.token), "text/html"
                    )
                parts = url.path.split("/")
                if len(parts) == 3 and parts[1] == "video" and parts[2].isdigit():
                    index = int(parts[2])
                    ids = server.request.ids
                    path = server.request.store.video_path(ids[index]) if index < len(ids) else None
                    if path is not None:
                        return self._send(HTTPStatus.OK, Path(path).read_bytes(), "video/mp4")
                return self._send(HTTPStatus.NOT_FOUND, b"not found")

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path != "/rank" or not self._token_ok(self.headers.get("X-Token")):
                    return self._send(HTTPStatus.FORBIDDEN, b"a valid token is required")
                origin = self.headers.get("Origin")
                host = self.headers.get("Host", "")
                if origin is not None and urlsplit(origin).netloc != host:
                    return self._send(HTTPStatus.FORBIDDEN, b"cross-site requests are refused")
                size = int(self.headers.get("Content-Length") or 0)
                if size > MAX_BODY:
                    return self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"too large")
                try:
                    payload = json.loads(self.rfile.read(size) or b"null")
                    server.request.submit(payload, server.annotator)
                except (ValueError, RecursionError) as e:
                    return self._send(HTTPStatus.BAD_REQUEST, safe_text(e, 300).encode())
                return self._send(HTTPStatus.OK, b'{"ok": true}', "application/json")

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        host_bound, self.port = self.httpd.server_address[:2]
        self.host = cast(str, host_bound)  # an AF_INET socket's name has a str host
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/?token={self.token}"

    def __enter__(self) -> RankingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def recorded_order(store: Any, annotator: str, ids: list[str]) -> list[list[str]] | None:
    """The order ``annotator`` already gave these candidates (a resumed run), if any."""
    for r in reversed(store.rankings()):
        if r.annotator == annotator and sorted(r.candidates) == sorted(ids):
            return r.order
    return None


class HumanSelector(Selector):
    """A person ranks each iteration's candidates on the page (videos required)."""

    annotator = "person"
    records_itself = True
    prefers_newest = True
    """ICPL: each iteration's favourite becomes the parent; no second question per iteration."""
    feedback = "preference"
    needs_videos = True
    needs_fitness = False

    def __init__(self, seed: int = 0, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(seed)
        self.host, self.port = host, port
        self.announce: Callable[[str], None] = lambda url: print(
            f"rank the candidates at {url}", flush=True
        )
        self.store: RunStore | None = None
        self.task = ""

    def attach(
        self, store: RunStore, task: str, announce: Callable[[str], None] | None = None
    ) -> None:
        """The loop tells the selector which run it serves, and how to show the page's URL
        (it carries the token, so it goes to the person, not to the event log)."""
        self.store, self.task = store, task
        if announce is not None:
            self.announce = announce

    def rank(self, trained: Sequence[Trained]) -> list[list[str]]:
        if self.store is None:
            raise ConfigError("The human selector needs a run store (the loop attaches it).")
        recorded = recorded_order(self.store, self.annotator, [t.id for t in trained])
        if recorded is not None:
            return recorded
        iteration = max(t.candidate.iteration for t in trained)
        request = RankingRequest(self.store, iteration, trained, self.task)
        with RankingServer(request, self.host, self.port, self.annotator) as server:
            self.announce(server.url)
            request.done.wait()
        assert request.ranking is not None
        return request.ranking.order
