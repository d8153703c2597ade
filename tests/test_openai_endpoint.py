"""The OpenAI-compatible endpoint, driven by the openai SDK against a real Jupyter server and the
fake upstream, on both provider paths: what the client gets, and what reached the provider."""

from __future__ import annotations

import json

import openai
import pytest

from cellmage_server.routes.openai.scoped_key import key_owner

from .conftest import PROVIDER_PATHS, SECRET
from .fake_upstream import FakeUpstream, Script
from .openai_support import scoped_key, sdk, toml

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(params=PROVIDER_PATHS)
def provider_path(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream, provider_path: str) -> str:
    return toml(fake_upstream, provider_path)


@pytest.fixture
def key(jp_serverapp) -> str:
    return scoped_key(jp_serverapp)


async def test_a_streamed_answer_arrives_as_chunks_then_done(api, fake_upstream, key, provider_path):
    client = sdk(api, key)
    stream = await client.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hi"}], stream=True, temperature=0.3, seed=7
    )
    chunks = [chunk async for chunk in stream]

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello, world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks)  # not asked for
    sent = fake_upstream.received[-1]
    assert sent.body["model"] == "fake-fast"
    assert sent.body["temperature"] == 0.3 and sent.body["seed"] == 7
    assert sent.body["max_tokens"] == 1000  # the server's cap, sent when the client sets none
    if provider_path == "lean":  # litellm passes `user` only to the providers its tables say take it
        assert sent.body["user"] == key_owner()
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"  # the server's key, never the client's
    assert key not in json.dumps(sent.headers) + json.dumps(sent.body)


async def test_usage_comes_as_the_last_chunk_when_asked(api, fake_upstream, key):
    stream = await sdk(api, key).chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 7
    assert chunks[-1].usage.completion_tokens == 3


async def test_a_whole_answer_is_one_completion_with_usage(api, fake_upstream, key):
    answer = await sdk(api, key).chat.completions.create(
        model="other", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        max_completion_tokens=5000,
    )

    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "Hello, world"
    assert answer.choices[0].message.role == "assistant" and answer.choices[0].finish_reason == "stop"
    assert answer.usage.total_tokens == 10
    sent = fake_upstream.received[-1].body
    assert sent["model"] == "fake-other" and sent["max_completion_tokens"] == 1000  # capped
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


async def test_tool_calls_stream_back_and_the_round_trip_goes_on(api, fake_upstream, key):
    fake_upstream.script(
        Script(chunks=[], tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}], finish_reason="tool_calls"),
        Script(chunks=["It is sunny."]),
    )
    client = sdk(api, key)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = await client.chat.completions.create(model="fast", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")

    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert fake_upstream.received[-1].body["tools"] == [WEATHER_TOOL]
    assert fake_upstream.received[-1].body["tool_choice"] == "auto"

    messages += [first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = await client.chat.completions.create(model="fast", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is sunny."
    sent = fake_upstream.received[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


async def test_streamed_tool_calls_arrive_in_pieces(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=[], tool_calls=[{"name": "get_weather", "arguments": '{"city": "Oslo"}'}], finish_reason="tool_calls"))
    stream = await sdk(api, key).chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "?"}], tools=[WEATHER_TOOL], stream=True
    )
    pieces = [tc for chunk in [c async for c in stream] if chunk.choices for tc in (chunk.choices[0].delta.tool_calls or [])]

    assert pieces[0].id == "call_fake_0" and pieces[0].function.name == "get_weather"
    assert "".join(p.function.arguments or "" for p in pieces) == '{"city": "Oslo"}'


async def test_json_mode_and_schema_reach_the_provider(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=['{"a":', " 1}"]))
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    answer = await sdk(api, key).chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "json"}], response_format={"type": "json_object"}
    )
    assert json.loads(answer.choices[0].message.content) == {"a": 1}
    assert fake_upstream.received[-1].body["response_format"] == {"type": "json_object"}

    await sdk(api, key).chat.completions.create(model="fast", messages=[{"role": "user", "content": "j"}], response_format=schema)
    assert fake_upstream.received[-1].body["response_format"] == schema


async def test_models_lists_and_retrieves_the_allowed_aliases(api, key):
    client = sdk(api, key)
    listed = [m.id async for m in client.models.list()]
    assert listed == ["fast", "other", "embed"]  # not "hidden": declared but not allowed
    assert (await client.models.retrieve("other")).id == "other"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("hidden")


async def test_embeddings_for_an_embedding_alias(api, fake_upstream, key, provider_path):
    client = sdk(api, key)
    result = await client.embeddings.create(model="embed", input=["one two", "three"])

    assert [d.embedding for d in result.data] == [[7.0, 0.5, -0.5, 0.0], [5.0, 0.5, -0.5, 1.0]]
    assert result.usage.prompt_tokens == 3
    sent = fake_upstream.received[-1]
    assert sent.path == "/v1/embeddings" and sent.body["model"] == "fake-embed"
    assert sent.body["input"] == ["one two", "three"]
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    if provider_path == "lean":
        assert sent.body["user"] == key_owner()
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(model="fast", input="x")  # a chat model
    # (litellm 1.106's embeddings retry a 429 twice inside, whatever max_retries says: script three)
    fake_upstream.script(*[Script(status=429, retry_after="0")] * 3)
    with pytest.raises(openai.RateLimitError) as raised:
        await client.embeddings.create(model="embed", input="x")
    assert raised.value.response.headers["retry-after"] == "0"


async def test_the_chat_endpoint_refuses_an_embedding_model(api, fake_upstream):
    response = await api.post("chat", {"prompt": "x", "model": "embed", "stream": False})
    assert response.status_code == 400 and "embedding" in response.json()["message"]
    assert fake_upstream.received == []


async def test_a_route_not_served_is_an_openai_404_that_names_what_to_use(api, key):
    client = sdk(api, key)
    with pytest.raises(openai.NotFoundError) as raised:
        await client.completions.create(model="fast", prompt="hi")
    assert "cellmage/v1/completions is not served" in raised.value.message
    assert "use chat/completions or responses" in raised.value.message
    with pytest.raises(openai.NotFoundError) as raised:
        await client.responses.retrieve("resp_0123")
    assert "not stored here" in raised.value.message and "'input'" in raised.value.message
    with pytest.raises(openai.NotFoundError) as raised:
        await client.files.list()
    assert "send images and files inline" in raised.value.message


async def test_every_role_and_content_parts_pass_unchanged(api, fake_upstream, key, provider_path):
    messages = [
        {"role": "developer", "content": "be exact"},
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        ]},
        {"role": "assistant", "content": "a pixel"},
        {"role": "user", "content": "sure?"},
    ]
    await sdk(api, key).chat.completions.create(model="fast", messages=messages, stop=["\n\n"], top_p=0.9, n=1)
    sent = fake_upstream.received[-1].body
    if provider_path == "litellm":  # litellm writes `developer` as `system` for models it does not know
        messages[0]["role"] = "system"
    assert sent["messages"] == messages
    assert sent["stop"] == ["\n\n"] and sent["top_p"] == 0.9 and sent["n"] == 1
