"""``cellmage/v1/responses`` keeps the promises of ``chat/completions``: OpenAI-shaped errors with the
statuses the SDK acts on, refused and dropped fields, the per-user limit, disconnect closing the
provider request, timeouts and the answer size limit as the stream's last events, and the ledger,
on both provider paths."""

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

LIMIT = 64 * 1024
# 1 MB of answer in 1,000-byte chunks, 2 ms apart: 16 times the answer size limit.
ENDLESS = Script(chunks=["y" * 999 + "\n"] * 1000, interval=0.002)


@pytest.fixture(params=PROVIDER_PATHS)
def provider_path(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream, provider_path: str) -> str:
    return toml(fake_upstream, provider_path).replace("[limits]\n", f"[limits]\nmax_answer_bytes = {LIMIT}\n")


@pytest.fixture
def key(jp_serverapp) -> str:
    return scoped_key(jp_serverapp)


async def events_of(stream) -> tuple[list, BaseException | None]:
    got, error = [], None
    try:
        async for event in stream:
            got.append(event)
    except openai.APIError as e:
        error = e
    return got, error


@pytest.mark.parametrize("field", ["api_base", "base_url", "api_key", "extra_headers", "organization"])
async def test_a_field_that_would_reroute_the_call_is_refused(api, fake_upstream, key, field):
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk(api, key).responses.create(model="fast", input="hi", extra_body={field: "http://evil.example"})
    assert field in raised.value.message and raised.value.body["param"] == field
    assert fake_upstream.received == []


async def test_previous_response_id_is_refused_with_what_to_do_instead(api, fake_upstream, key):
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk(api, key).responses.create(model="fast", input="and then?", previous_response_id="resp_1")
    assert raised.value.body["param"] == "previous_response_id"
    assert "keeps no responses" in raised.value.message and "'input'" in raised.value.message
    assert fake_upstream.received == []


async def test_store_and_other_account_fields_are_dropped_and_named(api, fake_upstream, key):
    response = await sdk(api, key).responses.with_raw_response.create(
        model="fast", input="hi", store=True, metadata={"team": "x"}, service_tier="priority", truncation="auto"
    )
    assert response.headers["x-cellmage-dropped"] == "metadata, service_tier, store, truncation"
    assert response.parse().output_text == "Hello, world"
    sent = fake_upstream.received[-1].body
    assert not {"store", "metadata", "service_tier", "truncation"} & set(sent)

    async with sdk(api, key).responses.with_streaming_response.create(model="fast", input="hi", store=True, stream=True) as streamed:
        assert streamed.headers["x-cellmage-dropped"] == "store"


@pytest.mark.parametrize("alias", ["nope", "hidden"])
async def test_a_model_that_is_no_allowed_alias_is_not_found(api, fake_upstream, key, alias):
    with pytest.raises(openai.NotFoundError) as raised:
        await sdk(api, key).responses.create(model=alias, input="hi")
    assert raised.value.body["code"] == "model_not_found" and "fake-hidden" not in raised.value.message
    assert fake_upstream.received == []


async def test_a_body_over_the_limit_is_413(api, fake_upstream, key, jp_serverapp):
    limit = jp_serverapp.web_app.settings["cellmage"].config.settings.openai_endpoint.max_body_bytes
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk(api, key).responses.create(model="fast", input="x" * limit)
    assert raised.value.status_code == 413
    assert fake_upstream.received == []


async def test_a_provider_429_reaches_the_sdk_as_a_rate_limit_with_retry_after(api, fake_upstream, key):
    fake_upstream.script(Script(status=429, retry_after="7", error_message="slow down"), Script(status=429, retry_after="0"))
    with pytest.raises(openai.RateLimitError) as raised:
        await sdk(api, key).responses.create(model="fast", input="hi", stream=True)
    assert raised.value.response.headers["retry-after"] == "7" and "slow down" in raised.value.message

    answer = await sdk(api, key, max_retries=1).responses.create(model="fast", input="hi")
    assert answer.output_text == "Hello, world" and len(fake_upstream.received) == 3


@pytest.mark.parametrize("status,client_status", [(400, 400), (401, 502), (503, 503)])
async def test_provider_statuses_are_passed_on_or_become_502(api, fake_upstream, key, status, client_status):
    fake_upstream.script(Script(status=status, error_message=f"bad things {SECRET}"))
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk(api, key).responses.create(model="fast", input="hi")
    assert raised.value.status_code == client_status
    assert SECRET not in raised.value.message and "bad things" in raised.value.message


async def test_a_failure_mid_stream_ends_with_error_and_response_failed(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=["a", "b", "c", "d"], drop_after=2))
    stream = await sdk(api, key).responses.create(model="fast", input="hi", stream=True)
    events, raised = await events_of(stream)

    assert raised is None  # as from OpenAI: the events say it, the SDK yields them
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "ab"
    error, failed = events[-2:]
    assert error.type == "error" and error.code == "upstream" and "mid-answer" in error.message
    assert failed.type == "response.failed" and failed.response.error.code == "server_error"
    assert failed.response.output_text == "ab"  # the text so far


async def test_a_provider_gone_silent_ends_the_stream_with_a_timeout(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=["a", "b"], silence_after=1, hold_seconds=10))
    stream = await sdk(api, key).responses.create(model="fast", input="hi", stream=True)
    events, _ = await events_of(stream)
    assert events[-2].type == "error" and events[-2].code == "timeout" and "chunk_gap" in events[-2].message


async def test_a_client_that_hangs_up_closes_the_provider_request(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(400)], interval=0.02))
    async with httpx.AsyncClient(trust_env=False, headers={"Authorization": f"Bearer {key}"}) as c:
        body = {"model": "fast", "input": "hi", "stream": True}
        async with c.stream("POST", v1(api) + "/responses", json=body) as response:
            lines = response.aiter_lines()
            while "w2" not in await anext(lines):
                pass
    record = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: record.closed_by_client is not None, timeout=5)
    assert len(record.chunk_times) < 100  # it stopped long before the end


async def test_a_client_that_gives_up_on_a_whole_response_closes_the_provider_request(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(400)], interval=0.02))
    async with httpx.AsyncClient(trust_env=False, headers={"Authorization": f"Bearer {key}"}) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post(v1(api) + "/responses", json={"model": "fast", "input": "hi"}, timeout=0.5)
    record = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: record.closed_by_client is not None, timeout=5)
    assert len(record.chunk_times) < 100


async def test_the_per_user_limit_counts_responses_too(api, fake_upstream, key):
    fake_upstream.script(*[Script(chunks=["a", "b"], interval=1.0)] * 2)
    client = sdk(api, key)
    running = [
        asyncio.ensure_future(client.responses.create(model="fast", input="hi")),
        asyncio.ensure_future(client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])),
    ]
    assert await fake_upstream.until(lambda: len(fake_upstream.received) == 2)
    with pytest.raises(openai.RateLimitError) as raised:
        await client.responses.create(model="fast", input="hi")
    assert "limit is 2" in raised.value.message
    whole, chat = await asyncio.gather(*running)
    assert whole.output_text == "ab" and chat.choices[0].message.content == "ab"


async def test_responses_are_in_the_ledger_under_the_principal(api, fake_upstream, key, jp_serverapp):
    client = sdk(api, key)
    await client.responses.create(model="fast", input="hi")
    async for _ in await client.responses.create(model="other", input="hi", stream=True):
        pass
    fake_upstream.script(Script(status=429))
    with pytest.raises(openai.RateLimitError):
        await client.responses.create(model="fast", input="hi")

    usage = await jp_serverapp.web_app.settings["cellmage"].store.usage(key_owner())
    rows = {r["model"]: r for r in usage["by_day"]}
    assert rows["fast"]["answers"] == 2 and rows["other"]["answers"] == 1
    assert usage["total"]["prompt_tokens"] == 14 and usage["total"]["completion_tokens"] == 6


async def test_a_stream_that_ends_unfinished_is_an_error_not_a_completed_response(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=["partial ", "answer"], send_done=False, finish_reason=""))
    stream = await sdk(api, key).responses.create(model="fast", input="hi", stream=True)
    events, _ = await events_of(stream)
    kinds = [e.type for e in events]
    assert "response.completed" not in kinds and kinds[-1] == "response.failed"
    assert "ended before the answer was finished" in events[-2].message


async def test_a_stream_past_the_answer_limit_ends_with_too_long_and_the_provider_stops(api, fake_upstream, key):
    fake_upstream.script(ENDLESS)
    async with httpx.AsyncClient(trust_env=False, timeout=30, headers={"Authorization": f"Bearer {key}"}) as c:
        async with c.stream("POST", v1(api) + "/responses", json={"model": "fast", "input": "hi", "stream": True}) as response:
            frames = [json.loads(line[6:]) async for line in response.aiter_lines() if line.startswith("data: ")]
    deltas = sum(len(json.dumps(f)) for f in frames if f["type"] == "response.output_text.delta")
    assert deltas <= LIMIT
    assert frames[-2]["type"] == "error" and frames[-2]["code"] == "too_long"
    assert "limits.max_answer_bytes" in frames[-2]["message"] and frames[-1]["type"] == "response.failed"
    upstream = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=10)


async def test_a_whole_response_past_the_answer_limit_is_a_502_the_sdk_raises(api, fake_upstream, key):
    fake_upstream.script(ENDLESS)
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk(api, key).responses.create(model="fast", input="hi")
    assert raised.value.status_code == 502 and "limits.max_answer_bytes" in raised.value.message
    upstream = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: upstream.closed_by_client is not None, timeout=10)


@pytest.mark.parametrize(
    "body,words",
    [
        ('{"model": "fast", "input": ' + "[" * 70 + "]" * 70 + "}", "nested deeper"),
        ('{"model": "fast", "input": "x", "temperature": NaN}', "NaN"),
    ],
    ids=["nested 70 deep", "NaN"],
)
async def test_bad_input_is_a_400_that_says_why(api, fake_upstream, key, body, words):
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        response = await c.post(
            v1(api) + "/responses", content=body.encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400 and words in response.json()["error"]["message"]
    assert fake_upstream.received == []
