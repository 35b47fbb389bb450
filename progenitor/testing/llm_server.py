"""A scripted, OpenAI-compatible chat server on 127.0.0.1: the language model of the tests.

litellm talks to it over real HTTP (``openai/<name>`` with ``api_base=server.url``), so the
tests exercise litellm itself: its retries, timeouts, fallbacks and cost functions. Each
model name has a queue of scripted replies, taken in order; a reply may be an HTTP error
(a 429), arrive late (past the client's timeout), or be a body that is not a completion at
all. When a model's queue is empty its responder (a function of the request) answers, if it
has one; otherwise the request is answered 500 and listed in ``unexpected``. Every request
is recorded, so a test can read the prompts a model got. A run's preflight (one request with
``max_tokens: 1`` per model) is answered "OK" outside the script and listed in ``probes``
(``answer_probes=False``: scripted like any other request).

    with ScriptedLLMServer() as server:
        server.queue("arch", '{"proposals": [...]}')
        server.queue("coder", Reply(status=429), "path/to/file.py\\n<<<<<<< SEARCH ...")
        ... llm: {model: openai/arch, api_base: server.url} ...
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional, Union

from pydantic import BaseModel

__all__ = ["Reply", "Request", "ScriptedLLMServer"]


class Reply(BaseModel):
    """One scripted answer."""

    content: str = ""
    """The assistant message's text."""
    status: int = 200
    """HTTP status; 429 and 5xx answer with an OpenAI-style error body."""
    delay: float = 0.0
    """Seconds to wait before answering (longer than the client's timeout: a timeout)."""
    body: Optional[str] = None
    """A raw response body instead of a completion (a malformed response)."""
    prompt_tokens: Optional[int] = None
    """Usage reported; default: about one token per four characters of the request."""
    completion_tokens: Optional[int] = None


class Request(BaseModel):
    """What the server received."""

    model: str
    messages: list[dict]
    body: dict
    headers: dict[str, str]

    @property
    def prompt(self) -> str:
        """Every message's text, joined: what a test searches."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


Answer = Union[Reply, str]
Responder = Callable[[Request], Answer]


class ScriptedLLMServer:
    """Serves ``/v1/chat/completions`` on 127.0.0.1 (a free port) from scripted replies."""

    def __init__(self, answer_probes: bool = True) -> None:
        self.requests: list[Request] = []
        self.unexpected: list[Request] = []
        self.probes: list[Request] = []
        self.answer_probes = answer_probes
        self._queues: dict[str, deque[Answer]] = defaultdict(deque)
        self._responders: dict[str, Responder] = {}
        self._lock = threading.Lock()
        self._http: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- scripting ------------------------------------------------------------------------
    def queue(self, model: str, *replies: Answer) -> None:
        """Replies for ``model`` (the name after the provider prefix), taken in order."""
        with self._lock:
            self._queues[model].extend(replies)

    def respond(self, model: str, responder: Responder) -> None:
        """Answer ``model``'s requests with ``responder`` once its queue is empty."""
        with self._lock:
            self._responders[model] = responder

    def requests_for(self, model: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.model == model]

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The ``api_base`` to give litellm."""
        assert self._http is not None, "start the server first"
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def start(self) -> "ScriptedLLMServer":
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> "ScriptedLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ------------------------------------------------------------------------
    def _take(self, request: Request) -> Optional[Reply]:
        if self.answer_probes and request.body.get("max_tokens") == 1:
            with self._lock:
                self.probes.append(request)
            return Reply(content="OK", completion_tokens=1)
        with self._lock:
            self.requests.append(request)
            queue = self._queues.get(request.model)
            answer = queue.popleft() if queue else None
            responder = self._responders.get(request.model)
        if answer is None and responder is not None:
            answer = responder(request)
        if answer is None:
            with self._lock:
                self.unexpected.append(request)
            return None
        return Reply(content=answer) if isinstance(answer, str) else answer


def _completion(request: Request, reply: Reply) -> dict:
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else max(1, len(request.prompt) // 4)
    completion = reply.completion_tokens if reply.completion_tokens is not None else max(1, len(reply.content) // 4)
    return {
        "id": f"chatcmpl-scripted-{len(request.messages)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": reply.content}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def _handler(server: ScriptedLLMServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: tests read server.requests instead
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            request = Request(model=str(body.get("model", "")), messages=body.get("messages", []), body=body,
                              headers={k.lower(): v for k, v in self.headers.items()})
            reply = server._take(request)
            if reply is None:
                return self._send(500, {"error": {"message": f"no scripted reply for model {request.model!r}"}})
            if reply.delay:
                time.sleep(reply.delay)
            if reply.body is not None:
                return self._send(reply.status, reply.body)
            if reply.status != 200:
                kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
                return self._send(reply.status, {"error": {"message": reply.content or kind, "type": kind,
                                                           "code": kind}})
            self._send(200, _completion(request, reply))

        def _send(self, status: int, payload: Union[dict, str]) -> None:
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

    return Handler
