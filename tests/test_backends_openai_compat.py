"""OpenAIBackend with the real openai client against a real HTTP server on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from eureka_lab.backends import BackendSettings, make_backend, pricing
from eureka_lab.backends.base import Message, Prompt
from eureka_lab.backends.openai_compat import OpenAIBackend
from eureka_lab.core.errors import BackendError, BudgetExceeded

from support.fake_openai import FakeOpenAI

KEY = "sk-test-DISTINCTIVE-1234"
PROMPT = Prompt((Message("system", "You write rewards."), Message("user", "Walk.")), key="k")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


def backend(server: FakeOpenAI, **overrides: object) -> OpenAIBackend:
    fields: dict[str, object] = {
        "model": "gpt-4o",
        "base_url": server.url,
        "api_key": KEY,
        "timeout": 5.0,
        "max_retries": 3,
    }
    fields.update(overrides)
    b = OpenAIBackend(BackendSettings(**fields))  # type: ignore[arg-type]
    b.backoff_base = 0.01
    return b


def test_n_is_sent_in_one_request(server: FakeOpenAI) -> None:
    server.push("a", "b", "c")
    out = backend(server, temperature=0.7, max_tokens=300).complete(PROMPT, 3)
    assert [c.text for c in out] == ["a", "b", "c"]
    assert all(c.ok and c.model == "gpt-4o" for c in out)
    (req,) = server.chat_requests
    body = req["body"]
    assert body["n"] == 3 and body["temperature"] == 0.7 and body["max_tokens"] == 300
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [m.to_dict() for m in PROMPT.messages]
    assert req["headers"]["authorization"] == f"Bearer {KEY}"


def test_server_ignoring_n_gets_parallel_single_requests(server: FakeOpenAI) -> None:
    server.ignore_n = True
    out = backend(server, concurrency=2).complete(PROMPT, 4)
    assert len(out) == 4 and all(c.ok for c in out)
    assert len({c.text for c in out}) == 4
    bodies = [r["body"] for r in server.chat_requests]
    assert bodies[0]["n"] == 4
    assert len(bodies) == 4 and all("n" not in b for b in bodies[1:])


def test_429_retry_after_is_honoured(server: FakeOpenAI) -> None:
    server.retry_after = 1
    server.fail("429")
    start = time.monotonic()
    out = backend(server).complete(PROMPT, 2)
    assert time.monotonic() - start >= 1.0
    assert all(c.ok for c in out)
    first, second = server.chat_requests
    assert second["time"] - first["time"] >= 1.0


def test_500_then_success(server: FakeOpenAI) -> None:
    server.fail("500", "500")
    out = backend(server).complete(PROMPT, 2)
    assert all(c.ok for c in out)
    assert out[0].meta["attempts"] == 3
    assert len(server.chat_requests) == 3


@pytest.mark.parametrize("fault", ["drop", "bad_json", "no_choices"])
def test_transient_faults_are_retried(server: FakeOpenAI, fault: str) -> None:
    server.fail(fault)
    out = backend(server).complete(PROMPT, 2)
    assert all(c.ok for c in out)
    assert len(server.chat_requests) == 2


def test_hanging_request_times_out_and_is_retried(server: FakeOpenAI) -> None:
    server.hang_s = 2.5
    server.fail("hang")
    start = time.monotonic()
    out = backend(server, timeout=1.0).complete(PROMPT, 1)
    elapsed = time.monotonic() - start
    assert out[0].ok
    assert 1.0 <= elapsed < 2.5
    assert len(server.chat_requests) == 2


@pytest.mark.parametrize("fault", ["bad_json", "no_choices", "500"])
def test_persistent_fault_gives_failed_samples_not_a_crash(server: FakeOpenAI, fault: str) -> None:
    server.always = fault
    out = backend(server, max_retries=2).complete(PROMPT, 3)
    assert len(out) == 3
    assert all(not c.ok and c.error and "3 attempts" in c.error for c in out)
    assert len(server.chat_requests) == 3


def test_retry_budget_exhausted_gives_partial_results(server: FakeOpenAI) -> None:
    server.ignore_n = True
    # First request answers one choice; of the two make-up requests, one keeps failing.
    server.fail("ok", "500", "500")
    out = backend(server, max_retries=1, concurrency=1).complete(PROMPT, 3)
    assert len(out) == 3
    assert sum(c.ok for c in out) == 2
    (bad,) = [c for c in out if not c.ok]
    assert "HTTP 500" in (bad.error or "") and "2 attempts" in (bad.error or "")


def test_401_names_the_key_setting_and_hides_the_key(server: FakeOpenAI) -> None:
    server.fail("401")
    with pytest.raises(BackendError, match="set OPENAI_API_KEY") as info:
        backend(server).complete(PROMPT, 2)
    assert KEY not in str(info.value)
    assert len(server.chat_requests) == 1  # not retried


def test_404_names_the_model(server: FakeOpenAI) -> None:
    server.fail("404")
    with pytest.raises(BackendError, match="gpt-4o-typo") as info:
        backend(server, model="gpt-4o-typo").complete(PROMPT, 1)
    assert "--model" in str(info.value)
    assert len(server.chat_requests) == 1


@pytest.mark.parametrize("url", ["localhost:8000/v1", "http://", "ftp://example.com/v1", "nope"])
def test_bad_base_url_names_the_flag(url: str) -> None:
    with pytest.raises(BackendError, match="--base-url"):
        OpenAIBackend(BackendSettings(model="m", base_url=url, api_key=KEY))


def test_bad_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "127.0.0.1:8000")
    with pytest.raises(BackendError, match="OPENAI_BASE_URL"):
        OpenAIBackend(BackendSettings(model="m"))


def test_missing_model_and_missing_key() -> None:
    with pytest.raises(BackendError, match="--model"):
        OpenAIBackend(BackendSettings(api_key=KEY))
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        OpenAIBackend(BackendSettings(model="gpt-4o"))


def test_local_server_needs_no_key(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    b = make_backend("openai", BackendSettings(model="llama3"))
    assert b.complete(PROMPT, 1)[0].ok
    assert server.chat_requests[0]["headers"]["authorization"] == "Bearer not-needed"


def test_usage_and_cost_exact_for_a_priced_model(server: FakeOpenAI) -> None:
    server.model = "gpt-4o-mini-2024-07-18"  # a dated snapshot
    server.usage = (1001, 302)
    b = backend(server, model="gpt-4o-mini", spent_usd=0.5)
    out = b.complete(PROMPT, 3)
    assert [c.usage.prompt_tokens for c in out] == [335, 333, 333]
    assert [c.usage.completion_tokens for c in out] == [102, 100, 100]
    assert out[0].usage.cost_usd == pytest.approx((335 * 0.15 + 102 * 0.60) / 1e6)
    total = sum(c.usage.cost_usd for c in out)
    assert total == pytest.approx((1001 * 0.15 + 302 * 0.60) / 1e6)
    assert b.spent_usd == pytest.approx(0.5 + total)
    assert all(c.model == "gpt-4o-mini-2024-07-18" for c in out)


def test_price_overrides_and_unknown_models() -> None:
    assert pricing.price_for("gpt-4o-2024-08-06") == pricing.PRICES["gpt-4o"]
    assert pricing.price_for("gpt-4.1-nano-2025-04-14") == pricing.PRICES["gpt-4.1-nano"]
    assert pricing.price_for("openai/gpt-4o-mini") == pricing.PRICES["gpt-4o-mini"]
    assert pricing.price_for("llama3:8b") is None
    assert pricing.cost(10**6, 10**6, "qwen2.5-coder") == 0.0
    assert pricing.cost(10**6, 0, "gpt-4o", {"gpt-4o": (1.0, 2.0)}) == 1.0
    assert pricing.cost(0, 10**6, "my-model-v2", {"my-model": (1.0, 2.0)}) == 2.0


def test_max_cost_raises_before_sending(server: FakeOpenAI) -> None:
    b = backend(server, max_cost=1.00, spent_usd=0.99, max_tokens=1000)
    with pytest.raises(BudgetExceeded, match=r"--max-cost \$1.00 \(spent \$0.99"):
        b.complete(PROMPT, 4)
    assert server.requests == []


def test_max_cost_counts_what_this_backend_spent(server: FakeOpenAI) -> None:
    server.usage = (0, 100_000)  # $1.00 of gpt-4o completion tokens per request
    b = backend(server, max_cost=1.5, max_tokens=100)
    assert b.complete(PROMPT, 1)[0].ok
    assert b.spent_usd == pytest.approx(1.0)
    b.complete(PROMPT, 1)  # 1.0 + a tiny estimate still fits
    with pytest.raises(BudgetExceeded):
        b.complete(PROMPT, 1)
    assert len(server.chat_requests) == 2


def test_unpriced_model_is_never_over_budget(server: FakeOpenAI) -> None:
    b = backend(server, model="llama3", max_cost=0.0)
    assert b.complete(PROMPT, 2)[0].ok


def test_key_never_leaks(
    server: FakeOpenAI, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    b = backend(server, max_retries=1)
    seen: list[str] = [repr(b), repr(b.settings)]
    server.fail("429", "500", "500", "drop", "drop", "bad_json", "bad_json")
    server.retry_after = 0
    for _ in range(4):
        for c in b.complete(PROMPT, 1):
            seen += [repr(c), str(c.error), str(c.meta)]
    server.fail("401")
    with pytest.raises(BackendError) as info:
        b.complete(PROMPT, 1)
    seen += [str(info.value), repr(info.value)]
    assert "Incorrect API key" in str(info.value)  # the server's message is kept, scrubbed
    out, err = capsys.readouterr()
    seen += [out, err, caplog.text]
    seen += [r.getMessage() for r in caplog.records]
    assert all(KEY not in s for s in seen)
    assert "DISTINCTIVE" not in "".join(seen)
