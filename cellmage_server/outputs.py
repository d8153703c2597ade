"""Where a running answer goes: SSE frames on the response, with back-pressure, or nowhere until
the end (a whole answer). See :class:`~cellmage_server.relay.Output` and ``PacedOutput``."""

from __future__ import annotations

import asyncio
import functools

from tornado import web

from .contract import comment, frame
from .errors import StreamRedactor


class SSEOutput:
    """Writes a running answer to the response as SSE frames, each flushed at once, and keeps
    count of the bytes its client has not taken yet (a :class:`~cellmage_server.relay.PacedOutput`)."""

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
        if text:
            self.send(frame("delta", {"text": text}))

    def end_text(self) -> None:
        """The answer's text is complete: send what was held back."""
        text = self._redactor.end()
        if text:
            self.send(frame("delta", {"text": text}))

    def ping(self) -> None:
        self.send(comment("ping"))


class Discard:
    """A non-streamed answer: the relay keeps the text; nothing goes out until the end."""

    def text(self, text: str) -> None:
        pass

    def ping(self) -> None:
        pass
