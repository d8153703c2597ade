"""Cancel and disconnect close the provider request at once, keep what was sent, leave nothing behind."""

from __future__ import annotations

import asyncio
import json

import pytest
from httpx_sse import EventSource

from .conftest import PROVIDER_PATHS
from .fake_upstream import Script
from .helpers import settled

# The contract holds on both provider paths, against the same fake upstream.
pytestmark = pytest.mark.parametrize("provider_path", PROVIDER_PATHS)

SLOW = Script(chunks=[f"t{i} " for i in range(100)], interval=0.05)


async def test_the_cancel_route_stops_the_provider_and_ends_the_stream(api, fake_upstream):
    fake_upstream.script(SLOW)
    async with api.client() as c:
        async with c.stream("POST", api.url("chat"), json={"prompt": "long"}) as response:
            events = []
            async for sse in EventSource(response).aiter_sse():
                events.append((sse.event, json.loads(sse.data)))
                if sse.event == "delta" and len(events) == 3:
                    # When the client cancels by id after two deltas
                    stream_id = events[0][1]["id"]
                    cancelled = await c.post(api.url(f"chat/{stream_id}/cancel"))
                    assert cancelled.status_code == 204

        # Then the stream ends with one cancelled error and done, the partial text kept
        names = [name for name, _ in events]
        assert names[-2:] == ["error", "done"]
        assert events[-2][1]["code"] == "cancelled"
        assert events[-1][1]["finish_reason"] == "cancelled"
        text = "".join(data["text"] for name, data in events if name == "delta")
        assert text.startswith("t0 t1 ") and len(text) < len("".join(SLOW.chunks))
        # And the provider saw the server hang up long before its answer was done
        upstream = fake_upstream.received[0]
        assert await fake_upstream.until(lambda: upstream.closed_by_client is not None)
        assert len(upstream.chunk_times) < len(SLOW.chunks) // 2
        await settled(api, tasks=True)


async def test_a_client_disconnect_stops_the_provider(api, fake_upstream):
    fake_upstream.script(SLOW)
    async with api.client() as c:
        async with c.stream("POST", api.url("chat"), json={"prompt": "long"}) as response:
            async for sse in EventSource(response).aiter_sse():
                if sse.event == "delta":
                    break  # When the client goes away mid-answer

        upstream = fake_upstream.received[0]
        # Then the provider request is closed, far from its end
        assert await fake_upstream.until(lambda: upstream.closed_by_client is not None)
        assert len(upstream.chunk_times) < len(SLOW.chunks) // 2
        await settled(api, tasks=True)


async def test_a_disconnect_stops_a_whole_answer_too(api, fake_upstream):
    fake_upstream.script(SLOW)
    async with api.client() as c:
        request = asyncio.ensure_future(c.post(api.url("chat"), json={"prompt": "long", "stream": False}))
        assert await fake_upstream.until(lambda: len(fake_upstream.received) == 1)
        request.cancel()  # the client gives up and closes its connection

        upstream = fake_upstream.received[0]
        assert await fake_upstream.until(lambda: upstream.closed_by_client is not None)
        assert len(upstream.chunk_times) < len(SLOW.chunks) // 2
        await settled(api, tasks=True)
