"""Ranking by a person: a local page that shows every candidate's rollout video in a
synchronised grid and takes their ranking (order with ties, "can't tell", comments).

The page is served on 127.0.0.1 (another host only with ``host=``), behind an unguessable
token in its URL, as Jupyter does. It serves only the page itself and the videos of the
candidates being ranked, by index (no path from the client reaches the filesystem), as the
run store checked them. State changes only by a POST that carries the token in a header and
comes from the page's own origin. Every request is parsed strictly: the route and query of
a GET, and the length, type and JSON shape of a POST's body, which is never read past its
limit; a connection that goes silent is dropped. Anything else gets a 4xx and a short
message. Every string a candidate controls is escaped. The ranking is written to the run
store the moment it is submitted, so a run waiting for one survives the server being
restarted (``eureka-lab rank RUN_DIR``) and the whole process being killed (``resume``).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationError

from eureka_lab.core.errors import ConfigError, RunError
from eureka_lab.core.text import safe_text
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore
from eureka_lab.selectors.base import VERDICT_QUESTION, Announce, Selector, verdict_roles
from eureka_lab.selectors.page import (
    AlreadyRanked,
    RankingRequest,
    Refused,
    Submission,
    page,
)

MAX_BODY = 256 * 1024
"""Largest ranking a page may post."""
REQUEST_TIMEOUT = 30.0
"""Seconds a connection may stay silent: a client that announces more bytes than it sends
cannot hold a handler."""
VIDEO_ROUTE = re.compile(r"/video/(0|[1-9][0-9]{0,3})")


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
            timeout = REQUEST_TIMEOUT

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

            def _answer(self, respond: Callable[[], tuple[int, bytes, str]]) -> None:
                """Send what ``respond`` makes of the request, or why it was refused."""
                try:
                    status, body, kind = respond()
                except Refused as e:
                    status, body, kind = e.status, safe_text(e, 300).encode(), "text/plain"
                self._send(status, body, kind)

            def _token_ok(self, given: str | None) -> bool:
                return given is not None and hmac.compare_digest(given, server.token)

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                self._answer(self._get)

            def do_POST(self) -> None:  # noqa: N802
                self._answer(self._post)

            def _get(self) -> tuple[int, bytes, str]:
                url = urlsplit(self.path)
                if url.scheme or url.netloc or url.fragment:
                    raise Refused(HTTPStatus.BAD_REQUEST, "only a path and a query are served")
                try:
                    query = parse_qsl(url.query, strict_parsing=True, max_num_fields=1)
                except ValueError:
                    raise Refused(HTTPStatus.BAD_REQUEST, "the query is only ?token=") from None
                if not self._token_ok(dict(query).get("token")):
                    raise Refused(HTTPStatus.FORBIDDEN, "a valid token is required")
                if url.path == "/":
                    return HTTPStatus.OK, page(server.request, server.token), "text/html"
                route = VIDEO_ROUTE.fullmatch(url.path)
                ids = server.request.ids
                if route is None or int(route[1]) >= len(ids):
                    raise Refused(HTTPStatus.NOT_FOUND, "not found")
                try:
                    video = server.request.store.video(ids[int(route[1])])
                except RunError as e:
                    raise Refused(HTTPStatus.NOT_FOUND, str(e)) from None
                if video is None:
                    raise Refused(HTTPStatus.NOT_FOUND, "no video was recorded")
                return HTTPStatus.OK, video, "video/mp4"

            def _post(self) -> tuple[int, bytes, str]:
                if self.path != "/rank":
                    raise Refused(HTTPStatus.NOT_FOUND, "not found")
                if not self._token_ok(_one(self.headers, "X-Token")):
                    raise Refused(HTTPStatus.FORBIDDEN, "a valid token is required")
                origin = _one(self.headers, "Origin")
                if origin is not None and urlsplit(origin).netloc != _one(self.headers, "Host"):
                    raise Refused(HTTPStatus.FORBIDDEN, "cross-site requests are refused")
                posted = _submission(self.headers, self.rfile)
                try:
                    server.request.submit(posted, server.annotator)
                except ValueError as e:
                    raise Refused(HTTPStatus.BAD_REQUEST, str(e)) from None
                except AlreadyRanked as e:
                    raise Refused(HTTPStatus.CONFLICT, str(e)) from None
                return HTTPStatus.OK, server.request.answer(), "application/json"

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


def _one(headers: Any, name: str) -> str | None:
    """The value of a header sent at most once; Refused where it is sent twice (which one
    a proxy or the page would take is anyone's guess)."""
    values = headers.get_all(name) or []
    if len(values) > 1:
        raise Refused(HTTPStatus.BAD_REQUEST, f"{name} is sent more than once")
    return values[0] if values else None


def _submission(headers: Any, body: Any) -> Submission:
    """The posted ranking, read from ``body`` as strictly as its headers allow: a length in
    digits within MAX_BODY (no chunks), JSON, and exactly the fields of a Submission.
    Nothing is read past the length; a client that sends less is cut off by the socket's
    timeout."""
    if headers.get_all("Transfer-Encoding"):
        raise Refused(HTTPStatus.BAD_REQUEST, "send the ranking with a Content-Length")
    length = _one(headers, "Content-Length")
    if length is None:
        raise Refused(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
    digits = length.strip(" \t")
    if not re.fullmatch(r"[0-9]+", digits):
        raise Refused(HTTPStatus.BAD_REQUEST, "the Content-Length must be digits")
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_BODY} bytes")
    size = int(digits)
    kind = (_one(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the ranking must be application/json")
    try:
        data = body.read(size)
    except TimeoutError:
        raise Refused(HTTPStatus.REQUEST_TIMEOUT, "the body did not arrive in time") from None
    if len(data) != size:
        raise Refused(HTTPStatus.BAD_REQUEST, "the body is shorter than its Content-Length")
    try:
        return Submission.model_validate(json.loads(data, object_pairs_hook=_unique_keys))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "the ranking"
        raise Refused(HTTPStatus.BAD_REQUEST, f"{where}: {first['msg']}") from None
    except (ValueError, RecursionError) as e:
        raise Refused(HTTPStatus.BAD_REQUEST, f"not JSON: {e}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once (else which one counts is a guess)."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key is given twice")
    return dict(pairs)


def recorded_order(store: Any, annotator: str, ids: list[str]) -> list[list[str]] | None:
    """The order ``annotator`` already gave these candidates (a resumed run), if any."""
    for r in reversed(store.rankings()):
        if r.annotator == annotator and sorted(r.candidates) == sorted(ids):
            return r.order
    return None


class HumanSelector(Selector):
    """A person ranks each iteration's candidates on the page (videos required), and gives
    the final verdict blind."""

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
        self.announce: Announce = _print_url
        self.store: RunStore | None = None
        self.task = ""

    def attach(self, store: RunStore, task: str, announce: Announce | None = None) -> None:
        """The loop tells the selector which run it serves, and how to show the page's URL
        (it carries the token, so it goes to the person, not to the event log)."""
        self.store, self.task = store, task
        if announce is not None:
            self.announce = announce

    def rank(self, trained: Sequence[Trained]) -> list[list[str]]:
        iteration = max(t.candidate.iteration for t in trained)
        return self._ask(trained, iteration)

    def judge(self, best: Trained, human: Trained) -> list[list[str]]:
        """The final verdict, blind: the two policies under the labels A and B in an order
        shuffled with a fresh seed (recorded with the answer), nothing on the page naming
        either; the page says what is judged, and which was which once it is answered."""
        return self._ask(
            [best, human],
            best.candidate.iteration,
            blind_seed=secrets.randbits(31),
            question=VERDICT_QUESTION,
            reveal=verdict_roles(best, human),
        )

    def _ask(
        self,
        trained: Sequence[Trained],
        iteration: int,
        blind_seed: int | None = None,
        question: str | None = None,
        reveal: dict[str, str] | None = None,
    ) -> list[list[str]]:
        if self.store is None:
            raise ConfigError("The human selector needs a run store (the loop attaches it).")
        recorded = recorded_order(self.store, self.annotator, [t.id for t in trained])
        if recorded is not None:
            return recorded
        request = RankingRequest(
            self.store,
            iteration,
            trained,
            self.task,
            blind_seed=blind_seed,
            question=question,
            reveal=reveal,
        )
        with RankingServer(request, self.host, self.port, self.annotator) as server:
            self.announce(server.url, question)
            request.done.wait()
        assert request.ranking is not None
        return request.ranking.order


def _print_url(url: str, question: str | None = None) -> None:
    print(
        f"{question} Judge them at {url}" if question else f"rank the candidates at {url}",
        flush=True,
    )
