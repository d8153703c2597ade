"""Every path has a memory bound: a follower or a client that never reads costs what
``limits.stream_buffer_bytes`` says, whatever the size of the answer; a body over the limit is
never held, and one from someone unknown is not read at all; bad input is a 400, not a crash.

Server memory is this process's (the server under test runs in it): its peak resident size while
the attack runs, over what it was before.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from .conftest import kernel_buffers, provider_read_ahead, provider_sockets, toml_with
from .fake_upstream import FakeUpstream, Script
from .helpers import (
    NASTY,
    first_answer_bytes,
    peak_growth,
    raw_get,
    raw_post,
    read_response,
    running_handler,
    stalled_client,
    until,
)
from .openai_support import scoped_key, v1

BUFFER = 64 * 1024
CELL = {"conversation": "team/one.ipynb", "cell_id": "cell-1"}
BIG = [NASTY] * 940


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml_with(
        fake_upstream,
        limits={"stream_buffer_bytes": BUFFER, "max_answer_bytes": 256 << 20},
        timeouts={"client_behind": 3, "total": 60},
        openai_endpoint={"max_body_bytes": 1 << 20},
    )


def _follow_handlers(answer_id: str) -> list:
    import gc

    from cellmage_server.routes.answers import FollowHandler

    return [h for h in gc.get_objects() if isinstance(h, FollowHandler) and h._out is not None and answer_id in h.request.path]


async def test_stalled_followers_of_a_big_ended_answer_cost_about_the_buffer_each(
    api, fake_upstream, jp_http_port, jp_base_url, jp_auth_header, jp_serverapp
):
    # Given a 15 MB answer that has ended
    fake_upstream.script(Script(chunks=BIG, usage=None))
    async with api.client() as c:
        whole = (await c.post(api.url("chat"), json={"prompt": "x", "stream": False, **CELL})).json()
    assert len(whole["text"]) == len(NASTY) * len(BIG)
    board = jp_serverapp.web_app.settings["cellmage"].board
    path = f"{jp_base_url}cellmage/api/answers/{whole['id']}/events"
    async with peak_growth() as grown:
        # When eight followers open it and never read
        socks = [await stalled_client(jp_http_port, raw_get(path, jp_auth_header["Authorization"])) for _ in range(8)]
        try:
            await until(lambda: board.get(whole["id"]).followers == 8)
            await asyncio.sleep(0.5)  # as much as each is going to get
            handlers = _follow_handlers(whole["id"])
            # Then each holds at most the buffer and a piece (8 * 15 MB * 6 would be 720 MB)
            assert len(handlers) == 8
            assert max(h._out.peak for h in handlers) <= BUFFER + BUFFER // 8 * 6 + 200
            # ... and, behind for timeouts.client_behind, each is cut and let go
            await until(lambda: board.get(whole["id"]).followers == 0, timeout=10)
        finally:
            for sock in socks:
                sock.close()
    assert grown[0] < 48 << 20, f"the server grew by {grown[0] >> 20} MB"


async def test_stalled_followers_of_a_running_answer_neither_hold_it_back_nor_pile_it_up(
    api, fake_upstream, jp_http_port, jp_base_url, jp_auth_header, jp_serverapp
):
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(10)] + BIG, interval=0.0, first_delay=0.0, usage=None))
    board = jp_serverapp.web_app.settings["cellmage"].board
    async with api.client() as asker, peak_growth() as grown:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "x", **CELL}) as response:
            lines = response.aiter_lines()
            async for line in lines:  # up to the start event, which names the answer
                if line.startswith("data:"):
                    answer_id = json.loads(line[5:])["id"]
                    break
            path = f"{jp_base_url}cellmage/api/answers/{answer_id}/events"
            socks = [await stalled_client(jp_http_port, raw_get(path, jp_auth_header["Authorization"])) for _ in range(8)]
            try:
                received = 0
                async for line in lines:  # the asker reads the whole 15 MB answer
                    if line.startswith("data:"):
                        received += len(line)
                assert received > len(NASTY) * len(BIG)
                handlers = _follow_handlers(answer_id)
                assert len(handlers) == 8
                assert max(h._out.peak for h in handlers) <= BUFFER + BUFFER // 8 * 6 + 200
                await until(lambda: board.get(answer_id).followers == 0, timeout=10)
            finally:
                for sock in socks:
                    sock.close()
    assert fake_upstream.received[0].closed_by_client is None  # the provider was never held back
    assert grown[0] < 96 << 20, f"the server grew by {grown[0] >> 20} MB"


async def test_a_stalled_v1_reader_holds_the_provider_back_then_is_cut(
    api, fake_upstream, jp_http_port, jp_base_url, jp_serverapp
):
    from cellmage_server.routes.openai.handlers import ChatCompletionsHandler

    # Given a provider that would send 48 MB as fast as it can
    fake_upstream.script(Script(chunks=["x" * 16000] * 3000, usage=None))
    body = json.dumps({"model": "fast", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
    auth = f"Bearer {scoped_key(jp_serverapp)}"
    async with peak_growth() as grown:
        # When a client of cellmage/v1 asks and never reads
        sock = await stalled_client(jp_http_port, raw_post(f"{jp_base_url}cellmage/v1/chat/completions", auth, body))
        try:
            assert await fake_upstream.until(lambda: fake_upstream.received and fake_upstream.received[0].chunk_times)
            upstream = fake_upstream.received[0]
            await asyncio.sleep(1.0)  # long enough to send all 48 MB without back-pressure
            # Then the provider is held back: what left it is what the server holds for the
            # client (at most the buffer and a frame) and what the kernel buffers on the way
            handler = running_handler(ChatCompletionsHandler)
            held = handler._answer.output.peak
            assert held <= BUFFER + 20_000, held
            on_the_way = kernel_buffers(upstream.socket, *provider_sockets(jp_serverapp), handler.request.connection.stream.socket, sock)
            on_the_way += provider_read_ahead(jp_serverapp)  # read from the provider, not yet relayed
            assert upstream.sent_bytes <= held + on_the_way + 256 * 1024, (upstream.sent_bytes, held, on_the_way)
            assert upstream.sent_bytes < 48_000_000 // 2
            # ... and after timeouts.client_behind it is cut and the provider closed
            assert await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=10)
            # ... with slow_client queued behind what it had not read
            data = await read_response(sock)
            assert b'"code": "slow_client"}}' in data[-400:], data[-400:]
        finally:
            sock.close()
    assert grown[0] < 32 << 20, f"the server grew by {grown[0] >> 20} MB"


async def test_a_fast_v1_reader_of_a_long_stream_keeps_nothing_of_it(api, fake_upstream, jp_serverapp):
    # 96 MB of chunks, read as fast as they come: the server keeps none of them
    fake_upstream.script(Script(chunks=["x" * 16000] * 6000))
    async with peak_growth() as grown:
        async with httpx.AsyncClient(trust_env=False, timeout=60) as c:
            async with c.stream(
                "POST", v1(api) + "/chat/completions", headers={"Authorization": f"Bearer {scoped_key(jp_serverapp)}"},
                json={"model": "fast", "messages": [{"role": "user", "content": "hi"}], "stream": True},
            ) as response:
                size = 0
                async for piece in response.aiter_bytes():
                    size += len(piece)
    assert size > 96_000_000
    assert grown[0] < 48 << 20, f"the server grew by {grown[0] >> 20} MB"


class TestWithJupyterDecidingPerVerb:
    """jupyter-server's default (allow_unauthenticated_access true) authenticates in the verb,
    after the body was read: the extension refuses an unknown sender before that."""

    @pytest.fixture
    def jp_server_config(self, cellmage_config):
        return {"ServerApp": {"jpserver_extensions": {"cellmage_server": True}, "allow_unauthenticated_access": True}}

    @pytest.mark.parametrize("route", ["cellmage/v1/chat/completions", "cellmage/api/chat"])
    @pytest.mark.parametrize(
        "auth",
        ["", "Authorization: Bearer not-a-key\r\n", "Cookie: _xsrf=forged\r\nX-XSRFToken: forged\r\n"],
        ids=["no credentials", "a wrong key", "a forged XSRF pair"],
    )
    async def test_a_body_from_someone_unknown_is_refused_before_any_of_it_is_read(
        self, api, fake_upstream, jp_http_port, jp_base_url, auth, route
    ):
        head = (
            f"POST {jp_base_url}{route} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {200 << 20}\r\n\r\n"
        ).encode()
        answer = await first_answer_bytes(jp_http_port, head)  # nothing of the 200 MB was sent
        status = answer.partition(b"\r\n")[0]
        assert (b" 401 " if "v1" in route else b" 403 ") in status, answer[:200]
        # tornado closes a connection whose body it did not read: the answer says so, or a proxy
        # that keeps connections alive sends its next request down the closing socket (a 503)
        assert b"\r\nConnection: close\r\n" in answer.partition(b"\r\n\r\n")[0], answer[:400]
        assert fake_upstream.received == []


async def test_a_v1_body_far_over_the_limit_is_refused_before_any_of_it_is_read(
    api, fake_upstream, jp_http_port, jp_base_url, jp_serverapp
):
    head = (
        f"POST {jp_base_url}cellmage/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {scoped_key(jp_serverapp)}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 << 20}\r\n\r\n"
    ).encode()
    answer = await first_answer_bytes(jp_http_port, head)
    assert b" 413 " in answer.partition(b"\r\n")[0], answer[:200]
    assert b"\r\nConnection: close\r\n" in answer.partition(b"\r\n\r\n")[0], answer[:400]
    assert b"at most 1048576" in answer


async def test_a_v1_body_a_little_over_the_limit_is_dropped_as_it_comes_and_answered_413(
    api, fake_upstream, jp_serverapp
):
    # The SDKs send the whole body before they read: they see the 413, and nothing of it is held
    content = "x" * (3 << 20)
    async with peak_growth() as grown, httpx.AsyncClient(trust_env=False, timeout=30) as c:
        response = await c.post(
            v1(api) + "/chat/completions", headers={"Authorization": f"Bearer {scoped_key(jp_serverapp)}"},
            json={"model": "fast", "messages": [{"role": "user", "content": content}]},
        )
    assert response.status_code == 413 and "at most 1048576" in response.json()["error"]["message"]
    assert fake_upstream.received == []
    assert grown[0] < 24 << 20


@pytest.mark.parametrize(
    "body,words",
    [
        ('{"model": "fast", "messages": [{"role": "user", "content": "x"}], "tools": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper"),
        ('{"model": "fast", "messages": [{"role": "user", "content": "x"}], "tools": ' + "[" * 70 + "]" * 70 + "}", "nested deeper"),
        ('{"model": "fast", "messages": [{"role": "user", "content": "x"}], "top_logprobs": Infinity}', "Infinity"),
        ('{"model": "fast", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "NaN"),
        ('{"model": "fast", "messages": [{"role": "user", "content": "x"}], "seed": -Infinity}', "-Infinity"),
    ],
    ids=["nested 100,000 deep", "nested 70 deep", "Infinity", "NaN", "-Infinity"],
)
async def test_bad_v1_input_is_a_400_that_says_why(api, fake_upstream, jp_serverapp, body, words):
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        response = await c.post(
            v1(api) + "/chat/completions", content=body.encode(),
            headers={"Authorization": f"Bearer {scoped_key(jp_serverapp)}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400, response.text[:300]
    assert words in response.json()["error"]["message"]
    assert fake_upstream.received == []
