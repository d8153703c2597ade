"""Hostile providers and odd inputs against the lean path's own HTTP/1.1 client (providers/http1/)
and the providers that use it. Raw sockets on 127.0.0.1 only; every server is stopped.

The tests at the end each showed a bug of the first version, found by an attack review (a high
descriptor, a bad Content-Length or status, a password in api_base, an unencoded path, endless
1xx heads, a 17-digit chunk size, a coded error body); each failed before its fix."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import resource
import socket
import time
import warnings
from collections.abc import Awaitable, Callable

import httpx
import pytest
from pydantic import SecretStr

from cellmage_server.errors import UpstreamError
from cellmage_server.providers import ProviderCall
from cellmage_server.providers.http1 import StreamPool
from cellmage_server.providers.http1.wire import MAX_LINE_BYTES, ChunkedBody, WireError
from cellmage_server.providers.openai_compat import OpenAICompatProvider

from .test_http1 import CHUNKED_OK, SSE, RawProvider, _body

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Raw:
    """A server on 127.0.0.1 whose every connection is ``handler(reader, writer)``; it records
    what each connection received and whether it saw the client's end."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed_by_client = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> Raw:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.url = self.base + "/chat/completions"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def call(api_base: str, key: str | None = None) -> ProviderCall:
    return ProviderCall(
        model="openai/fake",
        api_base=api_base,
        api_key=SecretStr(key) if key is not None else None,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=10,
    )


async def answer(provider: OpenAICompatProvider, api_base: str, key: str | None = None) -> list:
    return [event async for event in provider.stream(call(api_base, key))]


def sse_chunked(*events: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
TEXT = b'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'


# --- request side: nothing from configuration splits or leaks -----------------------------------


async def test_an_api_key_with_a_line_break_is_refused_before_connecting_and_never_echoed():
    seen: list[bytes] = []

    async def handler(reader, writer):
        seen.append(await reader.read(65536))

    async with Raw(handler) as raw:
        provider = OpenAICompatProvider(connect_timeout=2)
        try:
            for evil in ("sk-live-abcdef123456\r\nX-Evil: 1", "sk-live-abcdef123456\nX: 1", "sk-live-abc\0def123456"):
                with pytest.raises(UpstreamError) as raised:
                    await answer(provider, raw.base, evil)
                assert "abcdef" not in str(raised.value) and "Authorization" in str(raised.value)
        finally:
            await provider.aclose()
    assert raw.connections == 0 and seen == []  # refused before any byte went out


async def test_the_host_header_never_carries_userinfo():
    got: list[bytes] = []

    async def handler(reader, writer):
        got.append(await read_request(reader))
        writer.write(CHUNKED_OK)
        await writer.drain()

    async with Raw(handler) as raw:
        pool = StreamPool(connect_timeout=2)
        url = f"http://user:hunter2pass@127.0.0.1:{raw.port}/v1/chat/completions"
        assert await _body(pool, url) == (200, SSE)
        await pool.aclose()
    head = got[0].split(b"\r\n\r\n")[0]
    assert b"\r\nHost: 127.0.0.1:%d\r\n" % raw.port in head
    assert b"hunter2pass" not in got[0] and b"user@" not in got[0]


# --- response framing oddities ------------------------------------------------------------------


async def test_transfer_encoding_wins_over_content_length_and_the_connection_is_not_kept():
    body = sse_chunked(SSE) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with RawProvider(lambda n: [head + body]) as provider:
        pool = StreamPool(connect_timeout=2)
        assert await _body(pool, provider.url) == (200, SSE)
        assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 2  # framing two parties may read differently: not used again


async def test_a_transfer_coding_before_chunked_is_a_protocol_error():
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    async with RawProvider(lambda n: [head + sse_chunked(SSE) + b"0\r\n\r\n"]) as provider:
        pool = StreamPool(connect_timeout=2)
        with pytest.raises(httpx.RemoteProtocolError, match="gzip, chunked"):
            await _body(pool, provider.url)
        await pool.aclose()


async def test_chunk_sizes_with_leading_zeros_and_16_digits_decode_and_a_huge_size_then_close_is_a_protocol_error():
    assert ChunkedBody().feed(b"0000000000000005\r\nhello\r\n0\r\n\r\n") == b"hello"
    huge = [SSE_HEAD + b"ffffffffffffffff\r\nabc", b"<close>"]
    async with RawProvider(lambda n: huge) as provider:
        pool = StreamPool(connect_timeout=2)
        with pytest.raises(httpx.RemoteProtocolError, match="middle of a chunked body"):
            await _body(pool, provider.url)
        await pool.aclose()


async def test_a_chunk_extension_past_the_line_limit_is_a_protocol_error():
    line = b"5;" + b"x" * (MAX_LINE_BYTES + 10)
    async with RawProvider(lambda n: [SSE_HEAD + line, b"<hold>"]) as provider:
        pool = StreamPool(connect_timeout=2)
        with pytest.raises(httpx.RemoteProtocolError, match="size line"):
            await _body(pool, provider.url)
        await pool.aclose()


async def test_a_trailer_after_the_last_chunk_is_skipped_and_the_connection_kept():
    whole = SSE_HEAD + sse_chunked(SSE) + b"0\r\nX-Usage: 1\r\nX-More: 2\r\n\r\n"
    async with RawProvider(lambda n: [whole]) as provider:
        pool = StreamPool(connect_timeout=2)
        for _ in range(2):
            assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 1


async def test_an_http10_answer_is_read_to_its_close_and_never_kept():
    whole = [b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + SSE, b"<close>"]
    async with RawProvider(lambda n: whole) as provider:
        pool = StreamPool(connect_timeout=2)
        for _ in range(2):
            assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 2


async def test_a_204_with_a_body_does_not_keep_its_connection_for_the_next_answer():
    answers = {1: [b"HTTP/1.1 204 No Content\r\n\r\n" + b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"], 2: [CHUNKED_OK]}
    async with RawProvider(answers.__getitem__) as provider:
        pool = StreamPool(connect_timeout=2)
        assert await _body(pool, provider.url) == (204, b"")
        assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()
    assert provider.connections == 2


async def test_a_head_sent_byte_by_byte_is_read():
    pieces = [bytes([b]) for b in CHUNKED_OK]
    async with RawProvider(lambda n: pieces) as provider:
        pool = StreamPool(connect_timeout=2)
        assert await _body(pool, provider.url) == (200, SSE)
        await pool.aclose()


async def test_bytes_a_provider_writes_to_an_idle_connection_make_it_unusable():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(CHUNKED_OK)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")  # unsolicited
        await writer.drain()
        while await reader.read(65536):
            pass

    async def fresh(reader, writer):
        await read_request(reader)
        writer.write(CHUNKED_OK)
        await writer.drain()
        await reader.read(1)

    handlers = [handler, fresh]

    async def serve(reader, writer):
        await handlers.pop(0)(reader, writer)

    async with Raw(serve) as raw:
        pool = StreamPool(connect_timeout=2)
        assert await _body(pool, raw.url) == (200, SSE)
        await asyncio.sleep(0.2)
        assert await _body(pool, raw.url) == (200, SSE)  # not "evil"
        await pool.aclose()
    assert raw.connections == 2


async def test_a_decompression_bomb_in_a_chunked_deflate_body_is_decoded_in_bounded_pieces():
    import zlib

    bomb = zlib.compress(b"\0" * (16 << 20), 9)
    answer = [b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n" + sse_chunked(bomb) + b"0\r\n\r\n"]
    async with RawProvider(lambda n: answer) as provider:
        pool = StreamPool(connect_timeout=2)
        async with pool.post(provider.url, b"{}", {}) as response:
            sizes = [len(data) async for data in response.stream()]
        await pool.aclose()
    assert sum(sizes) == 16 << 20 and max(sizes) <= 64 * 1024


# --- cancellation, closing, TLS -----------------------------------------------------------------


@pytest.mark.parametrize(
    "pieces",
    [[b"<hold>"], [b"HTTP/1.1 200 OK\r\nContent-", b"<hold>"], [SSE_HEAD + b"5\r\nhe", b"<hold>"], [SSE_HEAD, b"<hold>"]],
    ids=["before-head", "mid-head", "mid-chunk", "after-head"],
)
async def test_a_cancelled_stream_closes_its_connection_at_once_and_leaks_nothing(pieces):
    closed = asyncio.Event()
    written = asyncio.Event()

    async def handler(reader, writer):
        await read_request(reader)
        for piece in pieces:
            if piece == b"<hold>":
                written.set()
                await reader.read(1)  # b"": the client closed
                closed.set()
                return
            writer.write(piece)
            await writer.drain()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with Raw(handler) as raw:
            pool = StreamPool(connect_timeout=2)

            async def read() -> None:
                async with pool.post(raw.url, b"{}", {}) as response:
                    async for _ in response.stream():
                        pass

            task = asyncio.create_task(read())
            await asyncio.wait_for(written.wait(), 2)
            await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(closed.wait(), 1)  # the provider saw the close at once
            assert pool.connections() == []
            await pool.aclose()
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, (ResourceWarning, RuntimeWarning))], caught


async def test_a_pool_closed_while_a_stream_runs_lets_it_finish_and_then_closes_its_connection():
    async with RawProvider(lambda n: [SSE_HEAD + sse_chunked(b"data: {}\n\n"), b"<hold>", sse_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"]) as provider:
        pool = StreamPool(connect_timeout=2)
        async with pool.post(provider.url, b"{}", {}) as response:
            body = response.stream()
            assert await body.__anext__() == b"data: {}\n\n"
            await pool.aclose()
            provider.hold.set()
            assert b"".join([d async for d in body]) == b"data: [DONE]\n\n"
        assert pool.connections() == []  # ended well, but the pool is closed: not kept


async def test_a_tls_server_that_closes_mid_handshake_or_never_answers_is_a_connect_error():
    async def abort(reader, writer):
        await reader.read(10)
        writer.transport.abort()

    async def silent(reader, writer):
        await reader.read(1 << 16)
        await asyncio.sleep(5)

    async with Raw(abort) as raw:
        pool = StreamPool(connect_timeout=2)
        with pytest.raises(httpx.ConnectError):
            await _body(pool, f"https://127.0.0.1:{raw.port}/v1")
        await pool.aclose()
    async with Raw(silent) as raw:
        pool = StreamPool(connect_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout):
            await _body(pool, f"https://127.0.0.1:{raw.port}/v1")
        assert time.monotonic() - started < 1.5
        await pool.aclose()


# --- the provider's view: clear errors, the drain after [DONE] ----------------------------------


async def test_a_provider_that_holds_its_stream_open_after_done_ends_the_answer_within_the_drain_bound():
    answer_ = [SSE_HEAD + sse_chunked(TEXT, b"data: [DONE]\n\n"), b"<hold>"]
    async with RawProvider(lambda n: answer_) as provider:
        lean = OpenAICompatProvider(connect_timeout=2)
        try:
            started = time.monotonic()
            events = await answer(lean, provider.url.removesuffix("/chat/completions"))
            assert time.monotonic() - started < 1.5
            assert events[0] == "hi" and events[-1].reason == "stop"
            assert lean.streams.connections() == []  # not kept: its end never came
        finally:
            await lean.aclose()


async def test_a_provider_that_floods_after_done_is_not_read_past_the_drain_bound():
    flood = sse_chunked(b": " + b"x" * 65536 + b"\n\n")
    answer_ = [SSE_HEAD + sse_chunked(TEXT, b"data: [DONE]\n\n"), *[flood] * 200]  # 13 MB after [DONE]
    async with RawProvider(lambda n: answer_) as provider:
        lean = OpenAICompatProvider(connect_timeout=2)
        try:
            events = await answer(lean, provider.url.removesuffix("/chat/completions"))
            assert events[-1].reason == "stop" and lean.streams.connections() == []
            await asyncio.sleep(0.2)
            assert provider.written < 8 << 20, provider.written
        finally:
            await lean.aclose()


async def test_an_error_answer_that_echoes_the_key_is_redacted():
    key = "sk-proj-Zq81mNvT55aa77bb99cc"
    body = json.dumps({"error": {"message": f"bad key {key} sent", "type": "invalid_request_error"}}).encode()
    answer_ = [b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body]
    async with RawProvider(lambda n: answer_) as provider:
        lean = OpenAICompatProvider(connect_timeout=2, secrets=[key])
        try:
            with pytest.raises(UpstreamError) as raised:
                await answer(lean, provider.url.removesuffix("/chat/completions"), key)
        finally:
            await lean.aclose()
    assert "Zq81mNvT" not in str(raised.value) and "bad key" in str(raised.value)


# --- found by the attack review, and fixed -----------------------------------------------------


@pytest.mark.parametrize("length", [b"abc", b"1, 2"])
async def test_a_bad_content_length_is_a_protocol_error_and_a_clear_upstream_error(length):
    answer_ = [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: " + length + b"\r\n\r\n" + SSE]
    async with RawProvider(lambda n: answer_) as provider:
        lean = OpenAICompatProvider(connect_timeout=2)
        try:
            with pytest.raises(UpstreamError, match="connection broke"):
                await answer(lean, provider.url.removesuffix("/chat/completions"))
        finally:
            await lean.aclose()


@pytest.mark.parametrize("head", [b"HTTP/1.1 2\xb20 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n"], ids=["status", "length"])
async def test_superscript_digits_are_a_protocol_error(head):
    async with RawProvider(lambda n: [head, b"<close>"]) as provider:
        pool = StreamPool(connect_timeout=2)
        try:
            with pytest.raises(httpx.RemoteProtocolError):
                await _body(pool, provider.url)
        finally:
            await pool.aclose()


async def test_a_kept_connection_on_a_high_file_descriptor_is_reused():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[socket.socket] = []
    try:
        if soft < 1300:
            pytest.skip("cannot open 1100 descriptors here (the bug needs fd >= 1024)")
        fillers = [socket.socket() for _ in range(1100)]
        async with RawProvider(lambda n: [CHUNKED_OK]) as provider:
            pool = StreamPool(connect_timeout=2)
            try:
                assert await _body(pool, provider.url) == (200, SSE)
                assert pool.connections()[0].wire.transport.get_extra_info("socket").fileno() >= 1024
                assert await _body(pool, provider.url) == (200, SSE)
            finally:
                await pool.aclose()
        assert provider.connections == 1
    finally:
        for s in fillers:
            s.close()


async def test_a_password_in_api_base_never_reaches_an_error_message():
    async with Raw(lambda r, w: asyncio.sleep(0)) as raw:
        port = raw.port
    lean = OpenAICompatProvider(connect_timeout=2)  # the server is gone: refused
    try:
        with pytest.raises(UpstreamError) as raised:
            await answer(lean, f"http://user:hunter2pass@127.0.0.1:{port}/v1")
    finally:
        await lean.aclose()
    assert "hunter2pass" not in str(raised.value)


async def test_an_api_base_path_with_a_space_or_non_ascii_is_percent_encoded():
    got: list[bytes] = []

    async def handler(reader, writer):
        got.append(await read_request(reader))
        writer.write(CHUNKED_OK)
        await writer.drain()

    async with Raw(handler) as raw:
        pool = StreamPool(connect_timeout=2)
        try:
            assert await _body(pool, f"http://127.0.0.1:{raw.port}/my models/v1/chat/completions") == (200, SSE)
            assert got[0].startswith(b"POST /my%20models/v1/chat/completions HTTP/1.1\r\n")
            assert await _body(pool, f"http://127.0.0.1:{raw.port}/\u6a21\u578b/v1/chat/completions") == (200, SSE)
        finally:
            await pool.aclose()


async def test_an_endless_run_of_informational_heads_is_a_protocol_error():
    flood = [b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" * 1000] * 20  # 20,000 heads, 800 KB
    async with RawProvider(lambda n: [*flood, CHUNKED_OK]) as provider:
        pool = StreamPool(connect_timeout=2)
        try:
            with pytest.raises(httpx.RemoteProtocolError):
                await _body(pool, provider.url)
        finally:
            await pool.aclose()


def test_a_size_past_16_hex_digits_is_refused_however_it_is_cut():
    raw = b"000000000000000005\r\nhello\r\n"  # 18 digits
    cut = ChunkedBody()
    cut.feed(raw[:5])
    with pytest.raises(WireError):
        cut.feed(raw[5:])  # cut: the slow path refuses it
    with pytest.raises(WireError):
        ChunkedBody().feed(raw)  # one read: fast path


async def test_a_gzip_coded_error_answer_is_decoded_for_its_message():
    coded = gzip.compress(json.dumps({"error": {"message": "model overloaded, retry"}}).encode())
    answer_ = [b"HTTP/1.1 503 Busy\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(coded) + coded]
    async with RawProvider(lambda n: answer_) as provider:
        lean = OpenAICompatProvider(connect_timeout=2)
        try:
            with pytest.raises(UpstreamError) as raised:
                await answer(lean, provider.url.removesuffix("/chat/completions"))
        finally:
            await lean.aclose()
    assert "model overloaded" in str(raised.value)
