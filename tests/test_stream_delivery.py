"""Every frame of a stream goes out as it is written: the server's end of a streaming response has
TCP_NODELAY set while it streams (the asker's SSE, a follower's, a cellmage/v1 stream), so the
kernel does not hold a small frame until the client acknowledges the one before."""

from __future__ import annotations

import gc
import socket

import httpx

from .fake_upstream import Script
from .openai_support import scoped_key, v1

SLOW = Script(chunks=[f"t{i} " for i in range(40)], interval=0.02)


def _nodelay(kind: type) -> list[int]:
    found = []
    for h in gc.get_objects():
        if isinstance(h, kind) and not h._finished:
            sock = h.request.connection.stream.socket
            found.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return found


async def test_the_chat_stream_a_follower_and_a_v1_stream_send_each_frame_at_once(api, fake_upstream, jp_serverapp):
    from cellmage_server.routes.answers import FollowHandler
    from cellmage_server.routes.chat import ChatHandler
    from cellmage_server.routes.openai.handlers import ChatCompletionsHandler

    fake_upstream.script(SLOW, SLOW)
    async with api.client() as c:
        async with c.stream("POST", api.url("chat"), json={"prompt": "x", "conversation": "a.ipynb", "cell_id": "c"}) as asked:
            lines = asked.aiter_lines()
            async for line in lines:
                if line.startswith("data:") and '"id"' in line:
                    answer_id = line.split('"id":"')[1][:32]
                    break
            async with c.stream("GET", api.url(f"answers/{answer_id}/events")) as followed:
                follow_lines = followed.aiter_lines()
                await follow_lines.__anext__()
                assert _nodelay(ChatHandler) == [1] and _nodelay(FollowHandler) == [1]
                async for _ in follow_lines:
                    pass
            async for _ in lines:
                pass
        async with httpx.AsyncClient(trust_env=False, timeout=30) as sdk, sdk.stream(
            "POST", v1(api) + "/chat/completions", headers={"Authorization": f"Bearer {scoped_key(jp_serverapp)}"},
            json={"model": "fast", "messages": [{"role": "user", "content": "x"}], "stream": True},
        ) as streamed:
            v1_lines = streamed.aiter_lines()
            await v1_lines.__anext__()
            assert _nodelay(ChatCompletionsHandler) == [1]
            async for _ in v1_lines:
                pass


import pytest  # noqa: E402


@pytest.fixture
def freeze_soon(monkeypatch):
    import cellmage_server.app as app

    monkeypatch.setattr(app, "FREEZE_AFTER", 0.05)


async def test_the_start_up_heap_is_kept_out_of_full_collections_once_the_server_runs(freeze_soon, api, jp_serverapp):
    import asyncio

    # What the server does once its loop runs (pytest-jupyter's server does not start its loop)
    (extension,) = jp_serverapp.extension_manager.extension_apps["cellmage_server"]
    await extension._start_jupyter_server_extension(jp_serverapp)
    for _ in range(100):
        if gc.get_freeze_count():
            break
        await asyncio.sleep(0.02)
    assert gc.get_freeze_count() > 10_000  # the server's objects, and every extension's
