"""A provider's Server-Sent Events, read as they come off the connection: the data of each event.

httpx-sse reads a body through httpx's byte decoder, its text decoder and a line splitter: three
more async generators and a decode per network read, and on a paced answer every chunk is its own
read (about 6% of the server's CPU at 200 paced streams, in a profile). Here the request
asks for no content coding and the body is read as it comes (a provider that codes it anyway is
decoded by http1/), split into events on blank lines with the spec's line endings (CR LF, LF or CR), and only
each event's ``data`` is kept: other fields and comments are ignored, an event with no data is not
dispatched, and one left unfinished when the stream ends is dropped, as the spec says.

One event is bounded: a provider whose event grows past ``max_event_bytes`` without ending is
stopped with :class:`~cellmage_server.errors.AnswerTooLong`, so its memory cannot grow without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from ..errors import AnswerTooLong

#: Sent with a stream request: a coded body would be decoded again on every read.
NO_CODING = {"Accept-Encoding": "identity"}
DONE = "[DONE]"
#: The most bytes, and time, spent reading after ``[DONE]`` to the body's end (a provider sends
#: only its end there, at once).
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 0.5
#: What one event may have beyond the answer's own limit (the JSON around a chunk's text).
EVENT_SLACK = 64 * 1024

_BOM = b"\xef\xbb\xbf"


def event_limit(max_answer_bytes: int) -> int:
    """The most bytes one event of an answer's stream may have."""
    return max_answer_bytes + EVENT_SLACK


class DataEvents:
    """Feed it a stream's bytes as they come; it gives the data of each event that ended."""

    def __init__(self, max_event_bytes: int, limit_setting: int | None = None) -> None:
        self._buf = bytearray()
        self._max = max_event_bytes
        self._setting = limit_setting if limit_setting is not None else max_event_bytes
        self._started = False
        self._cr = False  # the last read ended with a CR: an LF first in the next is its CR LF

    def feed(self, chunk: bytes) -> list[str]:
        if (
            not self._buf
            and chunk.startswith(b"data: ")
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk.endswith(b"\n\n")
            and self._started
            and not self._cr
            and b"\r" not in chunk
        ):  # the common read on a paced answer: one whole event of one data line
            return [chunk[6:-2].decode("utf-8", "replace")]
        if not self._started:
            self._started = True
            chunk = chunk.removeprefix(_BOM)  # (a stream may begin with one)
        if self._cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._cr = chunk.endswith(b"\r")
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf
        ends = b"\n\n" in chunk or (buf.endswith(b"\n") and chunk.startswith(b"\n"))
        if not ends:  # one growing buffer: no per-read object kept
            if len(buf) + len(chunk) > self._max:
                raise AnswerTooLong(self._setting)
            buf += chunk
            return []
        *ended, rest = (bytes(buf) + chunk if buf else chunk).split(b"\n\n")
        if len(rest) > self._max:
            raise AnswerTooLong(self._setting)
        self._buf = bytearray(rest)
        out = []
        for event in ended:
            if not event.strip(b"\n"):
                continue  # blank lines only
            data = _data(event)
            if data is not None:
                out.append(data)
        return out


def _data(event: bytes) -> str | None:
    """The event's data lines, joined by newlines; None when it has none."""
    if event.startswith(b"data: ") and b"\n" not in event:  # the common case: one data line
        return event[6:].decode("utf-8", "replace")
    lines = []
    for line in event.split(b"\n"):
        name, _, value = line.partition(b":")
        if name != b"data":
            continue  # another field, or a comment (a line that starts with a colon)
        lines.append(value[1:] if value.startswith(b" ") else value)
    if not lines:
        return None
    return b"\n".join(lines).decode("utf-8", "replace")


async def event_data(body: AsyncIterator[bytes], max_event_bytes: int, limit_setting: int | None = None) -> AsyncIterator[str]:
    """The data of each event of a response's ``body`` (its bytes as they come, de-chunked and
    decoded: ``Response.stream()`` of http1/), up to and with ``[DONE]``.

    After ``[DONE]`` the body's end is read (as the openai SDK reads a stream to its end; at most
    :data:`DRAIN_BYTES` and :data:`DRAIN_SECONDS`), so the connection goes back to the pool for
    the next answer instead of being closed: a new connection to the provider costs every answer
    time."""
    events = DataEvents(max_event_bytes, limit_setting)
    async for chunk in body:
        for data in events.feed(chunk):
            yield data
            if data == DONE:
                await _drain(body)
                return


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read the body's end after ``[DONE]``; give up (the connection is then closed) past
    :data:`DRAIN_BYTES` or :data:`DRAIN_SECONDS`, so the answer's end never waits on a provider
    that holds its stream open."""

    async def read_rest() -> None:
        drained = 0
        async for rest in body:
            drained += len(rest)
            if drained > DRAIN_BYTES:
                return

    try:
        await asyncio.wait_for(read_rest(), DRAIN_SECONDS)  # (asyncio.timeout is Python 3.11's)
    except (asyncio.TimeoutError, httpx.HTTPError):
        return  # the connection is closed, not reused; the answer has ended already
