"""An httpcore network backend on plain asyncio streams, for the lean path's connection pool.

httpcore's default backend under asyncio goes through anyio, which opens a cancel scope and a
few context managers for every socket read. When an answer is paced (every chunk its own read),
that overhead was about 30% of the relay's CPU per chunk in bench/relay_bench.py. This backend
reads and writes asyncio streams directly; timeouts use ``asyncio.timeout`` only when one is set
(the lean path sets none for reads: the relay watches them).

httpx has no public way to choose httpcore's backend, so :func:`use_asyncio_backend` sets it on
the transport's pool and leaves the default in place if httpx's internals ever differ.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import sys
from typing import Any

import httpcore
import httpx


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("timed out reading from the provider") from None
        except OSError as e:
            raise httpcore.ReadError(str(e)) from e

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out writing to the provider") from None
        except OSError as e:
            raise httpcore.WriteError(str(e)) from e

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out in the TLS handshake with the provider") from None
        except (OSError, ssl.SSLError) as e:
            raise httpcore.ConnectError(str(e)) from e
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # httpcore asks before reusing a pooled connection
            sock = self._writer.get_extra_info("socket")
            return self._reader.at_eof() or bool(select.select([sock], [], [], 0)[0])
        names = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername", "socket": "socket"}
        return self._writer.get_extra_info(names[info]) if info in names else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, local_addr=local, limit=1 << 20)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as e:
            raise httpcore.ConnectError(str(e) or f"cannot connect to {host}:{port}") from e
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from None
        except OSError as e:
            raise httpcore.ConnectError(str(e)) from e
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def use_asyncio_backend(transport: httpx.AsyncHTTPTransport) -> bool:
    """Make ``transport`` open its connections with :class:`AsyncioBackend`; False if it cannot."""
    pool = getattr(transport, "_pool", None)
    # asyncio.timeout and StreamWriter.start_tls arrived in Python 3.11.
    if sys.version_info < (3, 11) or not isinstance(pool, httpcore.AsyncConnectionPool):
        return False
    if not hasattr(pool, "_network_backend"):
        return False
    pool._network_backend = AsyncioBackend()
    return True
