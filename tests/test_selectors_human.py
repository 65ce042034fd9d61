"""Ranking by a person on the local page: its security (token, traversal, cross-site POST,
escaping, requests parsed strictly, racing submissions), and a real browser that loads every video, ranks by keyboard and submits while
a real run waits, then goes on with the person's ranking."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("imageio_ffmpeg")

from eureka_lab.backends.scripted import ScriptedBackend  # noqa: E402
from eureka_lab.loop.loop import Loop  # noqa: E402
from eureka_lab.runs.config import LoopConfig  # noqa: E402
from eureka_lab.runs.records import Candidate, TrainingResult  # noqa: E402
from eureka_lab.runs.scores import Trained  # noqa: E402
from eureka_lab.runs.store import RunStore  # noqa: E402
from eureka_lab.selectors import human as ranking  # noqa: E402
from eureka_lab.selectors.human import RankingServer  # noqa: E402
from eureka_lab.selectors.page import RankingRequest  # noqa: E402
from eureka_lab.task.load import task_from_dict  # noqa: E402

from support.tasks import tiny_task_dict  # noqa: E402

HOSTILE = '<img src=x onerror="window.pwned=1">'
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _trained(n=2):
    return [
        Trained(
            Candidate(id=f"iter_00/cand_{i:02d}", iteration=0, index=i, components=[c]),
            TrainingResult(status="trained", fitness=0.0),
        )
        for i, c in enumerate(["run", *[HOSTILE] * (n - 1)])
    ]


def _request(tmp_path, n=2):
    store = RunStore.create(tmp_path, "rank", {})
    trained = _trained(n)
    for i, t in enumerate(trained):
        store.save_video(t.id, b"\x00\x00\x00\x18ftypmp42 video %d" % i)
    (tmp_path / "secret.txt").write_text("s3cret")
    return store, RankingRequest(store, 0, trained, f"task {HOSTILE}")


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _post(url, body, token=None, origin=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Token"] = token
    if origin:
        headers["Origin"] = origin
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    return _get(req)


def test_the_page_needs_its_token_and_serves_only_the_videos(tmp_path):
    store, request = _request(tmp_path)
    with RankingServer(request) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert server.host == "127.0.0.1"
        assert _get(base + "/")[0] == 403
        assert _get(base + "/?token=wrong")[0] == 403
        status, page = _get(server.url)
        assert status == 200
        assert HOSTILE.encode() not in page and b"&lt;img src=x" in page  # escaped
        t = f"token={server.token}"
        assert _get(f"{base}/video/0?{t}") == (200, b"\x00\x00\x00\x18ftypmp42 video 0")
        for path in (
            "/video/2",
            "/video/../secret.txt",
            "/video/%2e%2e%2fsecret.txt",
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/video/-1",
            "/video/0/../../x",
        ):
            status, body = _get(f"{base}{path}?{t}")
            assert status in (403, 404) and b"s3cret" not in body, path
        ids = request.ids
        good = {"order": [[ids[1]], [ids[0]]], "comments": {ids[0]: "too slow"}}
        assert _post(base + "/rank", good)[0] == 403  # no token
        assert _post(base + "/rank", good, server.token, origin="http://evil.example")[0] == 403
        assert _post(base + "/rank", {"order": [[ids[0]]]}, server.token)[0] == 400
        assert store.rankings() == []
        assert _post(base + "/rank", good, server.token, origin=base)[0] == 200
    (ranking,) = store.rankings()
    assert ranking.order == [[ids[1]], [ids[0]]] and ranking.comments == {ids[0]: "too slow"}
    assert ranking.pairs() == [(ids[1], ids[0])]


@pytest.mark.parametrize(
    ("order", "why"),
    [
        ([["iter_00/cand_00", "iter_00/cand_01", "iter_00/cand_02"]], b"every candidate is tied"),
        ([["iter_00/cand_00", "iter_00/cand_01"], ["iter_00/cand_02"]], b"choose a best"),
    ],
)
def test_an_answer_without_a_best_is_refused_unless_it_says_cant_tell(tmp_path, order, why):
    """The page starts with every candidate tied; an answer sent before choosing anything
    (Enter pressed too early) is refused with the reason, and the run keeps waiting."""
    store, request = _request(tmp_path, n=3)
    with RankingServer(request) as server:
        base = f"http://127.0.0.1:{server.port}"
        status, body = _post(base + "/rank", {"order": order}, server.token, origin=base)
        assert status == 400 and why in body and b"cant_tell" in body
        assert store.rankings() == [] and not request.done.is_set()
        said = {"order": [], "cant_tell": True, "overall": "all three fall at once"}
        assert _post(base + "/rank", said, server.token, origin=base)[0] == 200
    (ranking,) = store.rankings()
    assert ranking.cant_tell and ranking.order == [request.ids]
    assert ranking.overall == "all three fall at once"


def _final_pair():
    best, human = (
        Trained(
            Candidate(id=f"final/{name}/seed_1000", iteration=1, index=i, components=[comp]),
            TrainingResult(status="trained", fitness=0.0),
        )
        for i, (name, comp) in enumerate([("best", "upright"), ("human", "alive_bonus")])
    )
    return best, human


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_final_verdict_is_blind_and_records_which_label_was_which(tmp_path, seed):
    from eureka_lab.selectors.base import VERDICT_QUESTION, verdict_roles

    store = RunStore.create(tmp_path, "verdict", {"task": {"name": "pole"}})
    best, human = _final_pair()
    for t in (best, human):
        store.save_video(t.id, b"\x00\x00\x00\x18ftypmp42 " + t.id.encode())
    request = RankingRequest(
        store,
        1,
        [best, human],
        "balance the pole",
        blind_seed=seed,
        question=VERDICT_QUESTION,
        reveal=verdict_roles(best, human),
    )
    assert request.labels == ["A", "B"] and sorted(request.ids) == sorted([best.id, human.id])
    with RankingServer(request) as server:
        base = f"http://127.0.0.1:{server.port}"
        status, page = _get(server.url)
        assert status == 200 and VERDICT_QUESTION.encode() in page
        for hidden in (b"final/", b"seed_1000", b"upright", b"alive_bonus", b"iteration 1"):
            assert hidden not in page, hidden
        shown_first = _get(f"{base}/video/0?token={server.token}")[1]
        assert shown_first.endswith(request.ids[0].encode())  # video 0 is label A's
        real = {"order": [[best.id], [human.id]]}
        assert _post(base + "/rank", real, server.token, origin=base)[0] == 400  # labels only
        status, body = _post(
            base + "/rank",
            {"order": [["B"], ["A"]], "comments": {"A": "wobbles"}},
            server.token,
            origin=base,
        )
        assert status == 200
    (ranking,) = store.rankings()
    assert ranking.labels == {"A": request.ids[0], "B": request.ids[1]}
    assert ranking.shuffle_seed == seed
    assert ranking.order == [[request.ids[1]], [request.ids[0]]]
    assert ranking.comments == {request.ids[0]: "wobbles"}
    told = json.loads(body)["reveal"]
    assert told["B"] == verdict_roles(best, human)[request.ids[1]]


def test_the_shuffle_of_the_final_verdict_depends_on_its_seed(tmp_path):
    store = RunStore.create(tmp_path, "verdict", {})
    firsts = {
        RankingRequest(store, 1, list(_final_pair()), "t", blind_seed=seed).ids[0]
        for seed in range(40)
    }
    assert firsts == {"final/best/seed_1000", "final/human/seed_1000"}


BALANCE = """```python
import numpy as np


def compute_reward(obs, action, next_obs, info):
    upright = {scale} * (1.0 - np.abs(next_obs[:, 1]))
    return upright, {{"upright": upright}}
```"""


BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def _videos_ready(page) -> list[float]:
    page.wait_for_function(
        "Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1)",
        timeout=30_000,
    )
    return page.evaluate("Array.from(document.querySelectorAll('video')).map(v => v.duration)")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_a_person_ranks_in_a_real_browser_then_gives_the_final_verdict_blind(tmp_path):
    """A real run waits on the page: an answer with nothing chosen is refused (by the page,
    and by the server when it is posted anyway), best and worst chosen by button and by
    keyboard are recorded and the run goes on; its final verdict page is blind (neutral
    labels, no id or reward name in the page), says what it judges, and the answer is
    recorded as best or human through the labels."""
    from playwright.sync_api import sync_playwright

    task = task_from_dict(
        tiny_task_dict(name="pole", env_id="InvertedPendulum-v5", description="balance the pole")
    )
    urls: list[str] = []
    lines: list[str] = []
    store = RunStore.create(tmp_path, "human", {"task": task.model_dump(mode="json")})
    config = LoopConfig(
        iterations=1,
        samples=2,
        workers=2,
        final_seeds=1,
        selection="human",
        feedback="preference",
        videos=True,
        video_steps=30,
        video_size=(160, 120),
    )
    backend = ScriptedBackend(responses=[BALANCE.format(scale=1.0), BALANCE.format(scale=2.0)])

    def reporter(event):
        from eureka_lab.report.terminal import describe_event

        if event["event"] == "ranking_url":
            urls.append(event["url"])
        lines.append(describe_event(event) or "")

    loop = Loop(store, task, config, backend, reporter=reporter)
    done: list = []
    thread = threading.Thread(target=lambda: done.append(loop.run()), daemon=True)
    thread.start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _wait(urls, 1, thread)
        page.goto(urls[0])
        durations = _videos_ready(page)
        assert len(durations) == 2 and all(d > 0 for d in durations)
        assert page.is_disabled("#submit")
        assert "steps per episode" in page.inner_text(".did")  # what each policy did
        page.keyboard.press("h")
        assert page.is_hidden(".did")  # judged from the videos alone, if the person wants
        page.keyboard.press("h")
        page.keyboard.press("Enter")  # nothing chosen: the page refuses to send it
        assert "choose a best" in page.inner_text("#status")
        page.evaluate(
            "postRanking({order: [['iter_00/cand_00', 'iter_00/cand_01']], cant_tell: false})"
        )  # sent anyway: the server refuses it, and the page says why
        page.wait_for_selector("body[data-submitted='no']", timeout=10_000)
        assert "every candidate is tied" in page.inner_text("#status")
        assert store.rankings() == []
        page.click("button[data-best='1']")  # candidate 2 is the best, by its button
        page.keyboard.press("1")
        page.keyboard.press("w")  # candidate 1 the worst, by keyboard
        assert page.inner_text("#summary") == "Your order: 2 > 1"
        page.keyboard.press("Enter")
        page.wait_for_selector("body[data-submitted='yes']", timeout=10_000)
        assert "Saved" in page.inner_text("#status")
        page.screenshot(path=str(tmp_path / "rank.png"))

        _wait(urls, 2, thread)  # the final verdict
        verdict = browser.new_page(viewport={"width": 1920, "height": 1080})
        verdict.goto(urls[1])
        assert len(_videos_ready(verdict)) == 2
        text, html = verdict.inner_text("body"), verdict.content()
        assert "Final verdict: which of these two policies better does the task?" in text
        assert "balance the pole" in text and "Policy A" in text and "Policy B" in text
        for hidden in ("final/", "seed_1000", "iter_00", "upright", "human reward (", "best/"):
            assert hidden not in html, hidden
        verdict.keyboard.press("ArrowLeft")  # A is better
        assert verdict.inner_text("#summary") == "Your verdict: A is better than B"
        verdict.keyboard.press("Enter")
        verdict.wait_for_selector("body[data-submitted='yes']", timeout=10_000)
        told = verdict.inner_text("#status")
        verdict.screenshot(path=str(tmp_path / "verdict.png"))
        browser.close()
    thread.join(300)
    assert done, "the run did not go on after the ranking"
    ranking, final = store.rankings()
    assert ranking.annotator == "person" and ranking.labels is None
    assert ranking.order == [["iter_00/cand_01"], ["iter_00/cand_00"]]
    assert store.iteration(0).best == "iter_00/cand_01"
    assert sorted(final.labels) == ["A", "B"] and final.shuffle_seed is not None
    assert sorted(final.labels.values()) == ["final/best/seed_1000", "final/human/seed_1000"]
    assert final.order == [[final.labels["A"]], [final.labels["B"]]]
    expected = "best" if final.labels["A"] == "final/best/seed_1000" else "human"
    assert done[0].preference_queries == 2 and done[0].verdict == expected
    assert f"A was the {'run' if expected == 'best' else 'task'}" in told
    assert "ranking for iteration 0 received: best iter_00/cand_01, worst iter_00/cand_00" in lines
    word = "the run's best reward" if expected == "best" else "the human reward"
    assert f"final verdict received: {word} is better (shown as A)" in lines


def _wait(urls: list[str], count: int, thread: threading.Thread) -> None:
    for _ in range(1500):
        if len(urls) >= count:
            return
        thread.join(0.2)
    raise AssertionError(f"the run asked for {len(urls)} rankings, not {count}")


SEEDS = """
import numpy as np


def upright(obs, action, next_obs, info):
    components = {"upright": 1.0 - np.abs(next_obs[:, 1])}
    return sum(components.values()), components


def centred(obs, action, next_obs, info):
    components = {"centred": -np.abs(next_obs[:, 0])}
    return sum(components.values()), components
"""


def _cli(*args, cwd):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.Popen(
        [sys.executable, "-m", "eureka_lab.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def _wait_for_url(proc, seen: list[str] | None = None) -> str:
    for line in proc.stdout:
        if seen is not None:
            seen.append(line)
        if "in your browser: " in line:
            return line.split("browser: ", 1)[1].strip()
    raise AssertionError("no ranking URL was printed")


@pytest.mark.slow
def test_a_waiting_run_survives_being_killed_and_is_ranked_later(tmp_path):
    """The run waits for a ranking; the whole process is killed; `eureka-lab rank RUN_DIR`
    serves the page again, a ranking is posted, and the run finishes."""
    import signal

    import yaml

    (tmp_path / "seeds.py").write_text(SEEDS)
    raw = tiny_task_dict(
        name="pole",
        env_id="InvertedPendulum-v5",
        description="balance the pole",
        seed_rewards=["seeds:upright", "seeds:centred"],
    )
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(raw))
    runs = tmp_path / "runs"
    common = ["--video-steps", "20", "--video-size", "64x64"]
    proc = _cli(
        "run",
        str(tmp_path / "task.yaml"),
        "--llm",
        "offline",
        "--feedback",
        "human",
        "--iterations",
        "1",
        "--samples",
        "2",
        "--final-seeds",
        "1",
        "--runs-dir",
        str(runs),
        *common,
        cwd=tmp_path,
    )
    _wait_for_url(proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = runs.iterdir()
    assert RunStore.open(run_dir).rankings() == []

    again = _cli("rank", str(run_dir), cwd=tmp_path)
    url = _wait_for_url(again)
    base, token = url.split("/?token=")
    ids = ["iter_00/cand_00", "iter_00/cand_01"]
    status, _ = _post(base + "/rank", {"order": [[ids[1]], [ids[0]]]}, token, origin=base)
    assert status == 200
    seen: list[str] = []
    base, token = _wait_for_url(again, seen).split("/?token=")  # the final verdict
    assert any(
        "ranking for iteration 0 received: best iter_00/cand_01, worst iter_00/cand_00" in line
        for line in seen
    )
    assert "Final verdict: which of these two policies better does the task?" in seen[-2]
    tie = {"order": [["A", "B"]]}
    status, why = _post(base + "/rank", tie, token, origin=base)
    assert status == 400 and b"cant_tell" in why  # a tie must be said as such
    assert _post(base + "/rank", {"cant_tell": True}, token, origin=base)[0] == 200
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    assert "final verdict received: can't tell them apart" in output
    store = RunStore.open(run_dir)
    ranking, _ = store.rankings()
    assert ranking.order == [[ids[1]], [ids[0]]]
    assert store.iteration(0).best == ids[1]
    assert store.summary() is not None and store.summary().verdict == "can't tell"


# --------------------------------------------------------------------------- strict requests
# Every field of a request is parsed strictly; a bad one gets a 4xx and a short message, and
# nothing is read past the limit nor waited for past the socket's timeout.
def _raw(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send ``request`` as it is; the status and body of the answer (0: none in time or the
    connection dropped without one)."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    if not data.startswith(b"HTTP/"):
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _post_raw(server, headers: dict[str, str] | list[tuple[str, str]], body: bytes = b""):
    """A POST of ``body`` to /rank with the token, the page's origin and ``headers``."""
    base = f"http://127.0.0.1:{server.port}"
    pairs = [("Host", f"127.0.0.1:{server.port}"), ("Origin", base), ("X-Token", server.token)]
    pairs += list(headers.items()) if isinstance(headers, dict) else headers
    head = "".join(f"{k}: {v}\r\n" for k, v in pairs)
    return _raw(server.port, f"POST /rank HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body)


def _json(body) -> dict[str, str]:
    return {"Content-Type": "application/json", "Content-Length": str(len(body))}


JSON = ("Content-Type", "application/json")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param([("Content-Length", "-1"), JSON], 400, id="negative"),
        pytest.param([("Content-Length", "+12"), JSON], 400, id="signed"),
        pytest.param([("Content-Length", "0x10"), JSON], 400, id="hex"),
        pytest.param([("Content-Length", "\u00b2"), JSON], 400, id="superscript-two"),
        pytest.param([("Content-Length", "9" * 40), JSON], 413, id="huge"),
        pytest.param([("Content-Length", str(ranking.MAX_BODY + 1)), JSON], 413, id="over"),
        pytest.param(
            [("Content-Length", "2"), ("Content-Length", "999"), JSON], 400, id="duplicated"
        ),
        pytest.param([JSON], 411, id="no-length"),
        pytest.param([("Transfer-Encoding", "chunked"), JSON], 400, id="chunked"),
        pytest.param([("Content-Length", "2"), ("Content-Type", "text/plain")], 415, id="text"),
        pytest.param([("Content-Length", "2")], 415, id="no-type"),
    ],
)
def test_the_length_and_type_of_a_post_are_parsed_strictly(tmp_path, headers, status):
    """Answered at once from the headers: no body was sent, none is waited for."""
    store, request = _request(tmp_path)
    with RankingServer(request) as server:
        started = time.monotonic()
        assert _post_raw(server, headers)[0] == status
        assert time.monotonic() - started < 3
    assert store.rankings() == []


def test_a_body_shorter_than_its_length_does_not_hold_a_handler(tmp_path, monkeypatch):
    monkeypatch.setattr(ranking, "REQUEST_TIMEOUT", 1.0)
    store, request = _request(tmp_path)
    with RankingServer(request) as server:
        assert _post_raw(server, _json(b"x" * 100), b'{"order": ')[0] == 408
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n")  # the headers never end
            assert sock.recv(100) == b""  # the server hangs up after its timeout
    assert store.rankings() == []


@pytest.mark.parametrize(
    "posted",
    [
        pytest.param(b"[]", id="a-list"),
        pytest.param(b'{"order": %(order)s, "admin": true}', id="unknown-key"),
        pytest.param(b'{"order": %(order)s, "cant_tell": "yes"}', id="string-for-boolean"),
        pytest.param(
            b'{"order": %(order)s, "comments": {"iter_00/cand_00": ["x"]}}', id="list-comment"
        ),
        pytest.param(b'{"order": %(order)s, "overall": {"a": 1}}', id="object-overall"),
        pytest.param(
            b'{"order": [["iter_00/cand_00"], ["iter_00/cand_99"]]}', id="unknown-candidate"
        ),
        pytest.param(b'{"order": [["iter_00/cand_00"], []]}', id="empty-group"),
        pytest.param(
            b'{"order": %(order)s, "comments": {"iter_00/cand_99": "x"}}', id="unknown-comment"
        ),
        pytest.param(b'{"order": [["iter_00/cand_01"]], "order": %(order)s}', id="key-twice"),
        pytest.param(b'{"order": %(order)s, "overall": "\xff"}', id="not-utf8"),
        pytest.param(b"[" * 100_000, id="deep"),
    ],
)
def test_a_posted_ranking_must_have_the_exact_shape(tmp_path, posted):
    store, request = _request(tmp_path)
    body = posted.replace(b"%(order)s", json.dumps([[i] for i in request.ids]).encode())
    with RankingServer(request) as server:
        status, reason = _post_raw(server, _json(body), body)
        assert status == 400 and 0 < len(reason) <= 400, reason
    assert store.rankings() == []


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"/video/../../etc/passwd?token=T", 404),
        (b"/%2e%2e/%2e%2e/secret.txt?token=T", 404),
        (b"/video/%2e%2e%2fsecret.txt?token=T", 404),
        (b"/video/00?token=T", 404),
        (b"/video/\xb2?token=T", 404),  # "²".isdigit(), and int("²") raises
        (b"/secret.txt?token=T", 404),
        (b"/video/0?token=wrong&token=T", 400),  # which token counts?
        (b"/video/0?token=T&x=1", 400),
        (b"http://evil.example/video/0?token=T", 400),
    ],
)
def test_a_get_names_only_a_known_route(tmp_path, target, status):
    store, request = _request(tmp_path)
    with RankingServer(request) as server:
        target = target.replace(b"=T", b"=" + server.token.encode())
        answer = _raw(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer[0] == status and b"s3cret" not in answer[1]


@pytest.mark.parametrize("bad", ["link out", "not an mp4"])
def test_a_video_is_served_only_as_the_run_store_checked_it(tmp_path, bad):
    store, request = _request(tmp_path)
    video = store.root / "iter_00/cand_00/rollout.mp4"
    video.unlink()
    if bad == "link out":
        (tmp_path / "secret.txt").write_bytes(b"\x00\x00\x00\x18ftyp s3cret")
        video.symlink_to(tmp_path / "secret.txt")
    else:
        video.write_bytes(b"<script>s3cret</script>")
    with RankingServer(request) as server:
        status, body = _get(f"http://127.0.0.1:{server.port}/video/0?token={server.token}")
        assert status == 404 and b"s3cret" not in body
        assert _get(f"http://127.0.0.1:{server.port}/video/1?token={server.token}")[0] == 200


# --------------------------------------------------------------------------- racing answers
def _race(posts) -> list[tuple[int, bytes]]:
    """Run every ``post`` (a function) at the same moment; their answers, in order."""
    start = threading.Barrier(len(posts))
    answers: list = [None] * len(posts)

    def go(i):
        start.wait()
        answers[i] = posts[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


def _ranks(server, order):
    base = f"http://127.0.0.1:{server.port}"
    return lambda: _post(base + "/rank", {"order": order}, server.token, origin=base)


def test_posts_racing_for_one_iteration_record_one(tmp_path):
    store, request = _request(tmp_path, n=3)
    orders = [[[c] for c in order] for order in itertools.permutations(request.ids)]
    with RankingServer(request) as server:
        answers = _race([_ranks(server, order) for order in orders])
    assert sorted(status for status, _ in answers) == [200] + [409] * (len(orders) - 1)
    assert all(b"already ranked" in body for status, body in answers if status == 409)
    (recorded,) = store.rankings()
    assert recorded.order == orders[[status for status, _ in answers].index(200)]
    assert request.ranking == recorded


def test_the_page_of_a_run_and_of_rank_beside_it_record_one(tmp_path):
    """The run waiting for a ranking serves its page, and `eureka-lab rank RUN_DIR` another
    for the same iteration, each with a store of its own: one answer is kept, and both
    runs go on with it."""
    store, first = _request(tmp_path)
    beside = RankingRequest(RunStore.open(store.root), 0, _trained(), first.task)
    ids = first.ids
    with RankingServer(first) as one, RankingServer(beside) as other:
        answers = _race([_ranks(one, [[ids[0]], [ids[1]]]), _ranks(other, [[ids[1]], [ids[0]]])])
    assert sorted(status for status, _ in answers) == [200, 409]
    (recorded,) = store.rankings()
    assert first.done.is_set() and beside.done.is_set()
    assert first.ranking == beside.ranking == recorded
