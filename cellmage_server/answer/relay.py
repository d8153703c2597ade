"""Run one answer: pump a provider's events to an output, coalescing text, keeping the connection
alive, enforcing timeouts, and stopping the provider at once on cancel.

The provider is read in its own task. Cancelling that task is what closes the upstream request
promptly (closing the iterator from outside waits for the next chunk; doing nothing lets the
provider generate to the end). One timer, re-armed lazily, handles pings, activity and every
timeout, so a chunk costs a clock read and a list append.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from ..config import Timeouts
from ..contract import Finish, ProviderEvent, Usage, well_formed
from ..errors import AnswerTooLong, Cancelled, CellmageError, Internal, SlowClient, UpstreamError

log = logging.getLogger(__name__)


class Output(Protocol):
    """Where an answer goes while it runs."""

    def text(self, text: str) -> None:
        """Answer text: every delta that arrived in one event-loop turn, joined."""

    def ping(self) -> None:
        """Nothing was sent for a ping interval."""


class PacedOutput(Output, Protocol):
    """An output that says how far its client is behind. The relay stops reading the provider
    while ``backlog`` (bytes written, not yet taken by the client) is over its buffer, so a slow
    reader holds the provider back instead of piling the answer up in memory."""

    backlog: int

    async def drained(self, max_backlog: int) -> None:
        """Return once ``backlog`` is at most ``max_backlog`` (or the client is gone)."""


@dataclass
class Outcome:
    """How an answer ended."""

    text: str
    usage: Usage | None
    finish_reason: str  # the provider's, or "error" / "cancelled"
    error: CellmageError | None
    elapsed_ms: int


class Relay:
    """One running answer. ``run()`` it once; ``cancel()`` it from anywhere on the loop."""

    def __init__(
        self,
        events: AsyncIterator[ProviderEvent],
        output: Output,
        *,
        timeouts: Timeouts,
        ping_interval: float,
        touch: Callable[[], None] = lambda: None,
        owner: str = "",
        buffer_bytes: int = 1 << 20,
        max_bytes: int = 8 << 20,
        keep_text: bool = True,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.owner = owner
        self._events = events
        self._output = output
        # Back-pressure only for outputs that can tell (PacedOutput); others take text as it comes.
        self._paced: PacedOutput | None = output if hasattr(output, "drained") else None  # type: ignore[assignment]
        self._buffer_bytes = buffer_bytes
        # Past max_bytes of text (UTF-8) the answer ends with AnswerTooLong: a provider that
        # ignores max_tokens costs at most this. keep_text: keep the text for the end (a stream
        # that nobody stores or assembles keeps nothing).
        self._max_bytes = max_bytes
        self._keep_text = keep_text
        self._size = 0
        self._unflushed_from = 0  # the size when the first text not yet flushed came
        self._behind_since: float | None = None  # when the pump began waiting for the client
        self._timeouts = timeouts
        self._ping_interval = ping_interval
        self._touch = touch
        self._loop = asyncio.get_running_loop()
        self._parts: list[str] = []
        self._pending: list[str] = []
        self._flush_handle: asyncio.Handle | None = None
        self._usage: Usage | None = None
        self._finish: str | None = None
        self._stop: CellmageError | None = None
        self._silent = False
        self._task: asyncio.Task[None] | None = None
        self._task_cancelled = False
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._last_event: float | None = None
        self._last_output = 0.0

    # --- control ---------------------------------------------------------------------------

    def cancel(self, reason: CellmageError | None = None, *, silent: bool = False) -> None:
        """Stop the answer: the provider task is cancelled, which closes the upstream request.

        ``silent``: the client is gone, so nothing more is written.
        """
        if self._stop is None:
            self._stop = reason or Cancelled()
        self._silent = self._silent or silent
        self._cancel_task()

    def _cancel_task(self) -> None:
        # Once only: a second cancellation would land inside the provider's closing of its
        # request (cancel and disconnect often come together) and leave that request open.
        if self._task is not None and not self._task.done() and not self._task_cancelled:
            self._task_cancelled = True
            self._task.cancel()

    async def run(self) -> Outcome:
        """Relay the whole answer and say how it ended; never raises for provider failures."""
        self._started = self._last_output = self._loop.time()
        wall_start = time.monotonic()
        self._task = asyncio.create_task(self._pump(), name=f"cellmage-answer-{self.id}")
        if self._stop is not None:  # cancelled before it started
            self._cancel_task()
        self._arm()
        try:
            await asyncio.wait([self._task])
        except asyncio.CancelledError:  # the handler itself is being cancelled
            self._cancel_task()
            raise
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self._touch()

        error: CellmageError | None
        if self._task.cancelled():
            error = self._stop or Cancelled("The server stopped the answer.")
        elif (exc := self._task.exception()) is not None:
            if isinstance(exc, CellmageError):
                error = exc
            else:  # a bug here or in a provider path: the answer still ends properly
                log.error("cellmage: answer %s failed while relaying", self.id, exc_info=exc)
                error = Internal()
        else:
            error = None
        self._flush_pending()
        if error is None:
            finish = self._finish or "stop"
        else:
            finish = "cancelled" if isinstance(error, Cancelled) else "error"
        elapsed_ms = round((time.monotonic() - wall_start) * 1000)
        return Outcome(well_formed("".join(self._parts)), self._usage, finish, error, elapsed_ms)

    @property
    def silent(self) -> bool:
        return self._silent

    # --- the provider task -----------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            await self._pump_events()
        finally:
            # Cancelled while waiting for the client, not for the provider: the provider's stream
            # is suspended at a yield and closes (its request with it) only when told to.
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _pump_events(self) -> None:
        loop = self._loop
        pending = self._pending
        parts = self._parts if self._keep_text else None
        paced, buffer_bytes, max_bytes = self._paced, self._buffer_bytes, self._max_bytes
        async for event in self._events:
            self._last_event = loop.time()
            if type(event) is str:
                before = self._size
                # (isascii is a flag check in CPython: the count costs nothing for ASCII text.)
                self._size += len(event) if event.isascii() else len(event.encode("utf-8", "surrogatepass"))
                if self._size > max_bytes:
                    raise AnswerTooLong(max_bytes)
                pending.append(event)
                if parts is not None:
                    parts.append(event)
                if not before:  # the first text goes out at once: it is the time to first token
                    self._flush_pending()
                    self._unflushed_from = self._size
                elif self._flush_handle is None:  # the rest of a turn's texts share one frame
                    self._flush_handle = loop.call_soon(self._flush_pending)
                    self._unflushed_from = before
                # What the client has not taken, counting what waits for this turn's flush (a
                # provider whose chunks are already buffered yields many in one turn).
                if paced is not None and paced.backlog + self._size - self._unflushed_from > buffer_bytes:
                    self._flush_pending()
                    await self._wait_for_client(paced)
            elif isinstance(event, Usage):
                self._usage = event
            elif isinstance(event, Finish):
                self._finish = event.reason

    async def _wait_for_client(self, paced: PacedOutput) -> None:
        """Stop reading the provider until the client has taken half the buffer (the provider's
        own socket then holds it back); the timer cuts a client that stays behind too long."""
        self._behind_since = self._loop.time()
        self._rearm()
        try:
            await paced.drained(self._buffer_bytes // 2)
        finally:
            self._behind_since = None
            self._last_event = self._loop.time()  # the provider was not read meanwhile: no gap
            self._rearm()

    def _flush_pending(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._pending and not self._silent:
            text = "".join(self._pending)
            self._pending.clear()
            self._last_output = self._loop.time()
            try:
                self._output.text(text)
            except Exception:  # a bug in writing: stop the answer rather than drop text silently
                log.exception("cellmage: answer %s could not be written", self.id)
                self.cancel(Internal())

    # --- one timer: pings, activity, timeouts ----------------------------------------------

    def _deadline(self) -> tuple[float, str, type[CellmageError] | None]:
        """When the answer times out, why, and as what (None: an upstream timeout)."""
        t = self._timeouts
        total = (self._started + t.total, f"The answer took longer than timeouts.total ({t.total:g} s).", None)
        if self._behind_since is not None:
            behind = (
                self._behind_since + t.client_behind,
                f"The client read the answer too slowly: it stayed more than the server's buffer "
                f"behind for timeouts.client_behind ({t.client_behind:g} s).",
                SlowClient,
            )
            return min(total, behind, key=lambda d: d[0])
        if self._last_event is None:
            wait = (
                self._started + t.first_token,
                f"The provider sent nothing for timeouts.first_token ({t.first_token:g} s).",
                None,
            )
        else:
            wait = (
                self._last_event + t.chunk_gap,
                f"The provider went silent for longer than timeouts.chunk_gap ({t.chunk_gap:g} s).",
                None,
            )
        return min(total, wait, key=lambda d: d[0])

    def _arm(self) -> None:
        deadline = self._deadline()[0]
        wake = min(deadline, self._last_output + self._ping_interval)
        self._timer = self._loop.call_at(wake, self._tick)

    def _rearm(self) -> None:
        """The deadline changed (the client fell behind or caught up): wake for the new one."""
        if self._timer is not None and self._task is not None and not self._task.done():
            self._timer.cancel()
            self._arm()

    def _tick(self) -> None:
        now = self._loop.time()
        self._touch()
        deadline, why, kind = self._deadline()
        if now >= deadline:
            self.cancel(kind(why) if kind is not None else UpstreamError("timeout", why))
            return
        # No ping for a client that is behind: it has plenty to read.
        if now - self._last_output >= self._ping_interval and not self._silent and self._behind_since is None:
            self._last_output = now
            self._output.ping()
        self._arm()
