"""A backend for any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, llama.cpp,
LM Studio.

One ``complete(prompt, n)`` sends one chat-completions request with ``n=n``; a server
that returns fewer choices (Ollama ignores ``n``) gets parallel single requests for the
rest. Transient failures (429, 5xx, timeouts, dropped connections, unreadable answers)
are retried here with exponential backoff that honours ``Retry-After``; a request that
still fails becomes failed samples, so the call always returns ``n`` items. A bad key, an
unknown model or a malformed URL raise :class:`~eureka_lab.core.errors.BackendError` at once.

The API key never leaves this module: it is scrubbed from every message kept or raised.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import openai
from openai.types.chat import ChatCompletionMessageParam

from eureka_lab.backends import BackendSettings, pricing
from eureka_lab.backends.base import Completion, Message, Prompt, Usage
from eureka_lab.core.errors import BackendError, BudgetExceeded

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"
"""Sent to a local server (``--base-url``) when no key is set; such servers ignore it."""
WORST_CASE_COMPLETION_TOKENS = 2000
"""Completion tokens a sample is assumed to take for the budget when --max-tokens is unset."""


@dataclass
class _Answer:
    """What one HTTP request produced: choices, or the reason it failed."""

    texts: list[str | None] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    attempts: int = 0
    error: str | None = None


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Permanent(Exception):
    """A failure that retrying will not fix, but that concerns this request only."""


def validate_base_url(url: str) -> str:
    """Return ``url`` without a trailing slash, or raise BackendError naming the flag."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise BackendError(
            f"The base URL {url!r} is not an http(s) URL with a host. Pass e.g. "
            "--base-url http://localhost:8000/v1 (or set OPENAI_BASE_URL)."
        )
    try:
        parsed.port  # noqa: B018  (raises on a bad port number)
    except ValueError:
        raise BackendError(
            f"The base URL {url!r} has an invalid port. Fix --base-url (or OPENAI_BASE_URL)."
        ) from None
    return url.strip().rstrip("/")


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible endpoint, via the official client."""

    name = "openai"
    backoff_base: float = 0.5
    """Seconds before the first retry (doubled each attempt, with jitter)."""
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    """Longest Retry-After honoured, in seconds."""

    def __init__(self, settings: BackendSettings, model: str | None = None) -> None:
        self.settings = settings
        model = model or settings.model
        if not model:
            raise BackendError(
                "The openai backend needs a model name: pass --model (e.g. --model gpt-4o-mini,"
                " or the name your local server serves)."
            )
        self.model: str = model
        env_url = os.environ.get("OPENAI_BASE_URL")
        self.base_url = validate_base_url(settings.base_url or env_url or DEFAULT_BASE_URL)
        key = settings.api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if not (settings.base_url or env_url):
                raise BackendError(
                    "No API key for the OpenAI API: set OPENAI_API_KEY (keys are read from the "
                    "environment only, never from flags or files), or point --base-url at a "
                    "local OpenAI-compatible server."
                )
            key = PLACEHOLDER_KEY
        self._api_key = key
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=key, timeout=settings.timeout, max_retries=0
        )
        self.spent_usd = float(settings.spent_usd)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------------ public
    def complete(self, prompt: Prompt, n: int) -> list[Completion]:
        if n <= 0:
            return []
        self._check_budget(prompt, n)
        messages = [_message_param(m) for m in prompt.messages]
        first = self._request(messages, n)
        out = self._completions(first)
        missing = n - len(out)
        if missing > 0 and first.error is None:
            # The server returned fewer choices than asked (Ollama ignores n).
            log.info(
                "%s returned %d of %d samples; asking for the rest", self.base_url, len(out), n
            )
            workers = max(1, min(self.settings.concurrency, missing))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                answers = list(pool.map(lambda _: self._request(messages, 1), range(missing)))
            for answer in answers:
                out.extend(self._completions(answer)[:1] or self._failed(answer, 1))
        elif first.error is not None:
            out = self._failed(first, n)
        return out[:n] + self._failed(_Answer(error="no answer for this sample"), n - len(out))

    # ------------------------------------------------------------------ budget
    def _check_budget(self, prompt: Prompt, n: int) -> None:
        limit = self.settings.max_cost
        if limit is None:
            return
        chars = sum(len(m.content) for m in prompt.messages)
        prompt_tokens = (chars // 4 + 1) * n
        per_sample = self.settings.max_tokens or WORST_CASE_COMPLETION_TOKENS
        completion_tokens = per_sample * n
        estimate = pricing.cost(prompt_tokens, completion_tokens, self.model, self.settings.prices)
        with self._lock:
            spent = self.spent_usd
        if spent + estimate > limit:
            raise BudgetExceeded(
                f"The next request ({n} samples of {self.model}, up to ~{prompt_tokens} prompt"
                f" + {completion_tokens} completion tokens) could cost ${estimate:.4f}, which "
                f"would exceed --max-cost {_usd(limit)} (spent ${spent:.4f} so far). Raise "
                "--max-cost, or lower the samples per iteration or --max-tokens."
            )

    # ------------------------------------------------------------------ requests
    def _scrub(self, text: str) -> str:
        key = self._api_key
        if key and key != PLACEHOLDER_KEY and len(key) >= 4:
            text = text.replace(key, "***")
        return text

    def _request(self, messages: list[ChatCompletionMessageParam], n: int) -> _Answer:
        """One logical request, retried on transient failures; raises only BackendError."""
        attempts = self.settings.max_retries + 1
        last = ""
        for attempt in range(attempts):
            try:
                answer = self._send(messages, n)
                answer.attempts = attempt + 1
                return answer
            except _Permanent as e:
                return _Answer(error=self._scrub(str(e)), attempts=attempt + 1)
            except _Transient as e:
                last = self._scrub(str(e))
                if attempt + 1 >= attempts:
                    break
                delay = self._delay(attempt, e.retry_after)
                log.warning(
                    "%s (attempt %d of %d); retrying in %.1f s", last, attempt + 1, attempts, delay
                )
                time.sleep(delay)
        return _Answer(error=f"{last} (gave up after {attempts} attempts)", attempts=attempts)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap) + random.uniform(0, 0.1)
        ceiling = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    def _send(self, messages: list[ChatCompletionMessageParam], n: int) -> _Answer:
        """One HTTP request. Raises _Transient, _Permanent or BackendError."""
        kwargs: dict[str, Any] = {"temperature": self.settings.temperature}
        if n != 1:
            kwargs["n"] = n
        if self.settings.max_tokens is not None:
            kwargs["max_tokens"] = self.settings.max_tokens
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                **kwargs,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            raise BackendError(
                f"The endpoint {self.base_url} rejected the API key (HTTP {e.status_code}: "
                f"{self._scrub(_server_message(e))}): set OPENAI_API_KEY to a "
                "valid key."
            ) from None
        except openai.APIStatusError as e:
            self._raise_for_status(e)
            raise AssertionError("unreachable") from None
        except openai.APITimeoutError:
            raise _Transient(f"request timed out after {self.settings.timeout:g} s") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise _Transient(f"connection to {self.base_url} failed: {cause}") from None
        except Exception as e:  # an unreadable body: not JSON, or not a chat completion
            raise _Transient(f"unreadable response ({type(e).__name__}: {e})") from None
        return self._parse(response)

    def _raise_for_status(self, e: openai.APIStatusError) -> None:
        status = e.status_code
        message = self._scrub(_server_message(e))
        code = getattr(e, "code", None)
        if status == 404 or code == "model_not_found":
            raise BackendError(
                f"The endpoint {self.base_url} does not know the model {self.model!r} "
                f"(HTTP {status}: {message}). Pass a model it serves with --model, and check "
                "that --base-url is the API root (usually ending in /v1)."
            )
        if status == 429 and code == "insufficient_quota":
            raise BackendError(
                f"The account behind the API key has no quota left ({message}). Add credit "
                "or use another key (OPENAI_API_KEY)."
            )
        if status in (408, 409, 429) or status >= 500:
            raise _Transient(
                f"HTTP {status} from {self.base_url}: {message}", _retry_after(e.response)
            )
        raise _Permanent(f"HTTP {status} from {self.base_url}: {message}")

    def _parse(self, response: Any) -> _Answer:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            raise _Transient(
                f"unreadable response (not a chat completion): {str(response)[:200]!r}"
            )
        if not choices:
            raise _Transient("the response had no choices")
        answer = _Answer(model=getattr(response, "model", None) or self.model)
        for choice in sorted(choices, key=lambda c: getattr(c, "index", 0) or 0):
            message = getattr(choice, "message", None)
            content = getattr(message, "content", None)
            answer.texts.append(content if isinstance(content, str) else None)
            answer.finish_reasons.append(getattr(choice, "finish_reason", None))
        usage = getattr(response, "usage", None)
        answer.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        answer.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return answer

    # ------------------------------------------------------------------ results
    def _completions(self, answer: _Answer) -> list[Completion]:
        """One Completion per choice; the request's usage split evenly across them."""
        k = len(answer.texts)
        if answer.error is not None or k == 0:
            return []
        p_each, p_rest = divmod(answer.prompt_tokens, k)
        c_each, c_rest = divmod(answer.completion_tokens, k)
        out = []
        total_cost = 0.0
        for i, (text, finish) in enumerate(zip(answer.texts, answer.finish_reasons, strict=True)):
            p = p_each + (p_rest if i == 0 else 0)
            c = c_each + (c_rest if i == 0 else 0)
            usd = pricing.cost(p, c, answer.model, self.settings.prices)
            if usd == 0.0 and answer.model != self.model:
                usd = pricing.cost(p, c, self.model, self.settings.prices)
            total_cost += usd
            usage = Usage(p, c, usd)
            meta = {"finish_reason": finish, "attempts": answer.attempts}
            if text is None:
                error = f"the model returned no text (finish_reason={finish})"
                out.append(Completion(None, usage, error, answer.model, meta))
            else:
                out.append(Completion(text, usage, None, answer.model, meta))
        with self._lock:
            self.spent_usd += total_cost
        return out

    def _failed(self, answer: _Answer, count: int) -> list[Completion]:
        error = answer.error or "the request failed"
        meta = {"attempts": answer.attempts}
        return [
            Completion(None, error=error, model=self.model, meta=dict(meta))
            for _ in range(max(0, count))
        ]


def _message_param(message: Message) -> ChatCompletionMessageParam:
    """A message as the client sends it: ``{"role": ..., "content": ...}``."""
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "user":
        return {"role": "user", "content": message.content}
    return {"role": "assistant", "content": message.content}


def _usd(x: float) -> str:
    """Dollars with cents, or with the digits that matter for a budget below a cent."""
    return f"${x:.2f}" if x >= 0.01 or x == 0 else f"${x:.2g}"


def _server_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
        if isinstance(inner, str):
            return inner[:500]
    return str(e.message)[:500]


def _retry_after(response: Any) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header, if it holds a number."""
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if headers.get("retry-after"):
            return max(0.0, float(headers["retry-after"]))
    except (TypeError, ValueError):
        return None
    return None
