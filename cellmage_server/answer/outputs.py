"""Where a running answer goes: frames on a response socket, with back-pressure, or nowhere until
the end (a whole answer). See :class:`~cellmage_server.answer.relay.Output` and ``PacedOutput``.

Every stream the server writes (the chat endpoint's SSE, OpenAI's chunks, a follower's SSE) is a
:class:`SocketOutput`: it counts the bytes written that its client has not taken yet, so that
whoever feeds it can wait rather than pile an answer up in memory.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from tornado import web
from tornado.concurrent import future_add_done_callback

from ..contract import comment, delta_frame, frame
from ..safety.redaction import StreamRedactor


class SocketOutput:
    """Frames written to a response, each flushed at once, and the bytes its client has not taken
    yet (``backlog``). ``drained(n)`` waits until at most ``n`` bytes are outstanding, or the
    client is gone (``gone``). A :class:`~cellmage_server.answer.relay.PacedOutput`."""

    def __init__(self, handler: web.RequestHandler) -> None:
        self._handler = handler
        self._written = 0
        self._delivered = 0
        self.backlog = 0
        self.peak = 0  # the most it ever held for its client (reported by the benchmarks)
        self.gone = False
        self._waiter: asyncio.Future[None] | None = None
        self._wait_for = 0
        self._closed: asyncio.Future[None] | None = None

    def send(self, data: bytes) -> None:
        self._handler.write(data)
        self._written += len(data)
        self.backlog = self._written - self._delivered
        if self.backlog > self.peak:
            self.peak = self.backlog
        # Resolves once everything written so far is in the socket. Once the client is gone it
        # fails (tornado marks that error as retrieved) and on_connection_close cancels the answer.
        # (tornado's helper calls back at once when the write is done already, as it is when the
        # socket took it all: no loop turn per frame.)
        future_add_done_callback(self._handler.flush(), functools.partial(self._sent, self._written))

    def _sent(self, upto: int, future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.close()
        else:
            self._delivered = max(self._delivered, upto)
            self.backlog = self._written - self._delivered
        if self._waiter is not None and not self._waiter.done() and (self.gone or self.backlog <= self._wait_for):
            self._waiter.set_result(None)

    def close(self) -> None:
        """The client is gone (its connection closed): nothing waits for it any more."""
        self.gone = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def closed(self) -> asyncio.Future[None]:
        """Done once the client is gone."""
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
            if self.gone:
                self._closed.set_result(None)
        return self._closed

    async def drained(self, max_backlog: int) -> None:
        if self.backlog <= max_backlog or self.gone:
            return
        self._wait_for = max_backlog
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter


class SSEOutput(SocketOutput):
    """The chat endpoint's answer as SSE ``delta`` frames, redacted as they go (a provider may echo
    a key: runs of a configured key never go out, even split across deltas)."""

    def __init__(self, handler: web.RequestHandler, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(handler)
        self._redactor = StreamRedactor(secrets)
        # Who else takes the text as it went out (the answer board, for followers).
        self.tee: Callable[[str], None] | None = None

    def text(self, text: str) -> None:
        text = self._redactor.feed(text)
        self.send(delta_frame(text))
        if self.tee is not None:
            self.tee(text)

    def ping(self) -> None:
        self.send(comment("ping"))


def ending_frames(ending: dict[str, Any]) -> bytes:
    """The last events of a stream (see board.ending_data): usage when known, the error if any,
    then ``done``."""
    tail = b""
    if ending.get("usage") is not None:
        tail += frame("usage", ending["usage"])
    if ending.get("error") is not None:
        tail += frame("error", ending["error"])
    return tail + frame("done", ending["done"])


class Discard:
    """A whole answer: the relay keeps the text; nothing goes out until the end (its followers
    get the text then, redacted as stored)."""

    def text(self, text: str) -> None:
        pass

    def ping(self) -> None:
        pass
