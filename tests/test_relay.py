"""The relay's core without a server: coalescing per loop turn, cancellation, timeouts."""

from __future__ import annotations

import asyncio

from cellmage_server.answer.relay import Relay
from cellmage_server.config import Timeouts
from cellmage_server.contract import Finish, Usage
from cellmage_server.errors import Cancelled, UpstreamError


class Recorder:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.pings = 0

    def text(self, text: str) -> None:
        self.texts.append(text)

    def ping(self) -> None:
        self.pings += 1


TIMEOUTS = Timeouts(connect=1, first_token=5, chunk_gap=5, total=30)


def relay(events, output, **kwargs):
    kwargs.setdefault("timeouts", TIMEOUTS)
    kwargs.setdefault("ping_interval", 15)
    return Relay(events, output, **kwargs)


async def test_deltas_of_one_loop_turn_become_one_output():
    async def provider():
        for i in range(5):
            yield str(i)  # all available at once: no suspension between them
        await asyncio.sleep(0)
        yield "later"
        yield Usage(1, 2, 3)
        yield Finish("stop")

    out = Recorder()
    outcome = await relay(provider(), out).run()

    assert out.texts == ["0", "1234", "later"]  # the first at once (time to first token), then by turn
    assert outcome.text == "01234later"
    assert outcome.usage == Usage(1, 2, 3) and outcome.finish_reason == "stop" and outcome.error is None


async def test_the_first_text_is_output_before_the_provider_is_read_again():
    out = Recorder()
    seen: list[list[str]] = []

    async def provider():
        yield "first"
        seen.append(list(out.texts))  # no loop turn between: the first frame is out already
        yield "second"
        seen.append(list(out.texts))
        yield Finish("stop")

    await relay(provider(), out).run()
    assert seen == [["first"], ["first"]] and out.texts == ["first", "second"]


async def test_text_is_output_on_the_next_loop_turn_not_later():
    out = Recorder()
    seen_when_resumed: list[list[str]] = []

    async def provider():
        yield "a"
        await asyncio.sleep(0)  # the provider waits for the network
        seen_when_resumed.append(list(out.texts))
        yield Finish("stop")

    await relay(provider(), out).run()

    assert seen_when_resumed == [["a"]]  # "a" went out while the provider was waiting


async def test_cancel_closes_the_provider_at_once_and_keeps_the_text():
    closed = asyncio.Event()

    async def provider():
        try:
            yield "partial"
            await asyncio.sleep(3600)  # the provider would go on for an hour
            yield Finish("stop")
        finally:
            closed.set()

    out = Recorder()
    r = relay(provider(), out)
    running = asyncio.ensure_future(r.run())
    while not out.texts:
        await asyncio.sleep(0)

    r.cancel()
    outcome = await running

    assert closed.is_set()
    assert isinstance(outcome.error, Cancelled) and outcome.finish_reason == "cancelled"
    assert outcome.text == "partial" and out.texts == ["partial"]


async def test_a_silent_provider_times_out_with_the_gap_timeout_and_pings_meanwhile():
    async def provider():
        yield "x"
        await asyncio.sleep(3600)
        yield Finish("stop")

    out = Recorder()
    outcome = await relay(
        provider(), out, timeouts=Timeouts(connect=1, first_token=5, chunk_gap=0.3, total=30), ping_interval=0.05
    ).run()

    assert isinstance(outcome.error, UpstreamError) and outcome.error.code == "timeout"
    assert "chunk_gap" in outcome.error.message
    assert out.pings >= 3 and outcome.text == "x"


async def test_a_provider_error_ends_the_answer_with_it():
    async def provider():
        yield "some "
        raise UpstreamError("rate_limited", "slow down")

    outcome = await relay(provider(), Recorder()).run()

    assert outcome.error.code == "rate_limited" and outcome.text == "some " and outcome.finish_reason == "error"


async def test_activity_is_touched_while_running():
    touches = []

    async def provider():
        await asyncio.sleep(0.2)
        yield Finish("stop")

    await relay(provider(), Recorder(), ping_interval=0.05, touch=lambda: touches.append(1)).run()

    assert len(touches) >= 3


async def test_a_provider_that_breaks_ends_with_an_internal_error_and_keeps_the_text():
    async def provider():
        yield "kept "
        await asyncio.sleep(0)
        yield "too"
        await asyncio.sleep(0)
        raise TypeError("a bug in a provider path")

    out = Recorder()
    outcome = await relay(provider(), out).run()

    assert outcome.text == "kept too"
    assert outcome.error is not None and outcome.error.code == "internal"
    assert outcome.finish_reason == "error"


async def test_lone_surrogates_are_replaced_not_lost():
    async def provider():
        yield "before \ud800 after"
        yield Finish("stop")

    outcome = await relay(provider(), Recorder()).run()

    assert outcome.text == "before \ufffd after"
    outcome.text.encode("utf-8")
