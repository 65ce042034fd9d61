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
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eureka_lab.core.errors import ConfigError, RunError
from eureka_lab.core.text import safe_text
from eureka_lab.runs.behaviour_text import short_line
from eureka_lab.runs.records import Ranking
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore
from eureka_lab.selectors.base import VERDICT_QUESTION, Announce, Selector, verdict_roles

MAX_BODY = 256 * 1024
"""Largest ranking a page may post."""
REQUEST_TIMEOUT = 30.0
"""Seconds a connection may stay silent: a client that announces more bytes than it sends
cannot hold a handler."""
VIDEO_ROUTE = re.compile(r"/video/(0|[1-9][0-9]{0,3})")


class Submission(BaseModel):
    """What the page posts, exactly: unknown keys are refused and no type is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    order: list[list[str]] = Field(default_factory=list)
    """Best first; candidates in one inner list are tied."""
    cant_tell: bool = False
    comments: dict[str, str] = Field(default_factory=dict)
    overall: str | None = None


class AlreadyRanked(Exception):
    """The question was answered already (another post, or the page of another process for
    the same run): the answer on record stands."""


class Refused(Exception):
    """A request the page does not take: the status to answer and a short reason."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


LABELS = "ABCDEFGHIJ"
"""The neutral names of a blind query's candidates, in the order shown."""


def behaviour_line(t: Trained) -> str | None:
    """What the policy of ``t`` did at its best checkpoint, in one line (the evaluator's
    summary), or None where it has none."""
    at = next((c for c in t.checkpoints if c.step == t.result.best_step), None)
    return short_line(at.behaviour) if at is not None and at.behaviour is not None else None


class RankingRequest:
    """What the page asks a person to rank: one iteration's candidates with their videos.
    A blind one (``blind_seed``: the final verdict) shows them in an order shuffled with
    that seed, under neutral labels (A, B), with nothing that names them: no id, no reward
    components, no behaviour line; the ranking records which label was which."""

    def __init__(
        self,
        store: RunStore,
        iteration: int,
        trained: Sequence[Trained],
        task: str,
        *,
        blind_seed: int | None = None,
        question: str | None = None,
        reveal: dict[str, str] | None = None,
    ):
        shown = list(trained)
        if blind_seed is not None:
            random.Random(blind_seed).shuffle(shown)
        self.store = store
        self.iteration = iteration
        self.ids = [t.id for t in shown]
        """The candidates, in the order shown."""
        self.blind_seed = blind_seed
        self.labels = list(LABELS[: len(shown)]) if blind_seed is not None else list(self.ids)
        """What the page calls each candidate (and posts back): its id, or a neutral label."""
        self.components = {t.id: list(t.candidate.components) for t in shown}
        self.did = {t.id: behaviour_line(t) for t in shown}
        self.task = task
        self.question = question
        self.reveal = reveal or {}
        """Blind: what each candidate was, in words (id to text), told after the answer."""
        self.done = threading.Event()
        self.ranking: Ranking | None = None
        self._answering = threading.Lock()

    @property
    def blind(self) -> bool:
        return self.blind_seed is not None

    def submit(self, posted: Submission, annotator: str) -> Ranking:
        """Record a posted ranking; ValueError where it does not rank exactly the candidates
        shown or names no best (a first group of one) without saying it can't tell them
        apart, AlreadyRanked where the question has an answer already. Either way the
        answer on record is :attr:`ranking`, and the run goes on with it."""
        named = dict(zip(self.labels, self.ids, strict=True))
        if posted.cant_tell:
            order = [list(self.ids)]
        else:
            given = posted.order
            if not all(given) or sorted(c for g in given for c in g) != sorted(self.labels):
                raise ValueError("order must place every candidate exactly once")
            if len(self.ids) > 1 and len(given[0]) != 1:
                raise ValueError(
                    "choose a best: the first group of the order must hold one candidate "
                    "(or say you can't tell them apart: cant_tell true)"
                    if len(given) > 1
                    else "every candidate is tied: choose a best (and a worst), or say you "
                    "can't tell them apart (cant_tell true)"
                )
            order = [[named[c] for c in g] for g in given]
        if not set(posted.comments) <= set(self.labels):
            raise ValueError(
                "comments must be keyed by candidate" + (" label" if self.blind else " id")
            )
        ranking = Ranking(
            annotator=safe_text(annotator, 64),
            time=time.time(),
            iteration=self.iteration,
            candidates=self.ids,
            order=order,
            comments={
                named[k]: safe_text(v, 2000) for k, v in posted.comments.items() if v.strip()
            },
            overall=safe_text(posted.overall, 2000) if posted.overall else None,
            cant_tell=posted.cant_tell,
            labels=named if self.blind else None,
            shuffle_seed=self.blind_seed,
        )
        with self._answering:
            if self.ranking is None:
                self.ranking = self.store.append_ranking(ranking)
                self.done.set()
            if self.ranking is not ranking:
                raise AlreadyRanked("already ranked: the first answer stands")
        return ranking

    def answer(self) -> bytes:
        """What the page is told once its ranking is recorded (blind: which was which)."""
        told = {
            label: self.reveal.get(cid, cid)
            for label, cid in zip(self.labels, self.ids, strict=True)
        }
        return json.dumps({"ok": True, "reveal": told if self.blind else {}}).encode()


def _page(request: RankingRequest, token: str) -> bytes:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "web")),
        autoescape=True,  # everything a candidate controls is escaped
        undefined=jinja2.StrictUndefined,
    )
    loop = request.store.config.get("loop", {})
    fps = loop.get("video_fps") if isinstance(loop, dict) else None
    blind = request.blind
    page = env.get_template("rank.html.j2").render(
        task=request.task,
        task_name=str(request.store.config.get("task", {}).get("name", "")),
        iteration=request.iteration,
        blind=blind,
        question=request.question,
        candidates=[
            {
                "index": i,
                "label": label,
                "components": "" if blind else ", ".join(request.components[cid]),
                "did": None if blind else request.did[cid],
            }
            for i, (label, cid) in enumerate(zip(request.labels, request.ids, strict=True))
        ],
        token=token,
        data=json.dumps(
            {
                "labels": request.labels,
                "token": token,
                "blind": blind,
                "fps": fps if isinstance(fps, int) and fps > 0 else 30,
            }
        ),
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
                    return HTTPStatus.OK, _page(server.request, server.token), "text/html"
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
