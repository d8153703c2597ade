"""Stopping the Jupyter server mid-answer: the answer ends with ``error`` ``shutdown`` then
``done``, its text so far kept and stored as interrupted; new answers are refused."""

from __future__ import annotations

import asyncio
import json

from httpx_sse import EventSource

from cellmage_server.history import Store
from cellmage_server.principal import owner_name

from .fake_upstream import Script

SLOW = Script(chunks=[f"t{i} " for i in range(200)], interval=0.02)
NB = "stopping.ipynb"


def _cellmage_app(serverapp):
    (app,) = serverapp.extension_manager.extension_apps["cellmage_server"]
    return app


async def test_a_running_answer_ends_with_shutdown_then_done(api, fake_upstream, jp_serverapp):
    fake_upstream.script(SLOW)
    state = jp_serverapp.web_app.settings["cellmage"]
    events = []
    async with api.client() as c:
        body = {"prompt": "long", "conversation": NB, "cell_id": "c1"}
        async with c.stream("POST", api.url("chat"), json=body) as response:
            async for sse in EventSource(response).aiter_sse():
                events.append((sse.event, json.loads(sse.data)))
                if sse.event == "delta" and sum(1 for name, _ in events if name == "delta") == 2:
                    # When the server stops (the hook jupyter-server awaits before its loop stops)
                    stopping = asyncio.ensure_future(_cellmage_app(jp_serverapp).stop_extension())
            await stopping

    # Then the stream ended properly, with what had come
    names = [name for name, _ in events]
    assert names[-2:] == ["error", "done"]
    assert events[-2][1]["code"] == "shutdown" and "stopped" in events[-2][1]["message"]
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert text.startswith("t0 t1 ")
    # And the provider request was closed, the turn stored as interrupted with that text
    assert await fake_upstream.until(lambda: fake_upstream.received[0].closed_by_client is not None)
    assert len(state.streams) == 0
    # (the stop closed the server's database; read what it left there)
    store = Store(state.store.path)
    try:
        (turn,) = await store.turns(NB)
        assert turn.status == "interrupted" and turn.answer == text
        assert (await store.usage(owner_name()))["total"]["answers"] == 1
    finally:
        store.close()


async def test_after_the_stop_new_answers_are_refused(api, fake_upstream, jp_serverapp):
    await _cellmage_app(jp_serverapp).stop_extension()

    response = await api.post("chat", {"prompt": "x"})

    assert response.status_code == 503
    assert fake_upstream.received == []
