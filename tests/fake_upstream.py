"""A fake OpenAI-compatible provider: a real HTTP server on 127.0.0.1, in its own thread and loop.

Tests script what the next answers do (:class:`Script`: text chunks, pacing, usage, an error
status, a mid-stream drop, silence, an error chunk) and read back what it received and when the
client hung up (:class:`Received`). Run in its own thread so its pacing does not depend on the
Jupyter server's event loop, and stopped by the fixture that started it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tornado import httpserver, web
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets


@dataclass
class Script:
    """What one answer does. Defaults: three chunks, quickly, with usage."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", ", ", "world"])
    interval: float = 0.0  # seconds between chunks
    first_delay: float = 0.0  # seconds before the first chunk
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    )
    finish_reason: str = "stop"
    status: int = 200  # not 200: answer this status with an OpenAI-style error body
    error_message: str = "upstream failure"
    error_code: str | None = None
    drop_after: int | None = None  # close the connection abruptly after this many chunks
    silence_after: int | None = None  # go silent (connection open) after this many chunks
    error_chunk_after: int | None = None  # send a {"error": ...} chunk after this many chunks
    send_done: bool = True  # end with "data: [DONE]"
    hold_seconds: float = 30.0  # longest a silent answer keeps the connection open
    split_bytes: int | None = None  # write each chunk in pieces of this many bytes, flushed apart
    tool_calls: list[dict[str, Any]] | None = None  # after the text: stream these calls ({"name", "arguments"})
    retry_after: str | None = None  # with an error status: the retry-after header
    raw_after: list[str] = field(default_factory=list)  # `data:` payloads sent as is after the chunks
    unended: int = 0  # hostile: then a `data:` line that never ends, this many bytes (1,000 per 2 ms)
    hold_after_done: float = 0.0  # after [DONE], keep the stream open this long before ending it
    drop_after_done: bool = False  # after [DONE], close the connection without ending the body


@dataclass
class Received:
    """One request as the fake saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    started: float  # time.monotonic()
    chunk_times: list[float] = field(default_factory=list)
    closed_by_client: float | None = None  # when the client hung up early
    finished: float | None = None  # when the fake ended the answer itself
    sent_bytes: int = 0  # of the response, written into the fake's socket so far
    socket: Any = field(default=None, repr=False)  # the fake's end of the connection
    peer: Any = None  # the client's address and port: the same for requests on one kept connection


class FakeUpstream:
    def __init__(self, ssl_context: Any = None, port: int = 0) -> None:
        self.ssl_context = ssl_context  # serve HTTPS with this server context
        self.requested_port = port  # 0: any free port
        self.scripts: deque[Script] = deque()
        self.default = Script()
        self.received: list[Received] = []
        self.exfil: list[str] = []  # requests for /exfil/... (see _Exfil)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: httpserver.HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The OpenAI-compatible API base."""
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        """The Anthropic Messages API base (litellm appends /v1/messages)."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *scripts: Script) -> None:
        """The next answers follow these scripts, in order; then the default."""
        self.scripts.extend(scripts)

    def next_script(self) -> Script:
        return self.scripts.popleft() if self.scripts else self.default

    async def until(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Poll (bounded, yielding to the test's loop) until ``predicate()`` is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.002)
        return bool(predicate())

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        sockets = bind_sockets(self.requested_port, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            app = web.Application(
                [
                    (r"/v1/chat/completions", _ChatCompletions, {"fake": self}),
                    (r"/v1/messages", _AnthropicMessages, {"fake": self}),
                    (r"/v1/embeddings", _Embeddings, {"fake": self}),
                    (r"/_fake/(script|received|reset|exfil)", _Control, {"fake": self}),
                    (r"/exfil/.*", _Exfil, {"fake": self}),
                    (r"/(cut|drop)/cellmage/api/chat", _CutShort),
                ]
            )
            self._server = httpserver.HTTPServer(app, ssl_options=self.ssl_context)
            self._server.add_sockets(sockets)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake upstream did not start")
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.stop()
            await server.close_all_connections()
            loop.stop()

        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shutdown()))
        if self._thread is not None:
            self._thread.join(10)


class _Control(web.RequestHandler):
    """For browser tests, whose fake runs inside the Jupyter server's process: script the next
    answers (POST script, a list of Script fields), read what was received, reset."""

    def initialize(self, fake: FakeUpstream) -> None:
        self.fake = fake

    def post(self, action: str) -> None:
        if action == "script":
            self.fake.script(*(Script(**fields) for fields in json.loads(self.request.body)))
        elif action == "reset":
            self.fake.scripts.clear()
            self.fake.received.clear()
            self.fake.exfil.clear()
        self.finish({"ok": True})

    def get(self, action: str) -> None:
        if action == "exfil":
            self.finish({"exfil": self.fake.exfil})
            return
        received = [
            {
                "body": r.body,
                "chunks_sent": len(r.chunk_times),
                "closed_by_client": r.closed_by_client is not None,
                "finished": r.finished is not None,
            }
            for r in self.fake.received
        ]
        self.finish({"received": received})


class _Exfil(web.RequestHandler):
    """A stand-in for a remote host that a model's answer names (an image, a stylesheet, a form):
    the safety tests assert that the browser never asks it for anything."""

    def initialize(self, fake: FakeUpstream) -> None:
        self.fake = fake

    def prepare(self) -> None:
        self.fake.exfil.append(f"{self.request.method} {self.request.path}")
        self.set_status(404)
        self.finish()


class _CutShort(web.RequestHandler):
    """A cellmage endpoint whose answer stops without ``done``, closing cleanly (``cut``: a proxy)
    or breaking the connection (``drop``: a server that died): clients must not take the text
    for a whole answer."""

    async def post(self, how: str) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.write(': cellmage\n\nevent: start\ndata: {"id":"0","model":"m","persona":null}\n\n')
        self.write('event: delta\ndata: {"text":"looks complete."}\n\n')
        if how == "drop":  # no chunked terminator: the connection breaks
            await self.flush()
            self.request.connection.stream.close()
            return
        self.finish()


def _chunk(payload: dict[str, Any]) -> bytes:
    # Raw UTF-8 (not \u escapes), as many providers send, so multibyte text can be split on the wire.
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


class _ChatCompletions(web.RequestHandler):
    def initialize(self, fake: FakeUpstream) -> None:
        self.fake = fake
        self.record: Received | None = None

    def on_connection_close(self) -> None:
        if self.record is not None and self.record.finished is None and self.record.closed_by_client is None:
            self.record.closed_by_client = time.monotonic()

    async def _send(self, data: bytes, split: int | None = None) -> bool:
        try:
            for i in range(0, len(data), split or len(data)):
                self.write(data[i : i + (split or len(data))])
                await self.flush()
        except StreamClosedError:
            self.on_connection_close()
            return False
        if self.record is not None:
            self.record.chunk_times.append(time.monotonic())
            self.record.sent_bytes += len(data)
        return True

    async def _sleep_unless_closed(self, seconds: float) -> bool:
        """Sleep; False if the client hung up meanwhile."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.record is not None and self.record.closed_by_client is not None:
                return False
            await asyncio.sleep(min(0.005, max(0.0, end - time.monotonic())))
        return self.record is None or self.record.closed_by_client is None

    async def post(self) -> None:
        body = json.loads(self.request.body or b"{}")
        self.record = Received(self.request.path, dict(self.request.headers), body, time.monotonic())
        self.record.socket = self.request.connection.stream.socket
        self.record.peer = self.record.socket.getpeername()
        self.fake.received.append(self.record)
        script = self.fake.next_script()
        model = body.get("model", "fake")

        if script.status != 200:
            self.set_status(script.status)
            error: dict[str, Any] = {"message": script.error_message, "type": "fake_error"}
            if script.error_code:
                error["code"] = script.error_code
            if script.retry_after:
                self.set_header("retry-after", script.retry_after)
            self.record.finished = time.monotonic()
            self.finish({"error": error})
            return

        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
        if not await self._send(_chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})):
            return
        if script.first_delay and not await self._sleep_unless_closed(script.first_delay):
            return
        for i, text in enumerate(script.chunks):
            if script.drop_after == i:
                self.record.finished = time.monotonic()
                self.request.connection.stream.close()  # no chunked terminator: a broken stream
                return
            if script.silence_after == i:
                await self._sleep_unless_closed(script.hold_seconds)
                self.record.finished = self.record.finished or time.monotonic()
                return
            if script.error_chunk_after == i:
                await self._send(_chunk({"error": {"message": script.error_message, "type": "server_error"}}))
                self.record.finished = time.monotonic()
                return
            if i and script.interval and not await self._sleep_unless_closed(script.interval):
                return
            delta = {"index": 0, "delta": {"content": text}, "finish_reason": None}
            if not await self._send(_chunk({**base, "choices": [delta]}), script.split_bytes):
                return
        for chunk in _tool_call_chunks(script.tool_calls or []):
            if not await self._send(_chunk({**base, "choices": [chunk]})):
                return
        for payload in script.raw_after:  # hostile: whatever the script says, unchecked
            if not await self._send(b"data: " + payload.encode() + b"\n\n"):
                return
        if script.unended:
            if not await self._send(b"data: {"):
                return
            for _ in range(script.unended // 1000):
                if not await self._sleep_unless_closed(0.002) or not await self._send(b"a" * 1000):
                    return
        final = {"index": 0, "delta": {}, "finish_reason": script.finish_reason}
        if not await self._send(_chunk({**base, "choices": [final]})):
            return
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if script.usage and wants_usage:
            await self._send(_chunk({**base, "choices": [], "usage": script.usage}))
        if script.send_done:
            await self._send(b"data: [DONE]\n\n")
        if script.hold_after_done and not await self._sleep_unless_closed(script.hold_after_done):
            return
        if script.drop_after_done:
            self.record.finished = time.monotonic()
            self.request.connection.stream.close()  # no chunked terminator: a broken stream
            return
        self.record.finished = time.monotonic()
        self.finish()


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


class _AnthropicMessages(_ChatCompletions):
    """The same scripts in Anthropic's Messages streaming format (named events, typed deltas)."""

    async def post(self) -> None:
        body = json.loads(self.request.body or b"{}")
        self.record = Received(self.request.path, dict(self.request.headers), body, time.monotonic())
        self.record.socket = self.request.connection.stream.socket
        self.record.peer = self.record.socket.getpeername()
        self.fake.received.append(self.record)
        script = self.fake.next_script()
        usage = script.usage or {}

        if script.status != 200:
            kinds = {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}
            self.set_status(script.status)
            self.record.finished = time.monotonic()
            error = {"type": kinds.get(script.status, "api_error"), "message": script.error_message}
            self.finish({"type": "error", "error": error})
            return

        self.set_header("Content-Type", "text/event-stream")
        message = {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model"),
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": 1},
        }
        if not await self._send(_event("message_start", {"type": "message_start", "message": message})):
            return
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        if not await self._send(_event("content_block_start", block)):
            return
        if script.first_delay and not await self._sleep_unless_closed(script.first_delay):
            return
        for i, text in enumerate(script.chunks):
            if script.drop_after == i:
                self.record.finished = time.monotonic()
                self.request.connection.stream.close()
                return
            if i and script.interval and not await self._sleep_unless_closed(script.interval):
                return
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
            if not await self._send(_event("content_block_delta", delta), script.split_bytes):
                return
        stop = {"stop": "end_turn", "length": "max_tokens"}.get(script.finish_reason, "end_turn")
        tail = [
            _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": usage.get("completion_tokens", 0)},
                },
            ),
            _event("message_stop", {"type": "message_stop"}),
        ]
        for frame in tail:
            if not await self._send(frame):
                return
        self.record.finished = time.monotonic()
        self.finish()


def _tool_call_chunks(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls as OpenAI streams them: id and name first, then the arguments in two pieces."""
    chunks = []
    for i, call in enumerate(calls):
        head = {"index": i, "id": f"call_fake_{i}", "type": "function", "function": {"name": call["name"], "arguments": ""}}
        chunks.append({"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None})
        half = len(call["arguments"]) // 2
        for piece in (call["arguments"][:half], call["arguments"][half:]):
            chunks.append({"index": 0, "delta": {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}, "finish_reason": None})
    return chunks


class _Embeddings(_ChatCompletions):
    """OpenAI's embeddings: one 4-dimensional vector per input, derived from its length; the
    script's status, error and retry-after apply as to chat completions."""

    async def post(self) -> None:
        body = json.loads(self.request.body or b"{}")
        self.record = Received(self.request.path, dict(self.request.headers), body, time.monotonic())
        self.record.socket = self.request.connection.stream.socket
        self.record.peer = self.record.socket.getpeername()
        self.fake.received.append(self.record)
        script = self.fake.next_script()
        self.record.finished = time.monotonic()
        if script.status != 200:
            self.set_status(script.status)
            if script.retry_after:
                self.set_header("retry-after", script.retry_after)
            self.finish({"error": {"message": script.error_message, "type": "fake_error"}})
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(text))), 0.5, -0.5, float(i)]}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(str(text).split()) for text in inputs)
        self.finish(
            {
                "object": "list", "data": data, "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
