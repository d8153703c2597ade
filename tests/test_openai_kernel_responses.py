"""The Responses API from a real kernel started through the server, with no provider key and no
setup: the openai SDK's ``responses.create`` and ``responses.parse``, pydantic-ai's ``openai:``
default and the OpenAI Agents SDK's default runner (both on the Responses API), answering from the
fake upstream, which speaks chat completions only."""

from __future__ import annotations

import json

import pytest

from cellmage_server.routes.openai.scoped_key import key_owner

from .conftest import SECRET
from .fake_upstream import FakeUpstream, Script
from .helpers import printed_json
from .openai_support import scoped_key, toml


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml(fake_upstream)


def add_call(a: int, b: int, name: str = "add") -> Script:
    return Script(chunks=[], tool_calls=[{"name": name, "arguments": json.dumps({"a": a, "b": b})}], finish_reason="tool_calls")


def paths(fake_upstream: FakeUpstream) -> set[str]:
    return {r.path for r in fake_upstream.received}


async def test_the_openai_sdks_responses_api_works_with_zero_setup(kernel, fake_upstream, jp_serverapp):
    fake_upstream.script(Script(), Script(chunks=["a", "b", "c"], interval=0.02), add_call(2, 3), Script(chunks=["5"]),
                         Script(chunks=['{"city": "Oslo", "degrees": 3}']))
    out = await printed_json(
        kernel,
        "from openai import OpenAI; import json\n"
        "from pydantic import BaseModel\n"
        "client = OpenAI()\n"
        "whole = client.responses.create(model='fast', input='hi', instructions='be brief')\n"
        "deltas = [e.delta for e in client.responses.create(model='fast', input='hi', stream=True)\n"
        "          if e.type == 'response.output_text.delta']\n"
        "tools = [{'type': 'function', 'name': 'add', 'strict': True, 'parameters': {'type': 'object',\n"
        "          'properties': {'a': {'type': 'integer'}, 'b': {'type': 'integer'}}, 'required': ['a', 'b'],\n"
        "          'additionalProperties': False}}]\n"
        "items = [{'role': 'user', 'content': 'What is 2 + 3?'}]\n"
        "first = client.responses.create(model='fast', input=items, tools=tools)\n"
        "call = first.output[0]\n"
        "args = json.loads(call.arguments)\n"
        "items += [call, {'type': 'function_call_output', 'call_id': call.call_id, 'output': str(args['a'] + args['b'])}]\n"
        "second = client.responses.create(model='fast', input=items, tools=tools)\n"
        "class Weather(BaseModel):\n"
        "    city: str\n"
        "    degrees: int\n"
        "parsed = client.responses.parse(model='fast', input='weather?', text_format=Weather).output_parsed\n"
        "print(json.dumps([whole.output_text, whole.usage.total_tokens, deltas, call.name, args, second.output_text,\n"
        "                  parsed.model_dump()]))",
    )
    assert out == ["Hello, world", 10, ["a", "b", "c"], "add", {"a": 2, "b": 3}, "5", {"city": "Oslo", "degrees": 3}]
    assert paths(fake_upstream) == {"/v1/chat/completions"}
    round_trip = fake_upstream.received[3].body["messages"]
    assert [m["role"] for m in round_trip] == ["user", "assistant", "tool"] and round_trip[2]["content"] == "5"
    assert fake_upstream.received[4].body["response_format"]["json_schema"]["name"] == "Weather"
    for sent in fake_upstream.received:
        assert sent.body["user"] == key_owner() and sent.headers["Authorization"] == f"Bearer {SECRET}"
        assert scoped_key(jp_serverapp) not in json.dumps(sent.headers) + json.dumps(sent.body)
    usage = await jp_serverapp.web_app.settings["cellmage"].store.usage(key_owner())
    assert usage["total"]["answers"] == 5


async def test_pydantic_ais_openai_default_is_the_responses_api_and_works(kernel, fake_upstream):
    fake_upstream.script(Script(chunks=["Hi", " there"]), add_call(2, 3), Script(chunks=["It is 5."]))
    out = await printed_json(
        kernel,
        "import json\n"
        "from pydantic_ai import Agent\n"
        "from pydantic_ai.models.openai import OpenAIResponsesModel\n"
        "agent = Agent('openai:fast', instructions='Be brief.')\n"
        "plain = await agent.run('hello')  # run_sync cannot run inside Jupyter's event loop\n"
        "@agent.tool_plain\n"
        "def add(a: int, b: int) -> int:\n"
        "    return a + b\n"
        "tooled = await agent.run('What is 2 + 3?')\n"
        "print(json.dumps([isinstance(agent.model, OpenAIResponsesModel), plain.output, tooled.output,\n"
        "                  tooled.usage.input_tokens]))",
    )
    assert out == [True, "Hi there", "It is 5.", 14]
    assert paths(fake_upstream) == {"/v1/chat/completions"}
    first, call, answer = (r.body for r in fake_upstream.received)
    assert first["messages"][0] == {"role": "system", "content": "Be brief."} and first["model"] == "fake-fast"
    assert call["tools"][0]["function"]["name"] == "add"
    assert [m["role"] for m in answer["messages"]][-2:] == ["assistant", "tool"] and answer["messages"][-1]["content"] == "5"


async def test_pydantic_ai_names_the_model_it_cannot_find(kernel, fake_upstream):
    out = await printed_json(
        kernel,
        "import json\n"
        "from pydantic_ai import Agent\n"
        "try:\n"
        "    await Agent('openai:gpt-4o-mini').run('hi')\n"
        "except Exception as e:\n"
        "    print(json.dumps([type(e).__name__, str(e)]))",
    )
    # A 404 from the server reaches the notebook with the server's words: which models there are
    assert "gpt-4o-mini" in out[1] and "Models for this route: fast, other" in out[1], out
    assert fake_upstream.received == []


async def test_the_agents_sdks_default_runner_works(kernel, fake_upstream):
    fake_upstream.script(Script(chunks=["Hello from an agent."]), add_call(4, 5), Script(chunks=["9."]))
    out = await printed_json(
        kernel,
        "import json\n"
        "from agents import Agent, Runner, function_tool, set_tracing_disabled\n"
        "set_tracing_disabled(True)  # its traces would go to api.openai.com with the kernel's key\n"
        "plain = await Runner.run(Agent(name='greeter', instructions='Be brief.', model='fast'), 'hello')\n"
        "@function_tool\n"
        "def add(a: int, b: int) -> int:\n"
        "    '''Adds two numbers.'''\n"
        "    return a + b\n"
        "tooled = await Runner.run(Agent(name='adder', model='fast', tools=[add]), 'What is 4 + 5?')\n"
        "print(json.dumps([plain.final_output, tooled.final_output, tooled.context_wrapper.usage.requests]))",
    )
    assert out == ["Hello from an agent.", "9.", 2]
    assert paths(fake_upstream) == {"/v1/chat/completions"}
    first, call, answer = (r.body for r in fake_upstream.received)
    assert first["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    assert call["tools"][0]["function"]["name"] == "add"
    assert answer["messages"][-1]["role"] == "tool" and answer["messages"][-1]["content"] == "9"


async def test_both_libraries_stream_through_the_responses_events(kernel, fake_upstream):
    fake_upstream.script(Script(chunks=["one ", "two ", "three"], interval=0.02), add_call(1, 2),
                         Script(chunks=["3", "!"], interval=0.02))
    out = await printed_json(
        kernel,
        "import json\n"
        "from pydantic_ai import Agent\n"
        "from agents import Agent as SdkAgent, Runner, function_tool, set_tracing_disabled\n"
        "set_tracing_disabled(True)\n"
        "async with Agent('openai:fast').run_stream('count') as run:\n"
        "    pieces = [p async for p in run.stream_text(delta=True)]\n"
        "@function_tool\n"
        "def add(a: int, b: int) -> int:\n"
        "    '''Adds two numbers.'''\n"
        "    return a + b\n"
        "streamed = Runner.run_streamed(SdkAgent(name='adder', model='fast', tools=[add]), 'What is 1 + 2?')\n"
        "kinds = [e.type async for e in streamed.stream_events()]\n"
        "print(json.dumps([''.join(pieces), streamed.final_output, 'run_item_stream_event' in kinds]))",
    )
    assert out == ["one two three", "3!", True]
    assert all(r.body["stream"] is True for r in fake_upstream.received)
