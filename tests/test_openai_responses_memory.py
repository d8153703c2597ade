"""``cellmage/v1/responses`` has the memory bounds of ``chat/completions``: a client that never
reads holds the provider back, a client that stops reading during the last events (which repeat
the whole text) is held to the buffer and a piece, the text a stream keeps for them stops at
``limits.max_answer_bytes``, and a body over the limit is never held.

Server memory is what this process's Python code allocates (the server under test runs in it) at
its peak during the attack, over what it held before: tracemalloc's count, which unlike the resident
size does not depend on what the allocator kept from earlier tests.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from cellmage_server.routes.openai import pieces

from .conftest import kernel_buffers, provider_read_ahead, provider_sockets, toml_with
from .fake_upstream import FakeUpstream, Script
from .helpers import NASTY, first_answer_bytes, peak_growth, raw_post, read_response, running_handler, stalled_client
from .openai_support import scoped_key, v1

MB = 1 << 20

BUFFER = 64 * 1024
# One piece of the last events: a run of text, escaped (up to six bytes a character), and a delta.
PIECE = 6 * (pieces.PIECE_CHARS + len(NASTY)) + 2000


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml_with(
        fake_upstream,
        limits={"stream_buffer_bytes": BUFFER, "max_answer_bytes": 256 << 20},
        timeouts={"client_behind": 3, "total": 60},
        openai_endpoint={"max_body_bytes": 1 << 20},
    )


@contextmanager
def allocated() -> Iterator[list[int]]:
    """Yields a one-item list that holds, on exit, the peak of Python's allocations over those at entry."""
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    peak = [0]
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()


async def _tail_of(sock, keep: int = 1 << 16) -> bytes:
    """Read a socket to its end (bounded), keeping only the last ``keep`` bytes."""
    loop, tail = asyncio.get_running_loop(), b""
    for _ in range(100_000):
        got = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10)
        if not got:
            return tail
        tail = (tail + got)[-keep:]
    raise AssertionError("the stream did not end")


def _body(**extra) -> bytes:
    return json.dumps({"model": "fast", "input": "hi", "stream": True, **extra}).encode()


async def test_a_stalled_reader_holds_the_provider_back_then_is_cut(api, fake_upstream, jp_http_port, jp_base_url, jp_serverapp):
    from cellmage_server.routes.openai.handlers import ResponsesHandler

    fake_upstream.script(Script(chunks=["x" * 16000] * 3000, usage=None))  # 48 MB, as fast as it can
    auth = f"Bearer {scoped_key(jp_serverapp)}"
    with allocated() as grown:
        sock = await stalled_client(jp_http_port, raw_post(f"{jp_base_url}cellmage/v1/responses", auth, _body()))
        try:
            assert await fake_upstream.until(lambda: fake_upstream.received and fake_upstream.received[0].chunk_times)
            upstream = fake_upstream.received[0]
            await asyncio.sleep(1.0)  # long enough to send all 48 MB without back-pressure
            handler = running_handler(ResponsesHandler)
            held = handler._answer.output.peak
            assert held <= BUFFER + 20_000, held
            on_the_way = kernel_buffers(upstream.socket, *provider_sockets(jp_serverapp), handler.request.connection.stream.socket, sock)
            on_the_way += provider_read_ahead(jp_serverapp)  # read from the provider, not yet relayed
            assert upstream.sent_bytes <= held + on_the_way + 256 * 1024, (upstream.sent_bytes, held, on_the_way)
            assert await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=10)
            # ... and its stream ends with slow_client, then the failed response
            data = await read_response(sock)
            error = data.rfind(b"event: error\n")
            assert error > 0 and b'"code":"slow_client"' in data[error : error + 300], data[error : error + 300]
            assert data.rfind(b"event: response.failed\n") > error
        finally:
            sock.close()
    # What left the provider (its text kept for the end) and what the test read, not the 48 MB
    assert grown[0] < upstream.sent_bytes + len(data) + 8 * MB, (grown[0] >> 20, upstream.sent_bytes >> 20)


async def test_a_reader_that_stops_during_the_last_events_is_held_to_the_buffer_and_a_piece(
    api, fake_upstream, jp_http_port, jp_base_url, jp_serverapp
):
    from cellmage_server.routes.openai.handlers import ResponsesHandler

    # Given a 6.4 MB answer whose JSON escaping is at its worst: its last events repeat it four
    # times, about 90 MB encoded
    fake_upstream.script(Script(chunks=[NASTY] * 400))
    auth = f"Bearer {scoped_key(jp_serverapp)}"
    with allocated() as grown:
        sock = await stalled_client(jp_http_port, raw_post(f"{jp_base_url}cellmage/v1/responses", auth, _body()))
        try:
            # When the client reads every delta, then stops as the last events begin
            seen = b""
            loop = asyncio.get_running_loop()
            for _ in range(200_000):
                seen = seen[-64:] + await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
                if b"response.output_text.done" in seen:
                    break
            else:
                raise AssertionError("no response.output_text.done")
            handler = running_handler(ResponsesHandler)
            output, stream = handler._answer.output, handler.request.connection.stream
            for _ in range(500):  # until the server waits for the client
                if output.backlog > BUFFER:
                    break
                await asyncio.sleep(0.01)
            # Then it holds at most the buffer and a piece for the client, not the ~90 MB
            assert BUFFER < output.peak <= BUFFER + PIECE, output.peak
            # ... and after timeouts.client_behind the client is cut, its answer not completed
            for _ in range(1000):
                if stream.closed():
                    break
                await asyncio.sleep(0.01)
            assert stream.closed() and output.peak <= BUFFER + PIECE
            tail = await _tail_of(sock)
            assert b"response.completed" not in tail and not tail.endswith(b"\r\n0\r\n\r\n")
        finally:
            sock.close()
    # The text kept for the end (6.4 MB) and a few pieces, not the last events encoded (~90 MB)
    assert grown[0] < len(NASTY) * 400 + 8 * MB, f"the server allocated {grown[0] >> 20} MB"
    assert fake_upstream.received[0].closed_by_client is None  # the provider had finished


async def test_every_last_event_arrives_for_a_reader_that_keeps_reading(api, fake_upstream, jp_serverapp):
    fake_upstream.script(Script(chunks=[NASTY] * 100))
    async with httpx.AsyncClient(trust_env=False, timeout=60) as c:
        async with c.stream(
            "POST", v1(api) + "/responses", headers={"Authorization": f"Bearer {scoped_key(jp_serverapp)}"}, content=_body()
        ) as response:
            events = [json.loads(line[6:]) async for line in response.aiter_lines() if line.startswith("data: ")]
    text = NASTY * 100
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == text
    done = {e["type"]: e for e in events[-4:]}
    assert done["response.output_text.done"]["text"] == text
    assert done["response.content_part.done"]["part"]["text"] == text
    assert done["response.output_item.done"]["item"]["content"][0]["text"] == text
    assert done["response.completed"]["response"]["output"][0]["content"][0]["text"] == text


class TestTheTextKeptForTheEnd:
    """A stream keeps its text for its last events: up to ``limits.max_answer_bytes``, not more."""

    @pytest.fixture
    def cellmage_toml(self, fake_upstream: FakeUpstream) -> str:
        return toml_with(fake_upstream, limits={"max_answer_bytes": 8 << 20}, timeouts={"total": 60})

    async def test_a_fast_reader_of_an_endless_stream_costs_the_answer_limit(self, api, fake_upstream, jp_serverapp):
        fake_upstream.script(Script(chunks=["x" * 16000] * 6000))  # 96 MB
        with allocated() as grown:
            async with httpx.AsyncClient(trust_env=False, timeout=60) as c:
                async with c.stream(
                    "POST", v1(api) + "/responses", headers={"Authorization": f"Bearer {scoped_key(jp_serverapp)}"},
                    content=_body(),
                ) as response:
                    tail, error = b"", b""
                    async for piece in response.aiter_bytes():
                        tail = tail[-400:] + piece
                        if b"event: error\n" in tail:  # keep no more than that of it, as the server
                            error = tail[tail.index(b"event: error\n") :][:300]
                        tail = tail[-400:]
        assert b'"code":"too_long"' in error, error
        # The text kept, at most the limit, and a few pieces: not the 96 MB
        assert grown[0] < 8 * MB + 8 * MB, f"the server allocated {grown[0] >> 20} MB"


async def test_a_body_far_over_the_limit_is_refused_before_any_of_it_is_read(api, fake_upstream, jp_http_port, jp_base_url, jp_serverapp):
    for auth, status in ((f"Bearer {scoped_key(jp_serverapp)}", b" 413 "), ("Bearer not-a-key", b" 401 ")):
        head = (
            f"POST {jp_base_url}cellmage/v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {200 << 20}\r\n\r\n"
        ).encode()
        answer = await first_answer_bytes(jp_http_port, head)  # nothing of the 200 MB was sent
        assert status in answer.partition(b"\r\n")[0], answer[:200]
    assert fake_upstream.received == []


async def test_a_body_a_little_over_the_limit_is_dropped_as_it_comes_and_answered_413(api, fake_upstream, jp_serverapp):
    async with peak_growth() as grown, httpx.AsyncClient(trust_env=False, timeout=30) as c:
        response = await c.post(
            v1(api) + "/responses", headers={"Authorization": f"Bearer {scoped_key(jp_serverapp)}"},
            json={"model": "fast", "input": "x" * (3 << 20)},
        )
    assert response.status_code == 413 and "at most 1048576" in response.json()["error"]["message"]
    assert fake_upstream.received == []
    assert grown[0] < 24 << 20
