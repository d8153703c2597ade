"""A provider whose wire format is not OpenAI's, through litellm for real: a fake Anthropic
Messages endpoint on 127.0.0.1, reached as `anthropic/...` models with an api_base."""

from __future__ import annotations

import json

import pytest
from httpx_sse import EventSource

from .conftest import KEY_ENV, SECRET
from .fake_upstream import FakeUpstream, Script


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return f"""
default_model = "claude"

[models.claude]
model = "anthropic/claude-sonnet-4-5"
api_base = "{fake_upstream.anthropic_url}"
api_key_env = "{KEY_ENV}"

[timeouts]
first_token = 5
chunk_gap = 5
"""


async def test_an_anthropic_model_streams_through_litellm(api, fake_upstream, jp_serverapp):
    assert "litellm" in jp_serverapp.web_app.settings["cellmage"].providers
    fake_upstream.script(Script(chunks=["Bonjour", ", ", "le monde ", "日本"], interval=0.02))

    result = await api.stream({"prompt": "Say hello", "persona": "concise", "max_tokens": 50})

    assert result.names()[0] == "start" and result.names()[-1] == "done"
    assert result.text() == "Bonjour, le monde 日本"
    usage = result.one("usage")
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (7, 3)
    # claude-sonnet-4-5 is priced in litellm's data: 3e-6 per prompt token, 1.5e-5 per completion token
    assert usage["cost_usd"] == pytest.approx(7 * 3e-6 + 3 * 1.5e-5)
    assert result.one("done")["finish_reason"] == "stop"

    sent = fake_upstream.received[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["X-Api-Key"] == SECRET
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["max_tokens"] == 50
    assert "Answer as briefly" in json.dumps(sent.body["system"])  # the persona, as Anthropic's system field
    assert sent.body["messages"][-1]["role"] == "user"


async def test_an_anthropic_auth_failure_maps_to_auth(api, fake_upstream):
    fake_upstream.script(Script(status=401, error_message=f"invalid x-api-key {SECRET}"))

    result = await api.stream({"prompt": "x"})

    error = result.one("error")
    assert error["code"] == "auth"
    assert SECRET not in json.dumps(result.events[-2].data)


async def test_disconnect_closes_the_anthropic_request(api, fake_upstream):
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(100)], interval=0.05))
    async with api.client() as c:
        async with c.stream("POST", api.url("chat"), json={"prompt": "long"}) as response:
            async for sse in EventSource(response).aiter_sse():
                if sse.event == "delta":
                    break

    upstream = fake_upstream.received[0]
    assert await fake_upstream.until(lambda: upstream.closed_by_client is not None)
    assert len(upstream.chunk_times) < 50
