"""Where a running answer goes: SSE frames on the response, with back-pressure, or nowhere until
the end (a whole answer). See :class:`~cellmage_server.answer.relay.Output` and ``PacedOutput``."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from tornado import web

from ..contract import comment, frame
from ..safety.redaction import StreamRedactor


class SSEOutput:
    """Writes a running answer to the response as SSE frames, each flushed at once, and keeps
    count of the bytes its client has not taken yet (a :class:`~cellmage_server.answer.relay.PacedOutput`)."""

    def __init__(self, handler: web.RequestHandler, secrets: tuple[str, ...] = ()) -> None:
        self._handler = handler
        # A provider may echo a key in its answer text: runs of a configured key never go out,
        # even split across deltas.
        self._redactor = StreamRedactor(secrets)
        self._written = 0
        self._delivered = 0
        self.backlog = 0
        self._waiter: asyncio.Future[None] | None = None
        self._wait_for = 0
        # Who else takes the text as it went out (the answer board, for followers).
        self.tee: Callable[[str], None] | None = None

    def send(self, data: bytes) -> None:
        self._handler.write(data)
        self._written += len(data)
        self.backlog = self._written - self._delivered
        # Resolves once everything written so far is in the socket. Once the client is gone it
        # fails (tornado marks that error as retrieved) and on_connection_close cancels the answer.
        self._handler.flush().add_done_callback(functools.partial(self._sent, self._written))

    def _sent(self, upto: int, future: asyncio.Future[None]) -> None:
        gone = future.cancelled() or future.exception() is not None
        if not gone:
            self._delivered = max(self._delivered, upto)
            self.backlog = self._written - self._delivered
        if self._waiter is not None and not self._waiter.done() and (gone or self.backlog <= self._wait_for):
            self._waiter.set_result(None)

    async def drained(self, max_backlog: int) -> None:
        if self.backlog <= max_backlog:
            return
        self._wait_for = max_backlog
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    def text(self, text: str) -> None:
        text = self._redactor.feed(text)
        self.send(frame("delta", {"text": text}))
        if self.tee is not None:
            self.tee(text)

    def ping(self) -> None:
        self.send(comment("ping"))


def ending_frames(ending: dict[str, Any]) -> bytes:
    """The last events of a stream (see answers.ending_data): usage when known, the error if
    any, then ``done``."""
    tail = b""
    if ending.get("usage") is not None:
        tail += frame("usage", ending["usage"])
    if ending.get("error") is not None:
        tail += frame("error", ending["error"])
    return tail + frame("done", ending["done"])


class FollowerOutput(SSEOutput):
    """A follower's stream (``GET answers/{id}/events``): the answer's text as its asker got it,
    then its end. A follower never holds the answer back: one that falls more than
    ``max_backlog`` bytes behind is cut with ``slow_client``."""

    def __init__(self, handler: web.RequestHandler, max_backlog: int) -> None:
        super().__init__(handler)  # the board's text is redacted already
        self.max_backlog = max_backlog
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def text(self, text: str) -> None:
        if self.ended.done():
            return
        behind = self.backlog  # what it had not taken before this delta (which may be big: the
        self.send(frame("delta", {"text": text}))  # text so far, for one who comes late)
        if behind > self.max_backlog:
            message = "This page read the answer too slowly to follow it; the cell shows it when it ends."
            self.end({"error": {"code": "slow_client", "message": message},
                      "done": {"finish_reason": "error", "elapsed_ms": 0}})

    def end(self, ending: dict[str, Any]) -> None:
        if not self.ended.done():
            self.send(ending_frames(ending))
            self.ended.set_result(None)


class Discard:
    """A non-streamed answer: the relay keeps the text; nothing goes out until the end."""

    def text(self, text: str) -> None:
        pass

    def ping(self) -> None:
        pass
