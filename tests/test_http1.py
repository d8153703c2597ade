"""The lean path's own HTTP/1.1 (providers/http1/): a chunked body decodes the same
however the network cuts it; every part a provider sends is bounded; and a connection is used
again only when its last response ended exactly where its framing said. The hostile providers
here are raw sockets on 127.0.0.1 that write whatever bytes the test gives them."""

from __future__ import annotations

import asyncio
import gzip
import random
from collections.abc import Callable

import httpx
import pytest

from cellmage_server.providers import http1
from cellmage_server.providers.http1 import StreamPool
from cellmage_server.providers.http1.wire import (
    MAX_HEAD_BYTES,
    MAX_LINE_BYTES,
    ChunkedBody,
    WireError,
    parse_head,
    request_head,
)


def _chunked(pieces: list[bytes], rng: random.Random) -> bytes:
    """A chunked body as servers write it: hex sizes in either case, sometimes an extension, then
    the last chunk, sometimes with trailers."""
    out = []
    for piece in pieces:
        size = f"{len(piece):x}"
        size = size.upper() if rng.random() < 0.3 else size
        ext = ";name=value" if rng.random() < 0.2 else ""
        out.append(f"{size}{ext}\r\n".encode() + piece + b"\r\n")
    out.append(b"0\r\n" + (b"X-Trailer: 1\r\n" if rng.random() < 0.3 else b"") + b"\r\n")
    return b"".join(out)


def _decode(raw: bytes, cuts: list[int]) -> tuple[bytes, bool, bytes]:
    body, out, start = ChunkedBody(), [], 0
    for cut in [*cuts, len(raw)]:
        out.append(body.feed(raw[start:cut]))
        start = cut
    return b"".join(out), body.done, body.extra


def test_a_chunked_body_decodes_the_same_however_it_is_cut():
    rng = random.Random(20261203)
    for _ in range(400):
        pieces = [rng.randbytes(rng.randint(1, 300)) for _ in range(rng.randint(0, 6))]
        raw = _chunked(pieces, rng)
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(0, 8))))
        assert _decode(raw, cuts) == (b"".join(pieces), True, b""), raw
    raw = b"5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n"
    assert _decode(raw, list(range(1, len(raw)))) == (b"hello!", True, b"")  # byte by byte


def test_a_chunk_read_whole_decodes_as_one_cut_anywhere():
    # (A paced answer brings one whole chunk per read: that read has its own short way.)
    rng = random.Random(7)
    for _ in range(200):
        pieces = [rng.randbytes(rng.randint(1, 40)) for _ in range(rng.randint(1, 5))]
        raw = _chunked(pieces, rng)
        ends, start = [], 0
        while (line := raw.find(b"\n", start)) >= 0 and raw[start:line].split(b";")[0].strip(b"\r") != b"0":
            start = line + 1 + int(raw[ends[-1] if ends else 0 : line].split(b";")[0].strip(b"\r"), 16) + 2
            ends.append(start)
        assert _decode(raw, ends) == (b"".join(pieces), True, b""), raw
    for odd in (b"5\nhello\r\n0\r\n\r\n", b"5;a=b\r\nhello\r\n0\r\n\r\n", b" 5\r\nhello\r\n0\r\n\r\n"):
        assert _decode(odd, [odd.index(b"0\r\n")]) == (b"hello", True, b"")
    for bad in (b"5\r\nhelloXX", b"+5\r\nhello\r\n", b"5\r\nhello\n\r", b"0x5\r\nhello\r\n"):
        with pytest.raises(WireError):
            ChunkedBody().feed(bad)


def test_bytes_after_the_last_chunk_are_kept_apart():
    assert _decode(b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", [9]) == (b"ok", True, b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize(
    "raw",
    [
        b"zz\r\nhello\r\n",  # not hex
        b"-5\r\nhello\r\n",
        b"\r\n",  # no size
        b"5\r\nhelloXX",  # data not ended by CR LF
        b"1" * 17 + b"\r\n",  # a size past 16 hex digits
        b"5" + b" " * MAX_LINE_BYTES,  # a size line that never ends
        b"0\r\n" + b"X-T: 1\r\n" * (MAX_HEAD_BYTES // 8 + 1),  # trailers that never end
    ],
    ids=["hex", "negative", "empty", "crlf", "huge", "endless-line", "endless-trailers"],
)
def test_a_broken_chunked_body_is_a_wire_error(raw):
    with pytest.raises(WireError):
        ChunkedBody().feed(raw)


def test_the_response_head_and_its_framing():
    head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-A: 1\r\nx-a: 2\r\nTransfer-Encoding: chunked")
    assert head.status == 200 and head.headers.get("content-type") == "text/event-stream"
    assert head.headers["X-A"] == "1, 2" and head.framing() == ("chunked", None) and head.keep_alive
    assert parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12").framing() == ("length", 12)
    assert parse_head(b"HTTP/1.1 200 OK\r\nConnection: close").framing() == ("close", None)
    assert not parse_head(b"HTTP/1.1 200 OK\r\nConnection: close").keep_alive
    assert not parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 1").keep_alive
    assert parse_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive").keep_alive
    assert parse_head(b"HTTP/1.1 204 No Content").framing() == ("none", 0)
    assert parse_head(b"HTTP/1.1 100 Continue").informational
    assert "1, 2" not in repr(head.headers)  # names only
    for bad in (
        b"HTTP/2 200 OK",
        b"ICY 200 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded",
        b"HTTP/1.1 200 OK\r\nno colon",
    ):
        with pytest.raises(WireError):
            parse_head(bad)
    for length in (b"1, 2", b"-1", b"0x10"):
        with pytest.raises(WireError):
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: " + length).framing()


def test_a_header_value_that_could_split_the_request_is_refused_without_its_value():
    assert request_head("POST", "/v1/x", "h:1", {"A": "b"}, 3).startswith(b"POST /v1/x HTTP/1.1\r\nHost: h:1\r\nA: b\r\n")
    with pytest.raises(WireError) as raised:
        request_head("POST", "/", "h", {"Authorization": "Bearer sk-secret\r\nX-Evil: 1"}, 0)
    assert "Authorization" in str(raised.value) and "sk-secret" not in str(raised.value)
    with pytest.raises(WireError):
        request_head("POST", "/", "h", {"Bad Name": "x"}, 0)


# --- a hostile provider on a raw socket ---------------------------------------------------------


class RawProvider:
    """Answers each request (read to the end of its body) with ``answer(n)``: the raw bytes of
    the n-th request's response; counts connections."""

    def __init__(self, answer: Callable[[int], list[bytes]]) -> None:
        self.answer = answer
        self.connections = 0
        self.requests = 0
        self.written = 0
        self.hold = asyncio.Event()  # set: stop holding a connection open at the end of the answer
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> RawProvider:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1/chat/completions"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hold.set()
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                self.requests += 1
                for piece in self.answer(self.requests):
                    if piece == b"<close>":
                        writer.close()
                        return
                    if piece == b"<hold>":
                        await self.hold.wait()
                        continue
                    writer.write(piece)
                    await writer.drain()
                    self.written += len(piece)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


SSE = b"data: {}\n\ndata: [DONE]\n\n"
CHUNKED_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + (
    f"{len(SSE):x}\r\n".encode() + SSE + b"\r\n0\r\n\r\n"
)


async def _body(pool: StreamPool, url: str) -> tuple[int, bytes]:
    async with pool.post(url, b"{}", {"Content-Type": "application/json"}) as response:
        return response.status_code, b"".join([data async for data in response.stream()])


async def test_a_connection_is_kept_when_its_response_ended_well():
    async with RawProvider(lambda n: [CHUNKED_OK]) as provider:
        pool = StreamPool(connect_timeout=5)
        for _ in range(3):
            assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 1 and provider.requests == 3


async def test_bytes_after_a_response_never_reach_the_next_one():
    # A provider (or a proxy before it) writes past the end of its answer: on a kept connection
    # those bytes would be read as the next answer's start. The connection is closed instead.
    smuggled = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 24\r\n\r\ndata: {\"evil\": 1}\n\n!!!!!"
    async with RawProvider(lambda n: [CHUNKED_OK + smuggled] if n == 1 else [CHUNKED_OK]) as provider:
        pool = StreamPool(connect_timeout=5)
        assert await _body(pool, provider.url) == (200, SSE)
        assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 2


async def test_bytes_past_a_content_length_are_not_the_body_and_the_connection_is_not_kept():
    whole = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 24\r\n\r\n" + SSE
    async with RawProvider(lambda n: [whole + b"extra"] if n == 1 else [whole]) as provider:
        pool = StreamPool(connect_timeout=5)
        assert await _body(pool, provider.url) == (200, SSE)
        assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 2


async def test_a_response_that_says_connection_close_does_not_keep_its_connection():
    whole = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 24\r\n\r\n" + SSE
    async with RawProvider(lambda n: [whole]) as provider:  # (it does not close: it said it would)
        pool = StreamPool(connect_timeout=5)
        assert await _body(pool, provider.url) == (200, SSE)
        assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 2


async def test_informational_answers_are_skipped_and_a_body_to_the_connection_end_is_read():
    answer = [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", SSE, b"<close>"]
    async with RawProvider(lambda n: answer) as provider:
        pool = StreamPool(connect_timeout=5)
        assert await _body(pool, provider.url) == (200, SSE)
        assert await _body(pool, provider.url) == (200, SSE)  # the closed one was not kept
        await pool.aclose()
    assert provider.connections == 2


async def test_a_coded_body_is_decoded_and_an_unknown_coding_is_a_clear_error():
    coded = gzip.compress(SSE)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
    answers = {1: [head % (b"gzip", len(coded)) + coded], 2: [head % (b"br", 4) + b"abcd"]}
    async with RawProvider(answers.__getitem__) as provider:
        pool = StreamPool(connect_timeout=5)
        assert await _body(pool, provider.url) == (200, SSE)
        with pytest.raises(httpx.DecodingError, match="'br'"):
            await _body(pool, provider.url)
        await pool.aclose()


async def test_a_coded_read_is_decoded_in_bounded_pieces():
    bomb = gzip.compress(b"a" * (20 << 20))  # 20 MB from about 20 KB
    answer = [b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb]
    async with RawProvider(lambda n: answer) as provider:
        pool = StreamPool(connect_timeout=5)
        async with pool.post(provider.url, b"{}", {}) as response:
            sizes = [len(data) async for data in response.stream()]
        await pool.aclose()
    assert sum(sizes) == 20 << 20 and max(sizes) <= http1.DECODED_PIECE


@pytest.mark.parametrize(
    "answer,message",
    [
        ([b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * (MAX_HEAD_BYTES + 10), b"<hold>"], "head has no end"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", b"<close>"], "middle of a chunked body"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel", b"<close>"], "before the body's end"),
        ([b"<close>"], "without answering"),
        ([b"SSH-2.0-OpenSSH\r\n\r\n"], "status line"),
    ],
    ids=["endless-head", "cut-chunked", "cut-length", "no-answer", "not-http"],
)
async def test_a_broken_answer_is_a_protocol_error(answer, message):
    async with RawProvider(lambda n: answer) as provider:
        pool = StreamPool(connect_timeout=5)
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await _body(pool, provider.url)
        await pool.aclose()


async def test_an_error_answer_is_read_only_to_its_bound():
    piece = b"x" * 65536
    answer = [b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % (len(piece) * 640), *[piece] * 640]  # 40 MB
    async with RawProvider(lambda n: answer) as provider:
        pool = StreamPool(connect_timeout=5)
        async with pool.post(provider.url, b"{}", {}) as response:
            assert response.status_code == 500
            assert len(await response.aread()) == http1.ERROR_BODY_BYTES
            await asyncio.sleep(0.3)
            assert provider.written < 16 << 20, provider.written  # the rest was never read
        await pool.aclose()


async def test_a_reader_that_stops_reading_stops_the_provider():
    # Back-pressure: what is read ahead of a reader is bounded (HIGH_WATER, then the sockets'
    # own buffers), not the whole answer.
    piece = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
    answer = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", *[piece] * 400]  # 26 MB
    async with RawProvider(lambda n: answer) as provider:
        pool = StreamPool(connect_timeout=5)
        async with pool.post(provider.url, b"{}", {}) as response:
            body = response.stream()
            await body.__anext__()
            await asyncio.sleep(0.5)  # the provider writes as fast as the sockets take it
            assert provider.written < http1.HIGH_WATER + (8 << 20), provider.written
            await body.aclose()
        await pool.aclose()


async def test_an_idle_connection_the_provider_closed_or_that_waited_too_long_is_not_used():
    async with RawProvider(lambda n: [CHUNKED_OK, b"<close>"] if n == 1 else [CHUNKED_OK]) as provider:
        pool = StreamPool(connect_timeout=5, idle_seconds=0.2)
        assert await _body(pool, provider.url) == (200, SSE)  # then the provider closes it
        await asyncio.sleep(0.05)
        assert await _body(pool, provider.url) == (200, SSE)  # a new connection
        await asyncio.sleep(0.3)  # idle past idle_seconds
        assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 3


async def test_connecting_nowhere_is_a_connect_error():
    pool = StreamPool(connect_timeout=5)
    async with RawProvider(lambda n: []) as provider:
        url = provider.url
    with pytest.raises(httpx.ConnectError):
        await _body(pool, url)  # the server is gone: refused
    with pytest.raises(httpx.UnsupportedProtocol):
        await _body(pool, "ftp://127.0.0.1/v1")
    await pool.aclose()
