"""While the provider is silent the stream sends pings, and a running answer counts as activity."""

from __future__ import annotations

import json

import pytest

from .fake_upstream import Script


@pytest.fixture
def cellmage_toml(cellmage_toml: str) -> str:
    # Pings every 50 ms instead of 15 s, so a test can wait for several.
    return cellmage_toml.replace("[limits]", "[limits]\nping_interval = 0.05")


async def test_pings_flow_while_the_provider_is_silent(api, fake_upstream):
    fake_upstream.script(Script(first_delay=0.6))

    async with api.open_stream({"prompt": "think hard"}) as response:
        raw = await response.aread()

    before_answer = raw.split(b"event: delta")[0]
    assert before_answer.count(b": ping\n\n") >= 4
    deltas = [json.loads(event.split(b"data: ", 1)[1])["text"] for event in raw.split(b"\n\n") if event.startswith(b"event: delta")]
    assert "".join(deltas) == "Hello, world"  # and the answer still comes, whole


async def test_a_running_answer_keeps_the_server_active(api, fake_upstream, jp_serverapp):
    fake_upstream.script(Script(chunks=["a", "b", "c", "d"], interval=0.25))
    settings = jp_serverapp.web_app.settings
    async with api.client() as c:
        await c.get(api.url("status"))
        async with c.stream("POST", api.url("chat"), json={"prompt": "x"}) as response:
            received = b""
            seen = during = None
            async for chunk in response.aiter_raw():
                received += chunk
                if seen is None:
                    # After the request itself, only the running answer can update activity
                    seen = jp_serverapp.web_app.last_activity()
                if during is None and received.count(b"event: delta") >= 3:
                    # Then, mid-answer (~0.5 s in), activity has moved on with it
                    during = settings["cellmage_last_activity"]
                    assert (during - seen).total_seconds() > 0.3
                    assert jp_serverapp.web_app.last_activity() >= during
    assert during is not None
