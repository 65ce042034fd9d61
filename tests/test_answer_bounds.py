"""Answers shaped to stall the orchestrator (issue 18): what it does with one answer (parse,
de-duplication digest, policy check) costs bounded time whatever the answer's shape, and an
answer over MAX_ANSWER_CHARS is refused unread, with a reason that names the limit, and
kept cut wherever the run stores or resends it.

Times are the CPU time of this process, so that other work on a loaded machine does not
make them flaky; the quadratic scans these tests guard against cost CPU time too (tens of
seconds per answer at the limit). benchmarks/parsing.py measures the times themselves.
"""

from __future__ import annotations

import json
import time

import pytest

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.core.errors import RunError
from eureka_lab.loop.loop import Loop
from eureka_lab.reward.answer import cut_answer
from eureka_lab.reward.check import check_code
from eureka_lab.reward.parsing import MAX_ANSWER_CHARS, ParseResult, code_digest, parse_response
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore

from support.hostile_answers import SHAPES

SECONDS_TO_READ = 2.0
"""CPU seconds an answer at the limit may cost when it holds no program; the slowest shape
takes about 0.2 s on a loaded 2-core machine, the quadratic scans took 7-23 s."""
SECONDS_TO_READ_A_PROGRAM = 8.0
"""And when it holds a program (of up to the limit) that is parsed, digested and checked,
walking its tree a dozen times: the slowest takes about 3 s (many helpers took minutes)."""
SECONDS_TO_REFUSE = 0.5
A_FEW_MB = 4_000_000


def handle(text: str) -> ParseResult:
    """What the loop does with an answer before anything runs (``Loop._candidate``)."""
    result = parse_response(text)
    if result.code is not None:
        code_digest(result.code)
        check_code(result.code)
    return result


def cpu_seconds(text: str) -> tuple[float, ParseResult]:
    started = time.process_time()
    result = handle(text)
    return time.process_time() - started, result


@pytest.mark.parametrize("shape", SHAPES)
def test_an_answer_at_the_limit_costs_bounded_time(shape: str) -> None:
    text = SHAPES[shape](MAX_ANSWER_CHARS)
    assert MAX_ANSWER_CHARS * 0.6 < len(text) <= MAX_ANSWER_CHARS
    seconds, result = cpu_seconds(text)
    assert "limit" not in result.reason, "read, not refused"
    bound = SECONDS_TO_READ if result.code is None else SECONDS_TO_READ_A_PROGRAM
    assert seconds < bound, f"{shape}: {seconds:.1f} s"


@pytest.mark.parametrize("shape", SHAPES)
def test_an_answer_over_the_limit_is_refused_unread(shape: str) -> None:
    text = SHAPES[shape](A_FEW_MB)
    assert len(text) > 0.9 * A_FEW_MB
    seconds, result = cpu_seconds(text)
    assert result.code is None
    assert result.reason == (
        f"no code: the answer is longer than the limit of {MAX_ANSWER_CHARS:,} characters "
        "(MAX_ANSWER_CHARS) and was not read; answer with the reward code and a short "
        "explanation"
    )
    assert seconds < SECONDS_TO_REFUSE, f"{shape}: {seconds:.1f} s"


def test_a_cut_answer_is_refused_and_cutting_it_again_changes_nothing() -> None:
    short = "```python\ndef compute_reward(obs, action, next_obs, info):\n    return 0, {}\n```"
    assert cut_answer(short) == short
    assert cut_answer("x" * MAX_ANSWER_CHARS) == "x" * MAX_ANSWER_CHARS
    cut = cut_answer(short + "x" * A_FEW_MB)
    assert cut.startswith(short) and len(cut) < MAX_ANSWER_CHARS + 100
    assert f"at most {MAX_ANSWER_CHARS:,} characters" in cut.splitlines()[-1]
    assert cut_answer(cut) == cut
    assert parse_response(cut).code is None


def test_the_run_keeps_and_resends_a_huge_answer_cut(tmp_path, tiny_task) -> None:
    """A 4 MB answer fails at parsing with the limit as its reason; its record, its
    response.md and the repair prompt that carries it back hold at most the limit."""
    huge = "<think>" * (A_FEW_MB // 7)
    backend = ScriptedBackend(responses=[huge, huge])
    store = RunStore.create(tmp_path, "t", {"task": tiny_task.model_dump(mode="json")})
    config = LoopConfig(iterations=1, samples=1, workers=1, repair_rounds=1)
    with pytest.raises(RunError, match="No candidate trained"):
        Loop(store, tiny_task, config, backend).run()

    for cand in store.candidates():
        assert cand.stage == "parse"
        assert f"longer than the limit of {MAX_ANSWER_CHARS:,} characters" in cand.reason
        assert len(store.response(cand.id)) < MAX_ANSWER_CHARS + 100
    repair = backend.prompts[-1]
    assert repair.purpose == "repair"
    assert all(len(m.content) < MAX_ANSWER_CHARS + 100 for m in repair.messages)
    for path in (store.root / "llm").glob("*.json"):
        record = json.loads(path.read_text())
        assert all(len(c["text"]) < MAX_ANSWER_CHARS + 100 for c in record["completions"])
