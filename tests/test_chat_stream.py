"""POST chat through a real Jupyter server to the fake upstream: the happy paths of the contract."""

from __future__ import annotations

import statistics

import pytest
from tornado.web import GZipContentEncoding

from .conftest import PROVIDER_PATHS, SECRET
from .fake_upstream import Script

# The contract holds on both provider paths, against the same fake upstream.
pytestmark = pytest.mark.parametrize("provider_path", PROVIDER_PATHS)


async def test_streamed_answer_has_the_contract_events_in_order(api, fake_upstream):
    result = await api.stream({"prompt": "Say hello"})

    assert result.status == 200
    assert result.names()[0] == "start"
    assert result.names()[-2:] == ["usage", "done"]
    assert set(result.names()[1:-2]) == {"delta"}
    start = result.one("start")
    assert start["model"] == "fast" and start["persona"] is None and len(start["id"]) == 32
    assert result.text() == "Hello, world"
    assert result.one("usage") == {
        "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "cost_usd": None,
    }
    done = result.one("done")
    assert done["finish_reason"] == "stop" and done["elapsed_ms"] >= 0


async def test_stream_headers_say_event_stream_uncached_unbuffered(api):
    result = await api.stream({"prompt": "hi"})

    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.headers["cache-control"] == "no-cache"
    assert result.headers["x-accel-buffering"] == "no"


async def test_stream_is_not_gzipped_even_when_the_server_compresses(api, jp_serverapp):
    # Given a server that compresses responses (what compress_response=True installs)
    jp_serverapp.web_app.add_transform(GZipContentEncoding)
    try:
        # When a client that accepts gzip asks for a stream
        async with api.open_stream({"prompt": "hi"}, headers={**api.headers, "Accept-Encoding": "gzip"}) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
            encoding = r.headers.get("content-encoding")
        # Then the event stream is sent as is
        assert encoding is None
        assert raw.startswith(b": cellmage\n\n")
        # While an ordinary JSON route of the same server is compressed: the transform is live
        async with api.client() as c:
            spec = await c.get(api.base + "api/spec.yaml", headers={"Accept-Encoding": "gzip"})
        assert spec.headers.get("content-encoding") == "gzip"
    finally:
        jp_serverapp.web_app.transforms.remove(GZipContentEncoding)


async def test_deltas_arrive_incrementally_at_the_upstreams_pace(api, fake_upstream):
    # Given an upstream that sends 8 chunks 80 ms apart
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(8)], interval=0.08))

    result = await api.stream({"prompt": "slowly"})

    deltas = [e for e in result.events if e.name == "delta"]
    # Then each chunk is its own frame, received spread out like the upstream sent them
    assert [d.data["text"] for d in deltas] == [f"w{i} " for i in range(8)]
    gaps = [b.at - a.at for a, b in zip(deltas, deltas[1:])]
    assert statistics.median(gaps) > 0.04  # spread out, not delivered in one burst at the end
    sent = fake_upstream.received[0].chunk_times
    assert deltas[-1].at - deltas[0].at > 0.5 * (sent[-3] - sent[1])


async def test_the_first_comment_and_start_arrive_before_the_upstream_answers(api, fake_upstream):
    # Given an upstream that thinks for a while before its first token
    fake_upstream.script(Script(first_delay=0.5))

    async with api.open_stream({"prompt": "think"}) as response:
        first = await response.aiter_raw().__anext__()
        # Then the client already holds the comment line and the start event
        assert first.startswith(b": cellmage\n\nevent: start\n")
        # (at most the upstream's role-only first chunk has been sent, no answer text)
        assert sum(len(r.chunk_times) for r in fake_upstream.received) <= 1


async def test_deltas_within_one_loop_turn_are_coalesced(api, fake_upstream):
    # Given an upstream that sends 200 chunks back to back
    chunks = [f"{i}," for i in range(200)]
    fake_upstream.script(Script(chunks=chunks))

    result = await api.stream({"prompt": "burst"})

    deltas = [e for e in result.events if e.name == "delta"]
    assert result.text() == "".join(chunks)
    assert len(deltas) < len(chunks)  # several chunks per frame


async def test_whole_answer_without_streaming(api, fake_upstream):
    response = await api.post("chat", {"prompt": "hi", "stream": False})

    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "Hello, world"
    assert body["model"] == "fast"
    assert body["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == 10
    assert set(body) == {"id", "model", "text", "usage", "finish_reason", "elapsed_ms"}


async def test_the_upstream_gets_the_resolved_call_and_the_servers_key(api, fake_upstream):
    await api.stream({"prompt": "Explain", "model": "other", "temperature": 0.8, "max_tokens": 99})

    sent = fake_upstream.received[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert sent.body["model"] == "fake-other"
    assert sent.body["temperature"] == 0.8
    assert sent.body["max_tokens"] == 99
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"] == [{"role": "user", "content": "Explain"}]


async def test_defaults_come_from_config_when_the_request_is_silent(api, fake_upstream):
    await api.stream({"prompt": "x"})

    sent = fake_upstream.received[0].body
    assert sent["model"] == "fake-fast"  # default_model
    assert sent["max_tokens"] == 1000  # limits.max_tokens
    assert "temperature" not in sent


async def test_a_persona_sets_the_system_prompt_and_its_defaults(api, fake_upstream):
    result = await api.stream({"prompt": "async in JS?", "persona": "code_expert"})

    assert result.one("start")["persona"] == "code_expert"
    sent = fake_upstream.received[0].body
    assert sent["messages"][0]["role"] == "system"
    assert "senior software engineer" in sent["messages"][0]["content"]
    assert sent["messages"][1] == {"role": "user", "content": "async in JS?"}
    assert sent["temperature"] == 0.2  # from the persona's front matter


async def test_models_personas_and_status_routes(api):
    models = (await api.get("models")).json()
    assert models == {
        "default": "fast",
        "models": [
            {"name": "fast", "description": "The fake upstream", "available": True},
            {"name": "other", "description": "", "available": True},
        ],
    }

    personas = (await api.get("personas")).json()
    names = [p["name"] for p in personas]
    assert {"code_expert", "teacher", "concise"} <= set(names)
    code_expert = next(p for p in personas if p["name"] == "code_expert")
    # the list names them (the system prompt is GET personas/{name}'s)
    assert set(code_expert) == {"name", "description", "model", "temperature", "title", "source"}
    assert code_expert["source"] == "built-in" and code_expert["title"] is None

    status = (await api.get("status")).json()
    assert status["configured"] is True
    assert status["default_model"] == "fast"
    assert status["version"]


async def test_a_finish_reason_of_length_is_passed_on(api, fake_upstream):
    fake_upstream.script(Script(finish_reason="length"))

    result = await api.stream({"prompt": "long"})

    assert result.one("done")["finish_reason"] == "length"
    assert "error" not in result.names()


async def test_answers_without_provider_usage_have_none_or_litellms_count(api, fake_upstream, provider_path):
    fake_upstream.script(Script(usage=None))

    result = await api.stream({"prompt": "x"})

    assert result.names()[-1] == "done"
    if provider_path == "lean":
        assert "usage" not in result.names()  # nothing is invented
    else:
        assert result.one("usage")["completion_tokens"] >= 1  # litellm counts with its tokenizer
