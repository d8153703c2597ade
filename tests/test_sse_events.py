"""The lean path reads a provider's Server-Sent Events itself (providers/sse.py): the same events
as the spec and httpx-sse give, however the body is split over reads, with every line ending the
spec allows; and one event is bounded, so a provider that never ends one is stopped at
``limits.max_answer_bytes`` (+ 64 KiB), on the chat endpoint and on ``cellmage/v1``."""

from __future__ import annotations

import json
import random
import tracemalloc

import httpx
import pytest
from httpx_sse import EventSource

from cellmage_server.errors import AnswerTooLong
from cellmage_server.providers.sse import EVENT_SLACK, DataEvents

from .conftest import toml_with
from .fake_upstream import FakeUpstream, Script
from .openai_support import v1_stream

LIMIT = 64 * 1024


def _fed(body: bytes, cuts: list[int], limit: int = 1 << 20) -> list[str]:
    events, out, start = DataEvents(limit), [], 0
    for cut in [*cuts, len(body)]:
        out += events.feed(body[start:cut])
        start = cut
    return out


def _httpx_sse(body: bytes) -> list[str]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return [sse.data for sse in EventSource(response).iter_sse()]


def _random_stream(rng: random.Random) -> bytes:
    """Events as providers and proxies write them: data lines (one or several, with and without the
    space), comments, other fields, blank lines between, in one of the three line endings."""
    end = rng.choice([b"\n", b"\r\n", b"\r"])
    out = []
    for _ in range(rng.randint(1, 8)):
        lines = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            if kind < 0.15:
                lines.append(b": keep-alive")
            elif kind < 0.25:
                lines.append(rng.choice([b"event: chunk", b"id: 7", b"retry: 100"]))
            value = json.dumps({"t": "é" * rng.randint(0, 3) + " x" * rng.randint(0, 5)}).encode()
            lines.append((b"data: " if rng.random() < 0.8 else b"data:") + value)
        out.append(end.join(lines) + end + end)
    return b"".join(out)


def test_the_events_are_httpx_sses_however_the_body_is_cut():
    rng = random.Random(20261203)
    for _ in range(300):
        body = _random_stream(rng)
        cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(0, 6))))
        assert _fed(body, cuts) == _httpx_sse(body), body
    # and fed byte by byte
    body = b"data: one\r\n\r\ndata: two\r\rdata:three\ndata: 3b\n\n: c\n\n"
    assert _fed(body, list(range(1, len(body)))) == _httpx_sse(body) == ["one", "two", "three\n3b"]


def test_events_read_one_per_read_are_httpx_sses():
    # (A paced answer brings one whole event per read: that read has its own short way.)
    rng = random.Random(11)
    for _ in range(300):
        body = _random_stream(rng)
        cuts = [i + 2 for i in range(len(body) - 1) if body[i : i + 2] in (b"\n\n", b"\r\r")]
        cuts += [i + 4 for i in range(len(body) - 3) if body[i : i + 4] == b"\r\n\r\n"]
        assert _fed(body, sorted(set(c for c in cuts if c < len(body)))) == _httpx_sse(body), body
    assert _fed(b"data: a\r\n\r\n", [7, 8]) == ["a"]  # a CR LF cut after its CR
    assert _fed(b"data: a\r", []) + _fed(b"data: a\r\ndata: b\n\n", [8]) == ["a\nb"]


def test_what_the_spec_says_of_odd_events():
    assert _fed(b"\xef\xbb\xbfdata: x\n\n", []) == ["x"]  # a BOM first
    assert _fed(b"event: ping\n\n: hi\n\n", []) == []  # no data: nothing dispatched
    assert _fed(b"data\n\ndata:  two spaces\n\n", []) == ["", " two spaces"]
    assert _fed(b"database: no\ndata: yes\n\n", []) == ["yes"]  # the field is the whole name
    assert _fed(b"data: done\n\ndata: never ended", []) == ["done"]  # unfinished at the end: dropped
    assert _fed(b"data: \xff\xfe ok\n\n", []) == ["\ufffd\ufffd ok"]  # not UTF-8: replaced, as httpx does


def test_an_event_that_never_ends_is_stopped_at_its_bound():
    events = DataEvents(10_000, limit_setting=9_000)
    events.feed(b"data: {")
    with pytest.raises(AnswerTooLong) as raised:
        for _ in range(100):
            events.feed(b"a" * 1000)  # no line end: the event goes on
    assert "9000 bytes" in str(raised.value)
    # lines that end, in an event that does not
    events = DataEvents(10_000)
    with pytest.raises(AnswerTooLong):
        for _ in range(100):
            events.feed(b"data: " + b"b" * 994 + b"\n")
    # many events, each under the bound, pass however many there are
    events = DataEvents(10_000)
    assert sum(len(events.feed(b"data: " + b"c" * 5000 + b"\n\n")) for _ in range(100)) == 100


def test_an_event_read_a_byte_at_a_time_holds_about_its_own_size():
    # One growing buffer, not an object per read (a provider that writes one byte per segment)
    events = DataEvents(200_000)
    tracemalloc.start()
    try:
        events.feed(b"data: ")
        for _ in range(100_000):
            events.feed(b"x")
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 3 * 100_000, held
    assert events.feed(b"\n\n") == ["x" * 100_000]


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml_with(fake_upstream, limits={"max_answer_bytes": LIMIT})


# 4 MB of one event that never ends (1,000 bytes every 2 ms): 60 times the bound
UNENDED = Script(chunks=["before "], unended=4_000_000)


async def _stopped_early(fake_upstream: FakeUpstream) -> int:
    upstream = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=20)
    return upstream.sent_bytes


async def test_a_provider_event_that_never_ends_stops_the_answer_with_too_long(api, fake_upstream):
    fake_upstream.script(UNENDED)

    result = await api.stream({"prompt": "x", "conversation": "sse.ipynb", "cell_id": "c1"})

    assert result.names()[-2:] == ["error", "done"]
    error = result.one("error")
    assert error["code"] == "too_long" and "limits.max_answer_bytes" in error["message"]
    assert result.text() == "before "  # the text so far is kept
    # The server stopped reading near the bound (the kernel's socket buffers hold some more)
    assert await _stopped_early(fake_upstream) < 4 * (LIMIT + EVENT_SLACK)


async def test_a_v1_stream_whose_provider_event_never_ends_ends_with_too_long(api, fake_upstream, jp_serverapp):
    fake_upstream.script(UNENDED)
    frames = await v1_stream(api, jp_serverapp)
    error = json.loads(frames[-1])["error"]
    assert error["code"] == "too_long" and "limits.max_answer_bytes" in error["message"]
    assert await _stopped_early(fake_upstream) < 4 * (LIMIT + EVENT_SLACK)


async def test_the_stream_request_asks_for_no_content_coding(api, fake_upstream):
    fake_upstream.script(Script())
    await api.stream({"prompt": "x"})
    assert fake_upstream.received[-1].headers.get("Accept-Encoding") == "identity"


async def test_answers_one_after_the_other_reuse_the_providers_connection(api, fake_upstream, jp_serverapp):
    # After [DONE] the body's end is read, so the connection goes back to the pool: a new
    # connection to the provider would cost every answer its set-up.
    for _ in range(3):
        fake_upstream.script(Script())
        assert (await api.stream({"prompt": "x"})).names()[-1] == "done"
    fake_upstream.script(Script())
    assert (await v1_stream(api, jp_serverapp))[-1] == "[DONE]"
    assert len({r.peer for r in fake_upstream.received}) == 1, [r.peer for r in fake_upstream.received]


async def test_a_provider_that_holds_its_stream_open_after_done_does_not_hold_the_answer(api, fake_upstream):
    # The body's end is read after [DONE] for a short while only: past it the server closes the
    # connection, and the answer has ended meanwhile.
    fake_upstream.script(Script(chunks=["all ", "here"], hold_after_done=30))

    result = await api.stream({"prompt": "x"})

    assert result.names()[-1] == "done" and result.one("done")["finish_reason"] == "stop"
    assert result.text() == "all here"
    upstream = fake_upstream.received[-1]
    assert upstream.finished is None  # the provider was still holding the stream open
    assert await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=10)


@pytest.mark.parametrize("route", ["chat", "v1"])
async def test_a_connection_that_breaks_after_done_still_ends_the_answer_well(api, fake_upstream, jp_serverapp, route):
    # Many proxies hang up right after [DONE]: the answer was whole, so it ends as finished.
    fake_upstream.script(Script(chunks=["all ", "here"], drop_after_done=True))
    if route == "chat":
        result = await api.stream({"prompt": "x"})
        assert result.names()[-2:] == ["usage", "done"] and result.one("done")["finish_reason"] == "stop"
        assert result.text() == "all here"
    else:
        frames = await v1_stream(api, jp_serverapp)
        assert frames[-1] == "[DONE]" and not any('"error"' in f for f in frames)
