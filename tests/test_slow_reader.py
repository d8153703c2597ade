"""A client that reads slowly holds the provider back instead of filling the server's memory; one
that stays behind past ``timeouts.client_behind`` is cut off and the provider closed; an answer
counts as running until the client has its last byte."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from .conftest import _BASE_TOML, KEY_ENV
from .fake_upstream import FakeUpstream, Script

PIECE = "x" * 16_000
BIG = Script(chunks=[PIECE] * 3000, usage=None)  # 48 MB of answer, as fast as the provider can


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    toml = _BASE_TOML.format(url=fake_upstream.url, key_env=KEY_ENV)
    toml = toml.replace("[limits]\n", "[limits]\nstream_buffer_bytes = 65536\n")
    return toml.replace("[timeouts]\n", "[timeouts]\nclient_behind = 2\n")


async def _stalled_reader(port: int, base_url: str, auth: str) -> socket.socket:
    """A client with a small receive window that sends its request and then reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    body = json.dumps({"prompt": "a long one"}).encode()
    head = (
        f"POST {base_url}cellmage/api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    await asyncio.get_running_loop().sock_sendall(sock, head + body)
    return sock


async def test_a_reader_that_stalls_holds_the_provider_back_then_is_cut(
    api, fake_upstream, jp_http_port, jp_base_url, jp_auth_header
):
    fake_upstream.script(BIG)
    sock = await _stalled_reader(jp_http_port, jp_base_url, jp_auth_header["Authorization"])
    try:
        assert await fake_upstream.until(lambda: fake_upstream.received and fake_upstream.received[0].chunk_times)
        upstream = fake_upstream.received[0]
        await asyncio.sleep(1.0)  # long enough to drain 48 MB without back-pressure (~1 s)

        # While the client reads nothing, the provider is held back (only socket buffers' worth
        # went out) and the answer still counts as running
        held_back = len(upstream.chunk_times)
        assert held_back < len(BIG.chunks) // 2, held_back
        assert upstream.closed_by_client is None
        assert (await api.get("status")).json()["running_answers"] == 1

        # Then, behind for longer than timeouts.client_behind, it is cut and the provider closed
        assert await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=10)
        assert len(upstream.chunk_times) < len(BIG.chunks) // 2
        for _ in range(300):  # bounded: the end is flushed, or the connection dropped, within the limit
            if (await api.get("status")).json()["running_answers"] == 0:
                break
            await asyncio.sleep(0.05)
        assert (await api.get("status")).json()["running_answers"] == 0
    finally:
        sock.close()


async def test_a_fast_reader_gets_the_whole_big_answer(api, fake_upstream):
    fake_upstream.script(Script(chunks=[PIECE] * 200))

    result = await api.stream({"prompt": "x"})

    assert result.names()[-1] == "done" and "error" not in result.names()
    assert len(result.text()) == 200 * len(PIECE)
