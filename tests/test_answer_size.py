"""An answer has a size: a provider that ignores ``max_tokens`` (broken, hostile, a misconfigured
gateway) is stopped at ``limits.max_answer_bytes``, on every path. The answer ends with the error
``too_long`` and ``done``, keeping the text so far: streamed and whole, on the chat endpoint and
on ``cellmage/v1``, for its followers, in its stored turn and in the ledger; and the provider's
request is closed."""

from __future__ import annotations

import json

import pytest

from .conftest import PROVIDER_PATHS, toml_with
from .fake_upstream import FakeUpstream, Script
from .openai_support import scoped_key, v1_stream

LIMIT = 64 * 1024
NB = "work/size.ipynb"
# 1 MB of answer in 1,000-byte chunks, 2 ms apart (so the provider is still sending when the
# limit is reached): 16 times the limit.
ENDLESS = Script(
    chunks=["y" * 999 + "\n"] * 1000, interval=0.002,
    usage={"prompt_tokens": 7, "completion_tokens": 250_000, "total_tokens": 250_007},
)


@pytest.fixture(params=PROVIDER_PATHS)
def provider_path(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream, provider_path: str) -> str:
    toml = toml_with(fake_upstream, limits={"max_answer_bytes": LIMIT})
    if provider_path == "litellm":
        toml = toml.replace('model = "openai/', 'provider = "litellm"\nmodel = "openai/')
    return toml


async def _provider_closed(fake_upstream: FakeUpstream) -> bool:
    upstream = fake_upstream.received[-1]
    return await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=10)


async def test_a_streamed_answer_stops_at_the_limit_with_too_long_then_done(api, fake_upstream):
    fake_upstream.script(ENDLESS)

    result = await api.stream({"prompt": "x", "conversation": NB, "cell_id": "c1"})

    assert result.names()[-2:] == ["error", "done"]
    error = result.one("error")
    assert error["code"] == "too_long" and "limits.max_answer_bytes" in error["message"]
    assert result.one("done")["finish_reason"] == "error"
    text = result.text()
    assert LIMIT - 1000 <= len(text.encode()) <= LIMIT  # the text so far, not a byte more
    assert await _provider_closed(fake_upstream)
    # The stored turn keeps that text, as failed, and the ledger has the answer
    turns = (await api.get(f"conversations/{NB}")).json()["turns"]
    assert turns[0]["answer"] == text and turns[0]["status"] == "error" and "max_answer_bytes" in turns[0]["error"]
    assert (await api.get("usage")).json()["total"]["answers"] == 1


async def test_a_whole_answer_past_the_limit_is_a_502_that_says_why(api, fake_upstream):
    fake_upstream.script(ENDLESS)
    async with api.client() as c:
        response = await c.post(api.url("chat"), json={"prompt": "x", "stream": False})
    assert response.status_code == 502
    assert response.json()["reason"] == "too_long" and "limits.max_answer_bytes" in response.json()["message"]
    assert await _provider_closed(fake_upstream)


async def test_a_follower_gets_the_same_cut_and_the_same_end(api, fake_upstream):
    fake_upstream.script(ENDLESS)
    cell = {"conversation": NB, "cell_id": "c2"}
    asked = await api.stream({"prompt": "x", **cell})
    answer_id = asked.events[0].data["id"]
    async with api.client() as c, c.stream("GET", api.url(f"answers/{answer_id}/events")) as followed:
        lines = [line async for line in followed.aiter_lines() if line.startswith("data:")]
    events = [json.loads(line[5:]) for line in lines]
    assert "".join(e.get("text", "") for e in events[1:-2]) == asked.text()
    assert events[-2] == asked.one("error") and events[-1] == asked.one("done")


async def test_a_v1_stream_past_the_limit_ends_with_its_error_and_the_provider_stops(api, fake_upstream, jp_serverapp):
    fake_upstream.script(ENDLESS)
    frames = await v1_stream(api, jp_serverapp)
    assert frames[-1] != "[DONE]"
    error = json.loads(frames[-1])["error"]
    assert error["code"] == "too_long" and "limits.max_answer_bytes" in error["message"]
    sent = sum(len(f) + 8 for f in frames[:-1])  # the chunks as the provider sent them ("data: ", "\n\n")
    assert sent <= LIMIT
    assert await _provider_closed(fake_upstream)


async def test_a_whole_v1_answer_past_the_limit_is_a_502_the_sdk_raises(api, fake_upstream, jp_serverapp):
    import openai

    from .openai_support import sdk

    fake_upstream.script(ENDLESS)
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk(api, scoped_key(jp_serverapp)).chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 502 and "limits.max_answer_bytes" in raised.value.message
    assert await _provider_closed(fake_upstream)
