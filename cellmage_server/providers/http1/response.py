"""A provider's response: status and headers at once, the body as it comes, de-chunked and, if the
provider coded it though asked not to, decoded in bounded pieces; an error answer's body is read
to :data:`ERROR_BODY_BYTES` only. ``reusable`` says whether the connection may carry another
request: only when the body ended exactly where its framing said, and the provider keeps it."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .connection import Connection, Wire
from .wire import MAX_HEAD_BYTES, ChunkedBody, Head, Headers, WireError, parse_head

ERROR_BODY_BYTES = 64 * 1024  # what is kept of an error answer's body
DECODED_PIECE = 64 * 1024  # the most bytes one coded read is decoded into at once
MAX_INFORMATIONAL = 16  # 1xx heads (100 Continue, 103 Early Hints) before the answer's own


class Response:
    """A provider's answer: status and headers at once, the body as it comes (:meth:`body`)."""

    def __init__(self, connection: Connection, head: Head) -> None:
        self.status_code = head.status
        self.headers: Headers = head.headers
        self._connection = connection
        self._head = head
        self._started = False
        self.ended = False  # the body ended where its framing said
        self.content = b""

    @property
    def reusable(self) -> bool:
        """Whether the connection can carry another request after this response."""
        return self.ended and self._head.keep_alive and not self._head.ambiguous

    async def body(self) -> AsyncIterator[bytes]:
        """The body's bytes, de-chunked, as they come; at its end ``ended`` is True. Read once."""
        if self._started:
            raise RuntimeError("a response body is read once")
        self._started = True
        wire = self._connection.wire
        how, length = self._head.framing()
        if how == "none":
            self.ended = True
            return
        if how == "length":
            assert length is not None
            while length:
                data = await wire.some()
                if not data:
                    raise httpx.RemoteProtocolError("the provider closed the connection before the body's end")
                if len(data) > length:
                    wire.unread(data[length:])  # bytes past the end: the connection is not kept
                    data = data[:length]
                length -= len(data)
                yield data
            self.ended = not wire.buffer
            return
        if how == "close":
            while data := await wire.some():
                yield data
            return  # never kept: the connection's end was the body's
        chunks = ChunkedBody()
        while not chunks.done:
            data = await wire.some()
            if not data:
                raise httpx.RemoteProtocolError("the provider closed the connection in the middle of a chunked body")
            try:
                out = chunks.feed(data)
            except WireError as e:
                raise httpx.RemoteProtocolError(str(e)) from None
            if out:
                yield out
        self.ended = not chunks.extra

    def stream(self) -> AsyncIterator[bytes]:
        """The body as it comes, decoded if the provider coded it though it was asked not to
        (gzip or deflate; each read's output bounded, so a small coded read cannot become a huge
        one at once)."""
        coding = (self.headers.get("content-encoding") or "").strip().lower()
        if coding in ("", "identity"):
            return self.body()
        if coding not in _CODINGS:
            raise httpx.DecodingError(f"the provider coded its answer as {coding!r}, which this server does not read")
        return _decoded(self.body(), _CODINGS[coding])

    async def aread(self) -> bytes:
        """The body (an error answer's), up to :data:`ERROR_BODY_BYTES`; the rest is not read."""
        kept = bytearray()
        try:
            body = self.stream()  # decoded, if coded: the provider's message is in it
        except httpx.DecodingError:
            body = self.body()
        try:
            async for data in body:
                kept += data[: ERROR_BODY_BYTES - len(kept)]
                if len(kept) >= ERROR_BODY_BYTES:
                    break
        finally:
            await body.aclose()
        self.content = bytes(kept)
        return self.content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def _decoded(body: AsyncIterator[bytes], wbits: int) -> AsyncIterator[bytes]:
    decoder = zlib.decompressobj(wbits)
    try:
        async for data in body:
            while data:
                try:
                    out = decoder.decompress(data, DECODED_PIECE)
                except zlib.error as e:
                    raise httpx.DecodingError(f"the provider's coded answer is broken ({e})") from None
                data = decoder.unconsumed_tail
                if out:
                    yield out
    finally:
        await body.aclose()  # type: ignore[attr-defined]


async def read_head(wire: Wire) -> Head:
    """The response's head (past at most :data:`MAX_INFORMATIONAL` 1xx heads), its bytes after it
    left in the buffer for the body."""
    for _ in range(MAX_INFORMATIONAL + 1):
        raw = bytearray()
        while True:
            data = await wire.some()
            if not data:
                raise httpx.RemoteProtocolError("the provider closed the connection without answering")
            start = max(0, len(raw) - 3)
            raw += data
            end = raw.find(b"\r\n\r\n", start)
            cut = end + 4
            if end < 0:
                end = raw.find(b"\n\n", max(0, start - 1))  # (bare LF line ends, which some servers send)
                cut = end + 2
            if end >= 0:
                wire.unread(bytes(raw[cut:]))
                break
            if len(raw) > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("the provider's response head has no end")
        try:
            head = parse_head(bytes(raw[:end]))
        except WireError as e:
            raise httpx.RemoteProtocolError(str(e)) from None
        if not head.informational:
            return head
    raise httpx.RemoteProtocolError(f"the provider sent more than {MAX_INFORMATIONAL} informational (1xx) answers")

