"""Cancel and disconnect at the same moment, many times: the provider request is closed every
time, nothing keeps running, and the server holds no more open files than before."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from httpx_sse import EventSource

from .conftest import PROVIDER_PATHS
from .fake_upstream import Script
from .helpers import answer_tasks, until

pytestmark = pytest.mark.parametrize("provider_path", PROVIDER_PATHS)

RUNS = 100
LONG = Script(chunks=[f"t{i} " for i in range(400)], interval=0.01)


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))  # the server, its fake provider and this test: one process


async def _race(api, c, offset: int) -> None:
    """One answer, cancelled by id and disconnected ``offset`` loop turns apart (either order)."""
    async with c.stream("POST", api.url("chat"), json={"prompt": "long"}) as response:
        events = EventSource(response).aiter_sse()
        start = json.loads((await events.__anext__()).data)
        await events.__anext__()  # a delta: the provider is streaming
        cancel = c.post(api.url(f"chat/{start['id']}/cancel"))
        if offset >= 0:
            cancel = asyncio.ensure_future(cancel)
        for _ in range(abs(offset)):
            await asyncio.sleep(0)
    # leaving the block closed the stream's connection
    response = await cancel
    assert response.status_code in (204, 404)  # 404: the disconnect had already ended it


async def test_cancel_racing_a_disconnect_leaves_no_provider_request_open(api, fake_upstream, jp_serverapp):
    fake_upstream.default = LONG
    state = jp_serverapp.web_app.settings["cellmage"]
    async with api.client() as c:
        await _race(api, c, 0)  # warm: the database and the connection pools open what they keep
    await until(lambda: len(state.streams) == 0 and not answer_tasks(), 2)
    assert await fake_upstream.until(lambda: fake_upstream.received[0].closed_by_client is not None)
    files_before = _open_files()
    before = set(_describe_open_files())

    async with api.client() as c:
        for i in range(RUNS):
            await _race(api, c, (i % 25) * (1 if i % 2 else -1))
            # each race ends on the server before the next asks (on a loaded machine the ended
            # answers would otherwise still count towards max_streams_per_user: a 429)
            await until(lambda: len(state.streams) == 0 and not answer_tasks(), 2)

    # Then every provider request was closed by the server (none ran to its end)
    def all_closed() -> bool:
        return all(r.closed_by_client is not None for r in fake_upstream.received)

    assert await fake_upstream.until(all_closed, timeout=10), sum(
        r.closed_by_client is None for r in fake_upstream.received
    )
    assert len(fake_upstream.received) == RUNS + 1
    assert all(r.finished is None for r in fake_upstream.received)
    await until(lambda: len(state.streams) == 0 and not answer_tasks(), 2)
    # And no file stays open for it (sockets closing on both sides settle within a moment)
    for _ in range(100):  # bounded: 2 s at most
        if _open_files() <= files_before:
            break
        await asyncio.sleep(0.02)
    assert _open_files() <= files_before, sorted(set(_describe_open_files()) - before)


def _describe_open_files() -> list[str]:
    described = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            described.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
    return described
