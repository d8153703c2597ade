"""One connection to a provider: an asyncio protocol whose buffer the socket fills and a reader
empties, paused past :data:`HIGH_WATER` (a reader that stops reading stops the provider:
back-pressure), and the check made before a kept connection carries another request."""

from __future__ import annotations

import asyncio
import select

import httpx

HIGH_WATER = 1 << 20  # bytes read ahead of the reader before the socket is paused


class Wire(asyncio.Protocol):
    """One connection's bytes: a buffer the socket fills and a reader empties."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer: list[bytes] = []  # the reads not taken yet, as they came (no copy of each)
        self.buffered = 0
        self.eof = False
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def some(self) -> bytes:
        """What has come (b"" at the connection's end); waits for the next bytes if none has."""
        while not self.buffer:
            if self.eof:
                if self.error is not None:
                    raise httpx.ReadError(str(self.error) or type(self.error).__name__)
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        buffer = self.buffer
        data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
        buffer.clear()
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def unread(self, data: bytes) -> None:
        if data:
            self.buffer.insert(0, data)
            self.buffered += len(data)

    async def drained(self) -> None:
        """Until what was written has gone to the socket (or the connection ended: a provider may
        answer and close before it reads the whole request, and its answer is read next)."""
        if self._drained is not None:
            await self._drained


class Connection:
    def __init__(self, key: tuple[str, str, int], wire: Wire) -> None:
        self.key = key
        self.wire = wire
        self.idle_since = 0.0

    def usable(self, now: float, idle_seconds: float) -> bool:
        """Whether a pooled connection can carry another request: not too long idle, nothing
        waiting on it (the provider closed it, or sent what no request asked for)."""
        transport = self.wire.transport
        if transport is None or transport.is_closing() or self.wire.eof or self.wire.buffer:
            return False
        if now - self.idle_since > idle_seconds:
            return False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return True
        poll = select.poll()  # (not select.select: it refuses descriptors past 1023)
        poll.register(sock.fileno(), select.POLLIN)
        return not poll.poll(0)  # readable while idle: bytes no request asked for, or the close

    def close(self) -> None:
        if self.wire.transport is not None:
            self.wire.transport.close()


