"""The pure parts of the OpenAI-compatible endpoint: the field tables, checking and translating a
request, and assembling a whole answer from streamed chunks."""

from __future__ import annotations

import pytest

from cellmage_server.config import CellmageSettings
from cellmage_server.routes.openai import fields, responses_fields
from cellmage_server.routes.openai.errors import InvalidRequest, ModelNotFound, ProviderStatus, client_status, described
from cellmage_server.routes.openai.wire import Assembler, frames_to_chunks

SETTINGS = CellmageSettings(
    models={
        "chat": {"model": "openai/x", "api_base": "http://127.0.0.1:1/v1"},
        "hidden": {"model": "openai/y", "api_base": "http://127.0.0.1:1/v1"},
        "vec": {"model": "openai/e", "api_base": "http://127.0.0.1:1/v1", "kind": "embedding"},
    },
    allowed_models=["chat", "vec"],
    limits={"max_tokens": 500},
    openai_endpoint={"max_n": 2},
)
HI = [{"role": "user", "content": "hi"}]


def test_the_tables_do_not_overlap():
    assert not fields.CHAT_PASSED & fields.CHAT_DROPPED
    assert not (fields.CHAT_PASSED | fields.CHAT_DROPPED) & fields.REFUSED
    assert not fields.EMBEDDINGS_PASSED & fields.REFUSED


def test_a_request_becomes_the_providers_body():
    data = {
        "model": "chat", "messages": HI, "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0.2, "tools": [{"type": "function", "function": {"name": "f"}}], "user": "someone-else",
        "max_tokens": 9999, "n": 2, "store": True, "metadata": {"a": "b"}, "logprobs": None,
    }
    out = fields.chat_request(data, SETTINGS, "alice")

    assert out.alias == "chat" and out.stream and out.include_usage
    assert out.dropped == ("metadata", "store")
    assert out.body == {
        "messages": HI, "temperature": 0.2, "tools": data["tools"], "user": "alice", "max_tokens": 500, "n": 2,
        "stream": True, "stream_options": {"include_usage": True},
    }


def test_the_cap_is_sent_when_the_client_sets_no_limit_and_usage_is_always_asked_for():
    out = fields.chat_request({"model": "chat", "messages": HI}, SETTINGS, "alice")
    assert out.body["max_tokens"] == 500 and "max_completion_tokens" not in out.body
    assert out.body["stream_options"] == {"include_usage": True} and not out.include_usage and not out.stream


@pytest.mark.parametrize(
    "data,param",
    [
        ({"model": "chat", "messages": HI, "api_base": "x", "api_key": "y"}, "api_base"),
        ({"model": "chat", "messages": HI, "zzz": 1, "yyy": 2}, "yyy"),
        ({"messages": HI}, "model"),
        ({"model": "chat", "messages": "hi"}, "messages"),
        ({"model": "chat", "messages": [{"role": "boss", "content": "x"}]}, "messages[0].role"),
        ({"model": "chat", "messages": HI, "n": 3}, "n"),
        ({"model": "chat", "messages": HI, "max_tokens": 0}, "max_tokens"),
        ({"model": "chat", "messages": HI, "top_p": True}, "top_p"),
        ({"model": "vec", "messages": HI}, "model"),
    ],
)
def test_bad_requests_name_the_field(data, param):
    with pytest.raises(InvalidRequest) as raised:
        fields.chat_request(data, SETTINGS, "alice")
    assert raised.value.param == param
    assert described(raised.value)[0] == 400


@pytest.mark.parametrize("alias", ["hidden", "gpt-4o"])
def test_an_alias_not_allowed_is_not_found_and_not_revealed(alias):
    with pytest.raises(ModelNotFound) as raised:
        fields.chat_request({"model": alias, "messages": HI}, SETTINGS, "alice")
    status, body, _ = described(raised.value)
    assert status == 404 and body["error"]["code"] == "model_not_found"
    assert "hidden" not in body["error"]["message"].split(":")[-1]


def test_embeddings_requests():
    out = fields.embeddings_request({"model": "vec", "input": ["a", "b"], "dimensions": 4, "user": "x"}, SETTINGS, "alice")
    assert out.body == {"input": ["a", "b"], "dimensions": 4, "user": "alice"}
    with pytest.raises(InvalidRequest):
        fields.embeddings_request({"model": "chat", "input": "a"}, SETTINGS, "alice")
    with pytest.raises(InvalidRequest):
        fields.embeddings_request({"model": "vec", "input": ""}, SETTINGS, "alice")


@pytest.mark.parametrize(
    "provider,client", [(400, 400), (401, 502), (403, 502), (404, 502), (408, 504), (413, 413), (422, 400), (429, 429), (500, 500), (503, 503), (529, 502)]
)
def test_provider_statuses(provider, client):
    assert client_status(provider) == client
    error = ProviderStatus("m", provider, "", "3" if provider == 429 else None)
    status, body, headers = described(error)
    assert status == client and body["error"]["message"] == "m"
    assert headers == ({"retry-after": "3"} if provider == 429 else {})


def test_chunks_assemble_into_one_completion():
    frames = "".join(
        f"data: {c}\n\n"
        for c in [
            '{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}',
            '{"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"}},{"index":1,"delta":{"content":"B"}}]}',
            '{"id":"c1","choices":[{"index":0,"delta":{"content":"lo"}}]}',
            '{"id":"c1","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":""}}]}}]}',
            '{"id":"c1","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\""}}]}}]}',
            '{"id":"c1","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}',
            '{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
            '{"id":"c1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}',
        ]
    )
    assembler = Assembler()
    for chunk in frames_to_chunks(frames):
        assembler.add(chunk)
    result = assembler.result()

    assert result["id"] == "c1" and result["created"] == 5 and result["model"] == "m"
    assert result["object"] == "chat.completion" and result["usage"]["total_tokens"] == 3
    first, second = result["choices"]
    assert first["message"] == {"role": "assistant", "content": "Hello", "refusal": None}
    assert first["finish_reason"] == "stop"
    assert second["message"]["content"] == "B" and second["finish_reason"] == "tool_calls"
    assert second["message"]["tool_calls"] == [{"id": "t", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]


def test_an_embedding_model_is_never_a_chat_default():
    only = CellmageSettings(models={"vec": {"model": "openai/e", "api_base": "http://127.0.0.1:1/v1", "kind": "embedding"}, "chat": {"model": "openai/x", "api_base": "http://127.0.0.1:1/v1"}})
    assert only.resolved_default_model == "chat"
    with pytest.raises(ValueError, match="embedding model"):
        CellmageSettings(models=only.models, default_model="vec")


# Options of the SDK's client call, not fields of the request body (responses.parse turns its
# `text_format` into `text.format`).
SDK_CALL_OPTIONS = {"self", "extra_headers", "extra_query", "extra_body", "timeout", "text_format"}
RESPONSES_TABLES = responses_fields.RESPONSES_PASSED | responses_fields.RESPONSES_DROPPED | responses_fields.STATEFUL.keys()


@pytest.mark.parametrize(
    "create,tables",
    [
        ("openai.resources.chat.completions.Completions.create", fields.CHAT_PASSED | fields.CHAT_DROPPED),
        ("openai.resources.embeddings.Embeddings.create", fields.EMBEDDINGS_PASSED | fields.EMBEDDINGS_DROPPED),
        ("openai.resources.responses.Responses.create", RESPONSES_TABLES),
        ("openai.resources.responses.Responses.parse", RESPONSES_TABLES),
    ],
    ids=["chat", "embeddings", "responses", "responses.parse"],
)
def test_every_field_the_installed_openai_sdk_sends_is_known(create, tables):
    import inspect
    import pkgutil

    sdk_fields = set(inspect.signature(pkgutil.resolve_name(create)).parameters) - SDK_CALL_OPTIONS
    assert sdk_fields - tables - {"model", "stream"} == set()
