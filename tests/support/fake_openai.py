"""A real HTTP server on loopback that speaks enough of the OpenAI chat API for tests.

    with FakeOpenAI(texts=["a", "b"]) as server:
        server.fail("429", "500")          # the next two requests fail, in order
        backend = OpenAIBackend(BackendSettings(model="gpt-4o", base_url=server.url, ...))

Faults (one per request, consumed in order; ``always`` applies to every request):
``"429"`` (with ``Retry-After: retry_after``), ``"500"``, ``"hang"`` (sleeps ``hang_s``
before answering), ``"drop"`` (closes the connection without answering), ``"bad_json"``,
``"no_choices"``, ``"401"`` (echoes the key it got, as some servers do), ``"404"``
(model_not_found); ``"ok"`` (or anything else) answers normally. ``ignore_n=True`` makes it answer one choice whatever ``n`` is.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TextSource = Callable[[dict[str, Any], int], str]


class FakeOpenAI:
    def __init__(
        self,
        texts: Iterable[str] | TextSource = (),
        *,
        model: str | None = None,
        usage: tuple[int, int] | None = None,
        ignore_n: bool = False,
        retry_after: float = 1,
        hang_s: float = 3.0,
    ) -> None:
        self._texts: deque[str] | None = None if callable(texts) else deque(texts)
        self._text_fn: TextSource | None = texts if callable(texts) else None
        self.model = model
        self.usage = usage
        self.ignore_n = ignore_n
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.faults: deque[str] = deque()
        self.always: str | None = None
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting
    def fail(self, *faults: str) -> None:
        """Queue faults for the next requests, one each."""
        self.faults.extend(faults)

    def push(self, *texts: str) -> None:
        assert self._texts is not None
        self._texts.extend(texts)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    # ------------------------------------------------------------------ internals
    def _next_fault(self) -> str | None:
        with self._lock:
            return self.faults.popleft() if self.faults else self.always

    def _next_text(self, body: dict[str, Any]) -> str:
        with self._lock:
            self._counter += 1
            i = self._counter
            if self._text_fn is not None:
                return self._text_fn(body, i)
            if self._texts:
                return self._texts.popleft()
        return f"completion {i}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hung up on a hanging request: expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(obj).encode(), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self) -> None:
        fake = self.server.fake
        fake.requests.append(
            {
                "method": "GET",
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": None,
                "time": time.monotonic(),
            }
        )
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": fake.model or "fake-model", "object": "model", "owned_by": "fake"}
                    ],
                },
            )
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_raw": raw.decode(errors="replace")}
        with fake._lock:
            fake.requests.append(
                {
                    "method": "POST",
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "time": time.monotonic(),
                }
            )
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        fault = fake._next_fault()
        model = body.get("model", "")
        if fault == "429":
            self._send_json(
                429,
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                {"Retry-After": f"{fake.retry_after:g}"},
            )
            return
        if fault == "500":
            self._send_json(
                500, {"error": {"message": "The server had an error", "type": "server_error"}}
            )
            return
        if fault == "401":
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            self._send_json(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {key}.",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        if fault == "404":
            self._send_json(
                404,
                {
                    "error": {
                        "message": f"The model `{model}` does not exist or you do not have access to it.",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
            return
        if fault == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if fault == "hang":
            time.sleep(fake.hang_s)
        if fault == "bad_json":
            self._send_raw(200, b'{"id": "x", "choices": [ this is not json')
            return
        n = 1 if fake.ignore_n else int(body.get("n") or 1)
        texts = [] if fault == "no_choices" else [fake._next_text(body) for _ in range(n)]
        if fake.usage is not None:
            prompt_tokens, completion_tokens = fake.usage
        else:
            chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
            prompt_tokens, completion_tokens = chars // 4, sum(len(t) // 4 + 1 for t in texts)
        with contextlib.suppress(OSError):  # the client may have given up waiting
            self._send_json(
                200,
                {
                    "id": f"chatcmpl-{len(fake.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": fake.model or model,
                    "choices": [
                        {
                            "index": i,
                            "message": {"role": "assistant", "content": t},
                            "finish_reason": "stop",
                        }
                        for i, t in enumerate(texts)
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                },
            )


def _main() -> None:
    """Serve on a fixed port until Ctrl-C: ``python tests/support/fake_openai.py [--port 8765]
    [--answers DIR]``. With ``--answers`` it cycles through the ``*.md`` files of DIR."""
    import argparse
    import signal
    from pathlib import Path

    p = argparse.ArgumentParser(description="A fake OpenAI chat-completions server.")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--answers", type=Path, help="folder of .md answers served in turn")
    p.add_argument("--model", help="model name to report in answers")
    args = p.parse_args()
    texts: list[str] = []
    if args.answers:
        texts = [f.read_text() for f in sorted(args.answers.glob("*.md"))]
        if not texts:
            raise SystemExit(f"no .md files in {args.answers}")

    def answer(body: dict[str, Any], i: int) -> str:
        return texts[(i - 1) % len(texts)] if texts else f"completion {i}"

    fake = FakeOpenAI(answer, model=args.model)
    fake._httpd.server_close()
    fake._httpd = _Server(("127.0.0.1", args.port), _Handler)
    fake._httpd.fake = fake

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"serving on {fake.url} (Ctrl-C stops)", flush=True)
    try:
        fake._httpd.serve_forever(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        fake._httpd.server_close()
        print(f"served {len(fake.chat_requests)} chat requests", flush=True)


if __name__ == "__main__":
    _main()
