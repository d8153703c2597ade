"""OpenAI's Responses API on ``cellmage/v1/responses``, driven by the openai SDK against a real
Jupyter server and the fake upstream (which speaks chat completions only), on both provider paths:
what the SDK gets, whole and streamed, and the chat completion that reached the provider."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from cellmage_server.routes.openai.scoped_key import key_owner

from .conftest import PROVIDER_PATHS, SECRET
from .fake_upstream import FakeUpstream, Script
from .openai_support import scoped_key, sdk, toml

WEATHER = {
    "type": "function", "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": True,
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


async def test_a_whole_response_has_the_text_and_usage(api, fake_upstream, key, provider_path):
    response = await sdk(api, key).responses.create(
        model="fast", input="hi", instructions="be brief", temperature=0.3, max_output_tokens=5000
    )

    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Hello, world" and response.model == "fast"
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage.input_tokens == 7 and response.usage.output_tokens == 3 and response.usage.total_tokens == 10
    assert response.id.startswith("resp_") and response.instructions == "be brief"
    sent = fake_upstream.received[-1]
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "fake-fast"
    assert sent.body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert sent.body["temperature"] == 0.3 and sent.body["max_tokens"] == 1000  # capped
    if provider_path == "lean":  # litellm passes `user` only to the providers its tables say take it
        assert sent.body["user"] == key_owner()
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"  # the server's key, never the client's
    assert key not in json.dumps(sent.headers) + json.dumps(sent.body)


async def test_a_streamed_response_is_the_event_sequence_the_sdk_checks(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=["a", "b", "c"], interval=0.02))
    stream = await sdk(api, key).responses.create(model="other", input=[{"role": "user", "content": "hi"}], stream=True)
    events = [event async for event in stream]

    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["a", "b", "c"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1].response
    assert done.output_text == "abc" and done.usage.output_tokens == 3 and done.status == "completed"
    assert events[-4].text == "abc" and events[-2].item.content[0].text == "abc"
    assert fake_upstream.received[-1].body["model"] == "fake-other"


async def test_the_sdks_stream_helper_accumulates_the_same_response(api, fake_upstream, key):
    client = sdk(api, key)
    async with client.responses.stream(model="fast", input="hi") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello, world"


async def test_a_tool_round_trip(api, fake_upstream, key):
    fake_upstream.script(
        Script(chunks=[], tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}], finish_reason="tool_calls"),
        Script(chunks=["It is sunny."]),
    )
    client = sdk(api, key)
    first = await client.responses.create(model="fast", input="Weather in Paris?", tools=[WEATHER], tool_choice="auto")

    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id == "call_fake_0" and first.status == "completed"
    sent = fake_upstream.received[-1].body
    assert sent["tools"] == [{"type": "function", "function": {k: WEATHER[k] for k in ("name", "description", "parameters", "strict")}}]
    assert sent["tool_choice"] == "auto"

    # The next turn sends the call back with its output, as the SDK's docs show: stateless
    items = [{"role": "user", "content": "Weather in Paris?"}, call.model_dump(exclude_none=True),
             {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    second = await client.responses.create(model="fast", input=items, tools=[WEATHER])
    assert second.output_text == "It is sunny."
    messages = fake_upstream.received[-1].body["messages"]
    assert messages[1].get("content") is None  # (litellm leaves the null out)
    assert {k: v for k, v in messages[1].items() if k != "content"} == {
        "role": "assistant",
        "tool_calls": [{"id": "call_fake_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call_fake_0", "content": "sunny"}


async def test_streamed_function_call_arguments_arrive_in_pieces(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=["Let me look."], tool_calls=[{"name": "get_weather", "arguments": '{"city": "Oslo"}'}], finish_reason="tool_calls"))
    client = sdk(api, key)
    async with client.responses.stream(model="fast", input="?", tools=[WEATHER]) as stream:
        events = [e async for e in stream]
        final = await stream.get_final_response()

    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(pieces) == 2 and "".join(pieces) == '{"city": "Oslo"}'
    assert [e.type for e in events].count("response.function_call_arguments.done") == 1
    message, call = final.output
    assert message.content[0].text == "Let me look." and call.arguments == '{"city": "Oslo"}'
    assert call.parsed_arguments == {"city": "Oslo"}  # a strict tool: the SDK parses it


class Answer(BaseModel):
    city: str
    degrees: int


async def test_parse_with_a_pydantic_model_sends_a_json_schema(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=['{"city": "Oslo",', ' "degrees": 3}']))
    parsed = await sdk(api, key).responses.parse(model="fast", input="weather?", text_format=Answer)

    assert parsed.output_parsed == Answer(city="Oslo", degrees=3)
    sent = fake_upstream.received[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Answer"
    assert sent["json_schema"]["strict"] is True and sent["json_schema"]["schema"]["required"] == ["city", "degrees"]
    assert parsed.text.format.type == "json_schema"


async def test_an_answer_cut_by_max_output_tokens_is_incomplete(api, fake_upstream, key):
    fake_upstream.script(Script(chunks=["Hel"], finish_reason="length"), Script(chunks=["Hel"], finish_reason="length"))
    client = sdk(api, key)
    whole = await client.responses.create(model="fast", input="hi", max_output_tokens=20)
    assert whole.status == "incomplete" and whole.incomplete_details.reason == "max_output_tokens"
    assert whole.output_text == "Hel" and whole.max_output_tokens == 20
    assert fake_upstream.received[-1].body["max_tokens"] == 20

    stream = await client.responses.create(model="fast", input="hi", stream=True)
    last = [e async for e in stream][-1]
    assert last.type == "response.incomplete" and last.response.incomplete_details.reason == "max_output_tokens"


async def test_content_parts_images_and_every_role_translate(api, fake_upstream, key, provider_path):
    items = [
        {"role": "developer", "content": [{"type": "input_text", "text": "be exact"}]},
        {"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
        ]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a pixel", "annotations": []}]},
        {"role": "user", "content": "sure?"},
    ]
    await sdk(api, key).responses.create(model="fast", input=items, top_p=0.9, reasoning={"effort": "low"})
    sent = fake_upstream.received[-1].body
    expected = [
        {"role": "developer", "content": "be exact"},
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        ]},
        {"role": "assistant", "content": "a pixel"},
        {"role": "user", "content": "sure?"},
    ]
    if provider_path == "litellm":  # litellm writes `developer` as `system` for models it does not know
        expected[0]["role"] = "system"
    assert sent["messages"] == expected
    assert sent["top_p"] == 0.9
    if provider_path == "lean":  # litellm drops what its tables say this model lacks
        assert sent["reasoning_effort"] == "low"
