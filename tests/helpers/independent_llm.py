"""An OpenAI-compatible chat server for the tests, written apart from progenitor's own
(``progenitor.testing.llm_server``) and sharing no code with it: the standard library's
``http.server``, and what the README says a provider does.

It answers ``POST /v1/chat/completions`` from a script of steps per model (the name after
litellm's ``openai/``), optionally per request: a queue whose ``about`` text occurs in the
request's messages (``g1/c0``) is served before the model's general queue. A step is a reply
(with its ``finish_reason``), an HTTP error (with ``Retry-After``), a raw body, or a hang that
never answers. It counts every request, and bills like a provider:

- a completed reply at its usage: prompt tokens by OpenAI's documented rule for chat models
  (``cl100k_base`` tokens of each message's role and content, plus 3 per message, plus 3),
  completion tokens as the reply's ``cl100k_base`` tokens, at the model's price;
- a request it received and never answered because the client went away (a timeout, a killed
  process): at the most it could have cost, its prompt tokens plus its ``max_tokens``: the
  estimate the README says progenitor charges for such a request;
- an error status or a raw body: nothing.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

__all__ = ["IndependentLLM", "Step", "error", "hang", "raw", "reply"]


@dataclass
class Step:
    kind: str
    """reply, error, raw or hang."""
    content: str = ""
    finish: str = "stop"
    status: int = 200
    code: str = ""
    retry_after: Optional[float] = None
    body: str = ""
    delay: float = 0.0
    """Seconds to think before answering."""


def reply(content: str, finish: str = "stop", delay: float = 0.0) -> Step:
    return Step("reply", content=content, finish=finish, delay=delay)


def error(status: int, message: str, code: str = "", retry_after: Optional[float] = None) -> Step:
    return Step("error", content=message, status=status, code=code, retry_after=retry_after)


def raw(body: str, status: int = 200) -> Step:
    return Step("raw", body=body, status=status)


def hang() -> Step:
    """Never answer: wait until the client gives up (a timeout) or dies."""
    return Step("hang")


@dataclass
class Seen:
    """One request, as received, and what became of it."""

    model: str
    body: dict
    text: str
    at: float
    kind: str = ""
    billed: float = 0.0


@dataclass
class IndependentLLM:
    prices: dict[str, tuple[float, float]]
    """Dollars per million (prompt, completion) tokens, by model."""
    max_hang: float = 120.0
    seen: list[Seen] = field(default_factory=list)
    fallback: dict[str, Callable[[Seen], Step]] = field(default_factory=dict)
    _queues: dict = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self._enc = _cl100k()
        self._arrived = threading.Condition(self._lock)
        self._http: Optional[ThreadingHTTPServer] = None

    # -- scripting and reading ----------------------------------------------------------------
    def script(self, model: str, *steps: Step, about: str = "") -> None:
        with self._lock:
            self._queues[(model, about)].extend(steps)

    def otherwise(self, model: str, answer: Callable[[Seen], Step]) -> None:
        """How ``model`` answers once its queues are empty."""
        self.fallback[model] = answer

    def requests(self, model: Optional[str] = None, about: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if (model is None or s.model == model) and about in s.text]

    @property
    def billed(self) -> float:
        with self._lock:
            return sum(s.billed for s in self.seen)

    def wait_for(self, predicate: Callable[[list[Seen]], bool], timeout: float = 120) -> None:
        with self._arrived:
            if not self._arrived.wait_for(lambda: predicate(self.seen), timeout):
                raise TimeoutError("the scripted server did not see the requests it waited for")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    # -- billing -----------------------------------------------------------------------------------
    def prompt_tokens(self, messages: list[dict]) -> int:
        count = lambda text: len(self._enc.encode(text, disallowed_special=()))  # noqa: E731
        return sum(3 + count(str(m.get("role", ""))) + count(str(m.get("content") or "")) for m in messages) + 3

    def _bill(self, model: str, prompt: int, completion: int) -> float:
        inp, out = self.prices.get(model, (0.0, 0.0))
        return prompt * inp / 1e6 + completion * out / 1e6

    # -- serving -----------------------------------------------------------------------------------
    def _next(self, seen: Seen) -> Step:
        with self._lock:
            for (model, about), queue in self._queues.items():
                if model == seen.model and about and about in seen.text and queue:
                    return queue.popleft()
            queue = self._queues.get((seen.model, ""))
            if queue:
                return queue.popleft()
        answer = self.fallback.get(seen.model)
        return answer(seen) if answer else error(500, f"nothing scripted for {seen.model}")

    def __enter__(self) -> "IndependentLLM":
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()


def _cl100k():
    """OpenAI's cl100k_base encoding, offline: tiktoken reads it from a cache directory, and the
    one litellm's distribution carries (data, not code) is the copy on this machine."""
    import importlib.util
    import os
    from pathlib import Path

    import tiktoken

    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        spec = importlib.util.find_spec("litellm")
        if spec and spec.submodule_search_locations:
            bundled = Path(list(spec.submodule_search_locations)[0]) / "litellm_core_utils" / "tokenizers"
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    return tiktoken.get_encoding("cl100k_base")


def _client_gone(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0.05)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _handler(server: IndependentLLM) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            messages = body.get("messages", [])
            seen = Seen(model=str(body.get("model", "")), body=body, at=time.time(),
                        text="\n".join(str(m.get("content") or "") for m in messages))
            with server._arrived:
                server.seen.append(seen)
                server._arrived.notify_all()
            step = server._next(seen)
            seen.kind = step.kind
            prompt = server.prompt_tokens(messages)
            if step.kind == "hang":
                self._hang(seen, prompt, int(body.get("max_tokens") or 0))
            elif step.kind == "error":
                headers = {"Retry-After": f"{step.retry_after:g}"} if step.retry_after is not None else {}
                self._send(step.status, json.dumps({"error": {"message": step.content, "type": "invalid_request_error"
                                                              if step.status < 500 else "server_error",
                                                              "code": step.code or None}}), headers)
            elif step.kind == "raw":
                self._send(step.status, step.body)
            else:
                time.sleep(step.delay)
                completion = len(server._enc.encode(step.content, disallowed_special=()))
                seen.billed = server._bill(seen.model, prompt, completion)
                self._send(200, json.dumps({
                    "id": f"cmpl-{len(server.seen)}", "object": "chat.completion", "created": int(time.time()),
                    "model": seen.model,
                    "choices": [{"index": 0, "finish_reason": step.finish,
                                 "message": {"role": "assistant", "content": step.content}}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion}}))

        def _hang(self, seen: Seen, prompt: int, max_tokens: int) -> None:
            end = time.time() + server.max_hang
            while time.time() < end and not _client_gone(self.connection):
                pass
            with server._lock:
                seen.kind = "aborted"
                seen.billed = server._bill(seen.model, prompt, max_tokens)
            self.close_connection = True

        def _send(self, status: int, text: str, headers: Optional[dict] = None) -> None:
            data = text.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler
