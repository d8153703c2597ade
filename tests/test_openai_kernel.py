"""The libraries people use in notebooks, in a real kernel started through the server, with no
provider key in its environment and no setup: the openai SDK (sync, async, streamed, whole, tools,
JSON mode, models, embeddings) and litellm, answering from the fake upstream through the endpoint."""

from __future__ import annotations

import json
import os

import pytest

from cellmage_server.routes.openai.scoped_key import key_owner

from .conftest import KEY_ENV, SECRET
from .fake_upstream import FakeUpstream, Script
from .helpers import printed_json
from .kernel import Kernel
from .openai_support import scoped_key, toml


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml(fake_upstream)


async def test_the_kernel_has_the_endpoint_and_the_scoped_key_and_no_provider_key(kernel, jp_serverapp, jp_http_port, jp_base_url):
    env = await printed_json(kernel, "import os, json; print(json.dumps(dict(os.environ)))")

    assert KEY_ENV not in env and all(SECRET not in v for v in env.values())
    assert env["OPENAI_BASE_URL"] == f"http://127.0.0.1:{jp_http_port}{jp_base_url}cellmage/v1"
    assert env["OPENAI_API_KEY"] == scoped_key(jp_serverapp)
    # Only kernels have them: the server's own litellm would read OPENAI_BASE_URL and call itself
    assert "OPENAI_BASE_URL" not in os.environ and os.environ.get("OPENAI_API_KEY") != scoped_key(jp_serverapp)


async def test_the_openai_sdk_works_with_zero_setup(kernel, fake_upstream, jp_serverapp):
    # Whole, then streamed, with the client built from the environment alone
    whole = await printed_json(
        kernel,
        "from openai import OpenAI; import json\n"
        "client = OpenAI()\n"
        "r = client.chat.completions.create(model='fast', messages=[{'role': 'user', 'content': 'hi'}], temperature=0.5)\n"
        "print(json.dumps([r.choices[0].message.content, r.usage.total_tokens]))",
    )
    assert whole == ["Hello, world", 10]
    sent = fake_upstream.received[-1]
    assert sent.body["model"] == "fake-fast" and sent.body["temperature"] == 0.5
    assert sent.body["user"] == key_owner()
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"

    fake_upstream.script(Script(chunks=["a", "b", "c"], interval=0.05))
    streamed = await printed_json(
        kernel,
        "s = client.chat.completions.create(model='other', messages=[{'role': 'user', 'content': 'hi'}], stream=True,\n"
        "                                   stream_options={'include_usage': True})\n"
        "parts = [c.choices[0].delta.content or '' if c.choices else f'[{c.usage.completion_tokens}]' for c in s]\n"
        "print(json.dumps(parts))",
    )
    assert "".join(streamed) == "abc[3]" and len(streamed) >= 4
    assert fake_upstream.received[-1].body["model"] == "fake-other"

    # The async client
    answer = await printed_json(
        kernel,
        "from openai import AsyncOpenAI\n"
        "r = await AsyncOpenAI().chat.completions.create(model='fast', messages=[{'role': 'user', 'content': 'x'}])\n"
        "print(json.dumps(r.choices[0].message.content))",
    )
    assert answer == "Hello, world"

    # models.list() and embeddings
    listed = await printed_json(kernel, "print(json.dumps([m.id for m in client.models.list()]))")
    assert listed == ["fast", "other", "embed"]
    vectors = await printed_json(
        kernel, "e = client.embeddings.create(model='embed', input=['a b c']); print(json.dumps(e.data[0].embedding))"
    )
    assert vectors == [5.0, 0.5, -0.5, 0.0] and fake_upstream.received[-1].path == "/v1/embeddings"

    # The ledger has every answer, under the principal
    usage = await jp_serverapp.web_app.settings["cellmage"].store.usage(key_owner())
    assert {r["model"]: r["answers"] for r in usage["by_day"]} == {"fast": 2, "other": 1, "embed": 1}


async def test_a_tool_call_round_trip_and_json_mode(kernel, fake_upstream):
    fake_upstream.script(
        Script(chunks=[], tool_calls=[{"name": "add", "arguments": '{"a": 2, "b": 3}'}], finish_reason="tool_calls"),
        Script(chunks=["5"]),
        Script(chunks=['{"sum": 5}']),
    )
    out = await printed_json(
        kernel,
        "from openai import OpenAI; import json\n"
        "client = OpenAI()\n"
        "tools = [{'type': 'function', 'function': {'name': 'add', 'parameters': {'type': 'object', 'properties':\n"
        "          {'a': {'type': 'integer'}, 'b': {'type': 'integer'}}}}}]\n"
        "messages = [{'role': 'user', 'content': 'What is 2 + 3?'}]\n"
        "first = client.chat.completions.create(model='fast', messages=messages, tools=tools)\n"
        "call = first.choices[0].message.tool_calls[0]\n"
        "args = json.loads(call.function.arguments)\n"
        "messages += [first.choices[0].message, {'role': 'tool', 'tool_call_id': call.id, 'content': str(args['a'] + args['b'])}]\n"
        "second = client.chat.completions.create(model='fast', messages=messages, tools=tools)\n"
        "mode = client.chat.completions.create(model='fast', messages=[{'role': 'user', 'content': 'json'}],\n"
        "                                      response_format={'type': 'json_object'})\n"
        "print(json.dumps([call.function.name, args, second.choices[0].message.content, json.loads(mode.choices[0].message.content)]))",
    )
    assert out == ["add", {"a": 2, "b": 3}, "5", {"sum": 5}]
    round_trip = fake_upstream.received[1].body["messages"]
    assert [m["role"] for m in round_trip] == ["user", "assistant", "tool"]
    assert round_trip[2]["content"] == "5" and round_trip[1]["tool_calls"][0]["function"]["name"] == "add"
    assert fake_upstream.received[2].body["response_format"] == {"type": "json_object"}


async def test_litellm_in_the_kernel_reaches_the_endpoint(kernel, fake_upstream, jp_serverapp):
    fake_upstream.script(Script(), Script(chunks=["x", "y"]))
    out = await printed_json(
        kernel,
        "import litellm, json\n"
        "r = litellm.completion(model='openai/fast', messages=[{'role': 'user', 'content': 'hi'}], max_tokens=20)\n"
        "s = litellm.completion(model='openai/other', messages=[{'role': 'user', 'content': 'hi'}], stream=True)\n"
        "print(json.dumps([r.choices[0].message.content, ''.join(c.choices[0].delta.content or '' for c in s)]))",
    )
    assert out == ["Hello, world", "xy"]
    first, second = fake_upstream.received
    assert first.body["model"] == "fake-fast" and first.body["max_tokens"] == 20
    assert second.body["model"] == "fake-other"
    for sent in fake_upstream.received:
        assert sent.body["user"] == key_owner()
        assert sent.headers["Authorization"] == f"Bearer {SECRET}"
        assert scoped_key(jp_serverapp) not in json.dumps(sent.headers) + json.dumps(sent.body)


async def test_breaking_off_a_stream_in_the_kernel_closes_the_provider_request(kernel, fake_upstream):
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(300)], interval=0.02))
    got = await printed_json(
        kernel,
        "from openai import OpenAI; import json\n"
        "s = OpenAI().chat.completions.create(model='fast', messages=[{'role': 'user', 'content': 'long'}], stream=True)\n"
        "got = []\n"
        "for c in s:\n"
        "    got.append(c.choices[0].delta.content or '')\n"
        "    if len(got) == 4:\n"
        "        s.close(); break\n"
        "print(json.dumps(got))",
    )
    assert "".join(got).startswith("w0 ")
    record = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: record.closed_by_client is not None, timeout=5)
    assert len(record.chunk_times) < 100


async def test_a_key_the_user_sets_in_the_notebook_wins(kernel, fake_upstream):
    out = await printed_json(
        kernel,
        "import os, json, openai\n"
        "os.environ['OPENAI_API_KEY'] = 'sk-my-own-key'\n"
        "client = openai.OpenAI(max_retries=0)\n"
        "try:\n"
        "    client.models.list(); status = 200\n"
        "except openai.AuthenticationError as e:\n"
        "    status = e.status_code\n"
        "print(json.dumps([client.api_key, status]))",
    )
    # The SDK uses the user's key; this server does not take it (it is no credential here)
    assert out == ["sk-my-own-key", 401]
    assert fake_upstream.received == []


async def test_a_notebooks_kernel_gets_them_too(api, jp_serverapp, jp_root_dir):
    # JupyterLab starts a notebook's kernel through a session, which passes its own environment
    (jp_root_dir / "nb.ipynb").write_text("")
    kernel = await Kernel(api, jp_serverapp).start(notebook="nb.ipynb")
    try:
        env = await printed_json(kernel, "import os, json; print(json.dumps(dict(os.environ)))")
    finally:
        await kernel.stop()
    assert env["OPENAI_API_KEY"] == scoped_key(jp_serverapp) and env["OPENAI_BASE_URL"].endswith("/cellmage/v1")
    assert env["JPY_SESSION_NAME"].endswith("nb.ipynb")
