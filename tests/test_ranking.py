"""Ranking by a person on the local page: its security (token, traversal, cross-site POST,
escaping), and a real browser that loads every video, ranks by keyboard and submits while
a real run waits, then goes on with the person's ranking."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import pytest

pytest.importorskip("imageio_ffmpeg")

from eureka_lab.backends.scripted import ScriptedBackend  # noqa: E402
from eureka_lab.loop.loop import Loop  # noqa: E402
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import Candidate, TrainingResult  # noqa: E402
from eureka_lab.runs.scores import Trained  # noqa: E402
from eureka_lab.runs.store import RunStore  # noqa: E402
from eureka_lab.selectors.human import RankingRequest, RankingServer  # noqa: E402
from eureka_lab.task.load import task_from_dict  # noqa: E402

from conftest import tiny_task_dict  # noqa: E402

pytestmark = pytest.mark.slow
HOSTILE = '<img src=x onerror="window.pwned=1">'
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _request(tmp_path, n=2):
    store = RunStore.create(tmp_path, "rank", {})
    trained = []
    for i in range(n):
        cid = f"iter_00/cand_{i:02d}"
        store.save_video(cid, b"\x00\x00\x00\x18ftypmp42 video %d" % i)
        cand = Candidate(id=cid, iteration=0, index=i, components=[HOSTILE] if i else ["run"])
        trained.append(Trained(cand, TrainingResult(status="trained", fitness=0.0)))
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


BALANCE = """```python
import numpy as np


def compute_reward(obs, action, next_obs, info):
    upright = {scale} * (1.0 - np.abs(next_obs[:, 1]))
    return upright, {{"upright": upright}}
```"""


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_a_person_ranks_by_keyboard_in_a_real_browser_and_the_run_goes_on(tmp_path):
    from playwright.sync_api import sync_playwright

    task = task_from_dict(
        tiny_task_dict(name="pole", env_id="InvertedPendulum-v5", description="balance the pole")
    )
    urls: list[str] = []
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
    loop = Loop(
        store,
        task,
        config,
        backend,
        reporter=lambda e: urls.append(e["url"]) if e["event"] == "ranking_url" else None,
    )
    done: list = []
    thread = threading.Thread(target=lambda: done.append(loop.run()), daemon=True)
    thread.start()
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page()
        for _ in range(600):
            if urls:
                break
            thread.join(0.2)
        assert urls, "the run never asked for a ranking"
        page.goto(urls[0])
        page.wait_for_function(
            "Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1)",
            timeout=30_000,
        )
        durations = page.evaluate(
            "Array.from(document.querySelectorAll('video')).map(v => v.duration)"
        )
        assert len(durations) == 2 and all(d > 0 for d in durations)
        page.keyboard.press("2")
        page.keyboard.press("b")  # candidate 2 is the best
        page.keyboard.press("1")
        page.keyboard.press("w")  # candidate 1 the worst
        page.keyboard.press("Enter")
        page.wait_for_selector("body[data-submitted='yes']", timeout=10_000)
        status = page.inner_text("#status")
        page.screenshot(path=str(tmp_path / "rank.png"))
        browser.close()
    _answer_final_verdict(urls, thread)
    thread.join(300)
    assert "saved" in status
    assert done, "the run did not go on after the ranking"
    ranking, verdict = store.rankings()
    assert ranking.annotator == "person"
    assert ranking.order == [["iter_00/cand_01"], ["iter_00/cand_00"]]
    assert store.iteration(0).best == "iter_00/cand_01"
    assert done[0].preference_queries == 2 and done[0].verdict == "human"


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


def _answer_final_verdict(urls: list[str], thread: threading.Thread) -> None:
    """The run's last question: the final best against the human reward (human wins)."""
    for _ in range(1500):
        if len(urls) >= 2:
            break
        thread.join(0.2)
    assert len(urls) >= 2, "the run never asked for the final verdict"
    base, token = urls[-1].split("/?token=")
    order = [["final/human/seed_1000"], ["final/best/seed_1000"]]
    assert _post(base + "/rank", {"order": order}, token, origin=base)[0] == 200


def _wait_for_url(proc) -> str:
    for line in proc.stdout:
        if "rank the candidates in your browser: " in line:
            return line.split("browser: ", 1)[1].strip()
    raise AssertionError("no ranking URL was printed")


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
    base, token = _wait_for_url(again).split("/?token=")  # the final verdict: a tie
    order = [["final/best/seed_1000", "final/human/seed_1000"]]
    assert _post(base + "/rank", {"order": order}, token, origin=base)[0] == 200
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    store = RunStore.open(run_dir)
    ranking, _ = store.rankings()
    assert ranking.order == [[ids[1]], [ids[0]]]
    assert store.iteration(0).best == ids[1]
    assert store.summary() is not None and store.summary().verdict == "can't tell"
