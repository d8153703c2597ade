"""Errors in OpenAI's shape with the statuses the SDK acts on; limits, disconnect and the ledger."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from cellmage_server.routes.openai.scoped_key import key_owner

from .conftest import PROVIDER_PATHS, SECRET
from .fake_upstream import FakeUpstream, Script
from .openai_support import scoped_key, sdk, toml, v1

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=PROVIDER_PATHS)
def provider_path(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream, provider_path: str) -> str:
    return toml(fake_upstream, provider_path)


@pytest.fixture
def key(jp_serverapp) -> str:
    return scoped_key(jp_serverapp)


@pytest.mark.parametrize("field", ["api_base", "base_url", "api_key", "custom_llm_provider", "extra_headers", "extra_body", "organization"])
async def test_a_field_that_would_reroute_the_call_is_refused(api, fake_upstream, key, field):
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk(api, key).chat.completions.create(model="fast", messages=HI, extra_body={field: "http://evil.example"})
    assert field in raised.value.message and raised.value.body["param"] == field
    assert fake_upstream.received == []


async def test_an_unknown_field_is_refused_by_name(api, fake_upstream, key):
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk(api, key).chat.completions.create(model="fast", messages=HI, extra_body={"frobnicate": 1})
    assert "frobnicate" in raised.value.message and raised.value.code == "unknown_parameter"
    assert fake_upstream.received == []


async def test_known_but_unsupported_fields_are_dropped_and_named(api, fake_upstream, key, provider_path):
    response = await sdk(api, key).chat.completions.with_raw_response.create(
        model="fast", messages=HI, store=True, metadata={"team": "x"}, service_tier="priority", parallel_tool_calls=False
    )
    assert response.headers["x-cellmage-dropped"] == "metadata, service_tier, store"
    assert response.parse().choices[0].message.content == "Hello, world"
    sent = fake_upstream.received[-1].body
    assert "store" not in sent and "metadata" not in sent and "service_tier" not in sent
    if provider_path == "lean":  # passed on as sent (litellm drops what its tables say a model lacks)
        assert sent["parallel_tool_calls"] is False


@pytest.mark.parametrize("alias", ["nope", "hidden", "embed"])
async def test_a_model_that_is_no_allowed_chat_alias_is_not_found(api, fake_upstream, key, alias):
    error = openai.BadRequestError if alias == "embed" else openai.NotFoundError
    with pytest.raises(error) as raised:
        await sdk(api, key).chat.completions.create(model=alias, messages=HI)
    assert raised.value.body["param" if alias == "embed" else "code"] == ("model" if alias == "embed" else "model_not_found")
    assert "fake-hidden" not in raised.value.message
    assert fake_upstream.received == []


@pytest.mark.parametrize(
    "bad",
    [{"messages": []}, {"messages": [{"role": "robot", "content": "x"}]}, {"temperature": 3}, {"n": 2}, {"stream": "yes"}],
    ids=["no messages", "bad role", "temperature", "n over max_n", "stream not bool"],
)
async def test_bad_values_are_a_bad_request(api, fake_upstream, key, bad):
    body = {"model": "fast", "messages": HI, **bad}
    async with httpx.AsyncClient(trust_env=False, headers={"Authorization": f"Bearer {key}"}) as c:
        response = await c.post(v1(api) + "/chat/completions", json=body)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert fake_upstream.received == []


async def test_a_body_over_the_limit_is_413(api, fake_upstream, key, jp_serverapp):
    limit = jp_serverapp.web_app.settings["cellmage"].config.settings.openai_endpoint.max_body_bytes
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk(api, key).chat.completions.create(model="fast", messages=[{"role": "user", "content": "x" * limit}])
    assert raised.value.status_code == 413


async def test_a_provider_429_reaches_the_sdk_as_a_rate_limit_with_retry_after(api, fake_upstream, key):
    fake_upstream.script(Script(status=429, retry_after="7", error_message="slow down"), Script(status=429, retry_after="0"))
    with pytest.raises(openai.RateLimitError) as raised:
        await sdk(api, key).chat.completions.create(model="fast", messages=HI, stream=True)
    assert raised.value.response.headers["retry-after"] == "7"
    assert "slow down" in raised.value.message

    # And the SDK's own retry honours it: one retry after the 429, then the answer.
    answer = await sdk(api, key, max_retries=1).chat.completions.create(model="fast", messages=HI)
    assert answer.choices[0].message.content == "Hello, world"
    assert len(fake_upstream.received) == 3


@pytest.mark.parametrize(
    "status,sdk_error", [(400, openai.BadRequestError), (401, openai.InternalServerError), (503, openai.InternalServerError)]
)
async def test_provider_statuses_are_passed_on_or_become_502(api, fake_upstream, key, status, sdk_error):
    fake_upstream.script(Script(status=status, error_message=f"bad things {SECRET}"))
    with pytest.raises(sdk_error) as raised:
        await sdk(api, key).chat.completions.create(model="fast", messages=HI)
    assert raised.value.status_code == {400: 400, 401: 502, 503: 503}[status]
    assert SECRET not in raised.value.message and "bad things" in raised.value.message


async def test_a_failure_mid_stream_is_the_streams_last_event(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=["a", "b", "c", "d"], drop_after=2))
    stream = await sdk(api, key).chat.completions.create(model="fast", messages=HI, stream=True)
    got = []
    with pytest.raises(openai.APIError) as raised:
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(got) == "ab"
    assert "mid-answer" in raised.value.message


async def test_a_client_that_hangs_up_closes_the_provider_request(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(400)], interval=0.02))
    async with httpx.AsyncClient(trust_env=False, headers={"Authorization": f"Bearer {key}"}) as c:
        body = {"model": "fast", "messages": HI, "stream": True}
        async with c.stream("POST", v1(api) + "/chat/completions", json=body) as response:
            lines = response.aiter_lines()
            while "w2" not in await anext(lines):
                pass
    record = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: record.closed_by_client is not None, timeout=5)
    assert len(record.chunk_times) < 100  # it stopped long before the end


async def test_the_per_user_limit_applies(api, fake_upstream, key, jp_serverapp):
    fake_upstream.script(*[Script(chunks=["a", "b"], interval=1.0)] * 2)
    client = sdk(api, key)
    running = [asyncio.ensure_future(client.chat.completions.create(model="fast", messages=HI)) for _ in range(2)]
    assert await fake_upstream.until(lambda: len(fake_upstream.received) == 2)
    with pytest.raises(openai.RateLimitError) as raised:
        await client.chat.completions.create(model="fast", messages=HI)
    assert "limit is 2" in raised.value.message
    assert [a.choices[0].message.content for a in await asyncio.gather(*running)] == ["ab", "ab"]


async def test_answers_are_in_the_ledger_under_the_principal(api, fake_upstream, key, jp_serverapp):
    client = sdk(api, key)
    await client.chat.completions.create(model="fast", messages=HI)
    stream = await client.chat.completions.create(model="other", messages=HI, stream=True)
    async for _ in stream:
        pass
    fake_upstream.script(Script(status=429))
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="fast", messages=HI)

    store = jp_serverapp.web_app.settings["cellmage"].store
    usage = await store.usage(key_owner())
    rows = {r["model"]: r for r in usage["by_day"]}
    assert rows["fast"]["answers"] == 2 and rows["other"]["answers"] == 1
    assert usage["total"]["prompt_tokens"] == 14 and usage["total"]["completion_tokens"] == 6
    assert json.dumps(usage).count("fast") == 1
    # and GET usage, with the server's token (the browser's, a kernel's, a script's), shows the
    # same answers: one principal, the server's owner, whatever the credentials
    shown = (await api.get("usage")).json()
    assert shown["user"] == key_owner() and shown["total"] == usage["total"]


async def test_a_provider_gone_silent_mid_answer_ends_the_stream_with_a_timeout(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=["a", "b", "c"], silence_after=1, hold_seconds=10))
    stream = await sdk(api, key).chat.completions.create(model="fast", messages=HI, stream=True)
    got = []
    with pytest.raises(openai.APIError) as raised:
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(got) == "a" and "chunk_gap" in raised.value.message
    assert raised.value.body["code"] == "timeout"


async def test_a_client_that_gives_up_on_a_whole_answer_closes_the_provider_request(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(400)], interval=0.02))
    async with httpx.AsyncClient(trust_env=False, headers={"Authorization": f"Bearer {key}"}) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post(v1(api) + "/chat/completions", json={"model": "fast", "messages": HI}, timeout=0.5)
    assert fake_upstream.received
    record = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: record.closed_by_client is not None, timeout=5)
    assert len(record.chunk_times) < 100


async def test_a_stream_that_ends_unfinished_is_an_error_not_a_finished_answer(api, fake_upstream, key):
    # A provider (or a proxy in front of it) closes the stream cleanly but never says it finished
    fake_upstream.script(Script(chunks=["partial ", "answer"], send_done=False, finish_reason=""))
    stream = await sdk(api, key).chat.completions.create(model="fast", messages=HI, stream=True)
    got, finishes = [], []
    with pytest.raises(openai.APIError) as raised:
        async for chunk in stream:
            for choice in chunk.choices:
                got.append(choice.delta.content or "")
                finishes.append(choice.finish_reason)
    assert "".join(got) == "partial answer"
    assert [f for f in finishes if f] == []  # no chunk says the answer finished
    assert "ended before the answer was finished" in raised.value.message
