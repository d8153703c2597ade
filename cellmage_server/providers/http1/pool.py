"""The keep-alive pool of the lean path's streaming requests (see the package's docstring)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx

from .connection import Connection, Wire
from .response import Response, read_head
from .wire import WireError, request_head, target_of


class StreamPool:
    """Keep-alive connections to providers, by (scheme, host, port); unbounded in use, at most
    ``max_idle`` idle, each kept ``idle_seconds`` (httpcore's defaults, as before)."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        verify: ssl.SSLContext | bool = True,
        max_idle: int = 64,
        idle_seconds: float = 5.0,
        user_agent: str = "cellmage-server",
    ) -> None:
        self._connect_timeout = connect_timeout
        self._tls = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self._idle: list[Connection] = []
        self._active: set[Connection] = set()
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._user_agent = user_agent
        self._closed = False

    def connections(self) -> list[Connection]:
        """Every connection open now, carrying a request or idle (for tests and diagnostics)."""
        return [*self._active, *self._idle]

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    @asynccontextmanager
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AsyncIterator[Response]:
        """POST ``body`` to ``url``; the response's head is read before this yields. The connection
        goes back to the pool if its body was read to its end, else it is closed."""
        try:
            where = target_of(url)
        except WireError as e:
            raise httpx.UnsupportedProtocol(str(e)) from None
        sent = {"User-Agent": self._user_agent, **headers}
        if where.basic is not None and not any(name.lower() == "authorization" for name in sent):
            sent["Authorization"] = where.basic  # a URL's userinfo, as httpx sent it
        try:
            head = request_head("POST", where.target, where.authority, sent, len(body))
        except WireError as e:
            raise httpx.LocalProtocolError(str(e)) from None
        scheme, host, port = where.key
        connection = self._pooled((scheme, host, port)) or await self._connect(scheme, host, port)
        self._active.add(connection)
        response = None
        try:
            await self._send(connection, head, body)
            response = Response(connection, await read_head(connection.wire))
            yield response
        finally:
            self._active.discard(connection)
            if response is not None and response.reusable and not self._closed and len(self._idle) < self._max_idle:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()

    def _pooled(self, key: tuple[str, str, int]) -> Connection | None:
        now = time.monotonic()
        for i in range(len(self._idle) - 1, -1, -1):  # the most recently used first
            connection = self._idle[i]
            if connection.key != key:
                continue
            del self._idle[i]
            if connection.usable(now, self._idle_seconds):
                return connection
            connection.close()
        return None

    async def _connect(self, scheme: str, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls if scheme == "https" else None
        try:
            _, wire = await asyncio.wait_for(
                loop.create_connection(Wire, host, port, ssl=tls, server_hostname=host if tls else None),
                self._connect_timeout,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as e:
            raise httpx.ConnectError(str(e) or f"cannot connect to {host}:{port}") from e
        return Connection((scheme, host, port), wire)

    async def _send(self, connection: Connection, head: bytes, body: bytes) -> None:
        transport = connection.wire.transport
        assert transport is not None
        try:
            if len(body) < 65536:
                transport.write(head + body)  # one segment for the common request
            else:
                transport.write(head)
                transport.write(body)
            await asyncio.wait_for(connection.wire.drained(), self._connect_timeout)
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request to the provider") from None
        except OSError as e:
            raise httpx.WriteError(str(e)) from e


