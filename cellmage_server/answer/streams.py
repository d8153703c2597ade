"""The answers running on this server: found by id for ``cancel``, counted per user for the limit."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CellmageError, NotFound, TooManyStreams
from .relay import Relay


class Streams:
    def __init__(self, max_per_user: int) -> None:
        self.max_per_user = max_per_user
        self._by_id: dict[str, Relay] = {}
        self._per_user: Counter[str] = Counter()
        self._closed: CellmageError | None = None
        self._idle: asyncio.Event | None = None  # made on the loop, when someone waits

    def check_capacity(self, user: str) -> None:
        """Raise :class:`TooManyStreams` if ``user`` cannot start one more answer now (or the
        reason the server is closing)."""
        if self._closed is not None:
            raise copy.copy(self._closed)
        if self._per_user[user] >= self.max_per_user:
            raise TooManyStreams(
                f"You already have {self._per_user[user]} answers running (the limit is "
                f"{self.max_per_user}); wait for one to finish or stop it."
            )

    @contextmanager
    def running(self, relay: Relay) -> Iterator[None]:
        """Hold a place for ``relay`` while it runs."""
        self.check_capacity(relay.owner)
        self._by_id[relay.id] = relay
        self._per_user[relay.owner] += 1
        try:
            yield
        finally:
            del self._by_id[relay.id]
            self._per_user[relay.owner] -= 1
            if not self._per_user[relay.owner]:
                del self._per_user[relay.owner]
            if not self._by_id and self._idle is not None:
                self._idle.set()

    def get(self, stream_id: str, user: str) -> Relay:
        """The running answer ``stream_id`` of ``user``; another user's answers are not found."""
        relay = self._by_id.get(stream_id)
        if relay is None or relay.owner != user:
            raise NotFound(f"No running answer has id {stream_id!r}; it may have finished already.")
        return relay

    def close(self, reason: CellmageError) -> None:
        """Refuse new answers and stop the running ones with ``reason`` (their clients see it)."""
        self._closed = reason
        for relay in list(self._by_id.values()):
            relay.cancel(reason)

    def cancel_all(self) -> None:
        """Stop every running answer without writing more to its client."""
        for relay in list(self._by_id.values()):
            relay.cancel(silent=True)

    async def drained(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until no answer is running; False if some still are."""
        if not self._by_id:
            return True
        self._idle = self._idle or asyncio.Event()
        self._idle.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return not self._by_id
        return True

    def __len__(self) -> int:
        return len(self._by_id)
