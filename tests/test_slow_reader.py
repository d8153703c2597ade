"""A client that reads slowly holds the provider back instead of filling the server's memory; one
that stays behind past ``timeouts.client_behind`` is cut off and the provider closed; an answer
counts as running until the client has its last byte."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from .conftest import kernel_buffers, provider_read_ahead, provider_sockets, toml_with
from .fake_upstream import FakeUpstream, Script

BUFFER = 65536
PIECE = "x" * 16_000
BIG = Script(chunks=[PIECE] * 3000, usage=None)  # 48 MB of answer, as fast as the provider can


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml_with(fake_upstream, limits={"stream_buffer_bytes": BUFFER, "max_answer_bytes": 64 << 20}, timeouts={"client_behind": 2})


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


def _chat_handler():
    import gc

    from cellmage_server.routes.chat import ChatHandler

    (found,) = [h for h in gc.get_objects() if isinstance(h, ChatHandler) and h._answer is not None and not h._finished]
    return found


async def test_a_reader_that_stalls_holds_the_provider_back_then_is_cut(
    api, fake_upstream, jp_http_port, jp_base_url, jp_auth_header, jp_serverapp
):
    fake_upstream.script(BIG)
    sock = await _stalled_reader(jp_http_port, jp_base_url, jp_auth_header["Authorization"])
    try:
        assert await fake_upstream.until(lambda: fake_upstream.received and fake_upstream.received[0].chunk_times)
        upstream = fake_upstream.received[0]
        await asyncio.sleep(1.0)  # long enough to send all 48 MB without back-pressure (~1 s)

        # While the client reads nothing, the server holds at most limits.stream_buffer_bytes and a
        # frame for it, and stops reading the provider: what left the provider is that, and what
        # the kernel buffers on the way (measured on the connections' four ends)
        handler = _chat_handler()
        held = handler._answer.output.peak
        assert held <= BUFFER + 2 * len(PIECE) + 200, held
        ends = (upstream.socket, *provider_sockets(jp_serverapp), handler.request.connection.stream.socket, sock)
        read_ahead = provider_read_ahead(jp_serverapp)  # read from the provider, not yet relayed
        assert upstream.sent_bytes <= held + kernel_buffers(*ends) + read_ahead + 256 * 1024
        assert upstream.closed_by_client is None
        assert (await api.get("status")).json()["running_answers"] == 1  # it still counts as running

        # Then, behind for longer than timeouts.client_behind, it is cut and the provider closed
        assert await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=10)
        # ... with slow_client queued behind what it had not read, then done
        sock.setblocking(True)
        sock.settimeout(10)
        data = b""
        while b"event: done" not in data[-400:]:
            got = await asyncio.to_thread(sock.recv, 1 << 20)
            if not got:
                break
            data += got
        tail = data[-600:]
        assert b"event: error" in tail and b'"code":"slow_client"' in tail and b"event: done" in tail, tail
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
