"""The pure parts of ``cellmage/v1/responses``: a Responses request checked and translated to the
chat completion a provider speaks, and the provider's chunks folded back into Responses events and
objects, which the installed openai SDK's own types and stream helper must accept as they are."""

from __future__ import annotations

import json

import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from cellmage_server.config import CellmageSettings
from cellmage_server.contract import Usage
from cellmage_server.errors import UpstreamError
from cellmage_server.routes.openai import fields, responses_fields
from cellmage_server.routes.openai.errors import InvalidRequest, ModelNotFound
from cellmage_server.routes.openai.responses_fields import responses_request
from cellmage_server.routes.openai.responses_wire import ResponseBuilder
from cellmage_server.routes.openai.wire import data_frame

SETTINGS = CellmageSettings(
    models={
        "chat": {"model": "openai/x", "api_base": "http://127.0.0.1:1/v1"},
        "vec": {"model": "openai/e", "api_base": "http://127.0.0.1:1/v1", "kind": "embedding"},
    },
    limits={"max_tokens": 500},
)
TOOL = {"type": "function", "name": "add", "description": "Adds", "parameters": {"type": "object"}, "strict": True}
EVENTS = TypeAdapter(ResponseStreamEvent)


def translate(**data):
    return responses_request({"model": "chat", "input": "hi", **data}, SETTINGS, "alice")


# --- requests ---------------------------------------------------------------------------------


def test_the_tables_do_not_overlap():
    tables = [responses_fields.RESPONSES_PASSED, responses_fields.RESPONSES_DROPPED, set(responses_fields.STATEFUL), fields.REFUSED]
    for i, one in enumerate(tables):
        for other in tables[i + 1 :]:
            assert not set(one) & set(other)


def test_a_request_becomes_the_providers_chat_body():
    out = translate(
        instructions="be brief", tools=[TOOL], tool_choice={"type": "function", "name": "add"}, parallel_tool_calls=False,
        text={"format": {"type": "json_schema", "name": "A", "schema": {"type": "object"}, "strict": True}, "verbosity": "low"},
        max_output_tokens=9999, temperature=0.2, top_p=0.5, reasoning={"effort": "low"}, user="someone-else",
        store=True, metadata={"a": "b"}, include=[], stream=True,
    )
    assert out.alias == "chat" and out.stream
    assert out.dropped == ("include", "metadata", "store")
    assert out.body == {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "add", "description": "Adds", "parameters": {"type": "object"}, "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "add"}}, "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": {"type": "object"}, "strict": True}},
        "verbosity": "low", "reasoning_effort": "low", "temperature": 0.2, "top_p": 0.5,
        "max_tokens": 500, "user": "alice", "stream": True, "stream_options": {"include_usage": True},
    }
    assert out.echo["max_output_tokens"] == 9999 and out.echo["tools"] == [TOOL]


def test_the_cap_is_sent_when_the_client_sets_none_and_no_tools_means_no_tool_fields():
    out = translate(tools=[], tool_choice="auto", parallel_tool_calls=True, text={"format": {"type": "json_object"}})
    assert out.body["max_tokens"] == 500 and out.body["response_format"] == {"type": "json_object"}
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(out.body)
    assert not out.stream and out.dropped == ()


def test_items_become_messages_calls_and_tool_results():
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "2+3 and 4+5?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Adding.", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a":2,"b":3}', "id": "fc_1", "status": "completed"},
        {"type": "function_call", "call_id": "c2", "name": "add", "arguments": '{"a":4,"b":5}'},
        {"type": "function_call_output", "call_id": "c1", "output": "5"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "9"}]},
        {"type": "function_call", "call_id": "c3", "name": "add", "arguments": "{}"},
    ]
    out = translate(input=items)
    assert out.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "2+3 and 4+5?"}]},
        {"role": "assistant", "content": "Adding.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":2,"b":3}'}},
            {"id": "c2", "type": "function", "function": {"name": "add", "arguments": '{"a":4,"b":5}'}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "5"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "9"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c3", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
    ]
    assert out.dropped == ("input.reasoning",)  # another server's reasoning, named as dropped


@pytest.mark.parametrize(
    "data,param,words",
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "keeps no responses"),
        ({"conversation": "conv_1"}, "conversation", "keeps no conversations"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "instructions"),
        ({"background": True}, "background", "keeps no responses"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", "keeps no responses"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "function tools only"),
        ({"input": [{"type": "computer_call_output", "call_id": "x", "output": {}}]}, "input[0].type", "function_call_output"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}, "input[0].content[0]", "keeps no files"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "data:,"}]}]}, "input[0].output", "text"),
        ({"tool_choice": {"type": "web_search_preview"}, "tools": [TOOL]}, "tool_choice", "function"),
        ({"text": {"format": {"type": "json_schema", "name": "A"}}}, "text.format", "schema"),
        ({"input": []}, "input", "non-empty"),
        ({"input": [{"role": "boss", "content": "x"}]}, "input[0].role", "one of"),
        ({"api_base": "http://evil.example"}, "api_base", "not accepted"),
        ({"frobnicate": 1}, "frobnicate", "Unrecognized"),
        ({"max_output_tokens": 0}, "max_output_tokens", "at least 1"),
        ({"temperature": 3}, "temperature", "from 0 to 2"),
        ({"stream": "yes"}, "stream", "true or false"),
        ({"model": "vec"}, "model", "embedding"),
    ],
)
def test_what_cannot_be_served_is_a_400_that_names_the_field_and_says_why(data, param, words):
    with pytest.raises(InvalidRequest) as raised:
        translate(**data)
    assert raised.value.param == param and words in raised.value.message, raised.value.message


def test_a_null_stateful_field_is_the_same_as_none():
    assert translate(previous_response_id=None, conversation=None, prompt=None).body["messages"][-1]["content"] == "hi"


def test_a_model_that_is_no_allowed_alias_is_not_found():
    with pytest.raises(ModelNotFound):
        translate(model="gpt-4o")


# --- chunks out ---------------------------------------------------------------------------------

BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "x"}


def chunk(delta=None, finish=None, **extra):
    choices = [] if delta is None and finish is None else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    return data_frame(json.dumps({**BASE, "choices": choices, **extra}))


def call(index, id=None, name=None, arguments=""):
    head = {"index": index, "function": {"arguments": arguments}}
    if id:
        head.update(id=id, type="function")
        head["function"]["name"] = name
    return chunk({"tool_calls": [head]})


def events_of(text: str) -> list[dict]:
    """Parse SSE frames; each event's `event:` line names its type."""
    found = []
    for frame in text.split("\n\n"):
        if frame:
            name, data = frame.split("\n", 1)
            event = json.loads(data.removeprefix("data: "))
            assert name == f"event: {event['type']}"
            found.append(event)
    return found


USAGE = data_frame(json.dumps({**BASE, "choices": [], "usage": {
    "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
    "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 1},
}}))
STREAM = [
    chunk({"role": "assistant"}), chunk({"content": "Let me "}), chunk({"content": "add."}),
    call(0, "call_a", "add", ""), call(0, arguments='{"a":'), call(0, arguments="2}"),
    call(1, "call_b", "add", '{"a":3}'), chunk(finish="tool_calls"), USAGE,
]


def streamed(builder: ResponseBuilder, frames=STREAM, finish="tool_calls", error=None) -> list[dict]:
    text = "".join(builder.feed(f) for f in frames)
    text += "".join(builder.end(finish, Usage(7, 3, 10), error))
    return events_of(text)


def test_a_stream_is_what_the_sdks_types_and_stream_helper_accept():
    builder = ResponseBuilder("chat", translate(tools=[TOOL]).echo, streaming=True)
    events = streamed(builder)

    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    # Every event validates as the installed SDK's own type, and its stream helper (which insists
    # on response.created first and indexes items by output_index) folds them into the response
    state = ResponseStreamState(input_tools=[TOOL], text_format=omit)
    for event in events:
        state.handle_event(EVENTS.validate_python(event))
    final = state._completed_response
    assert final.output_text == "Let me add." and final.status == "completed"
    message, first, second = final.output
    assert (first.call_id, first.name, first.arguments) == ("call_a", "add", '{"a":2}')
    assert first.parsed_arguments == {"a": 2}  # a strict tool
    assert second.arguments == '{"a":3}'
    usage = final.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (7, 3, 10)
    assert usage.input_tokens_details.cached_tokens == 4 and usage.output_tokens_details.reasoning_tokens == 1
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.output_item.added") == 3 and kinds.count("response.output_item.done") == 3
    assert kinds.index("response.function_call_arguments.delta") > kinds.index("response.output_text.delta")


def test_a_whole_response_validates_as_the_sdks_response():
    builder = ResponseBuilder("chat", translate(instructions="x", tools=[TOOL]).echo, streaming=False)
    assert all(builder.feed(f) == "" for f in STREAM)
    whole = Response.model_validate(builder.response("tool_calls", Usage(7, 3, None)))
    assert whole.output_text == "Let me add." and whole.status == "completed" and whole.instructions == "x"
    assert [o.type for o in whole.output] == ["message", "function_call", "function_call"]
    assert whole.usage.total_tokens == 10  # counted when the provider gives no total

    cut = ResponseBuilder("chat", {}, streaming=False)
    cut.feed(chunk({"content": "Hel"}))
    incomplete = Response.model_validate(cut.response("length", None))
    assert incomplete.status == "incomplete" and incomplete.incomplete_details.reason == "max_output_tokens"
    assert incomplete.output[0].status == "incomplete" and incomplete.usage is None


@pytest.mark.parametrize("code,openai_code", [("too_long", "server_error"), ("rate_limited", "rate_limit_exceeded")])
def test_a_failure_after_the_start_ends_with_error_then_response_failed(code, openai_code):
    builder = ResponseBuilder("chat", {}, streaming=True)
    events = streamed(builder, STREAM[:3], "error", {"code": code, "message": "it broke", "param": None})

    for event in events:
        EVENTS.validate_python(event)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == code and events[-2]["message"] == "it broke"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": openai_code, "message": "it broke"}
    assert failed["output"][0]["content"][0]["text"] == "Let me add."  # the text so far stays


def test_an_end_before_any_chunk_still_starts_with_response_created():
    events = events_of("".join(ResponseBuilder("chat", {}, streaming=True).end("error", None, {"code": "timeout", "message": "m"})))
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "error", "response.failed"]


def test_a_long_answer_ends_in_pieces_the_size_of_a_run_of_text():
    builder = ResponseBuilder("chat", {}, streaming=True)
    nasty = "\x01\"\\\n\x00" + "\u0000" * 3 + "é" * 50  # escaped up to six times over, NULs as in a marker
    text = [nasty * 500 for _ in range(40)]  # 2.3 MB of text
    builder.feed(chunk({"role": "assistant"}))
    for piece in text:
        builder.feed(chunk({"content": piece}))
    ends = list(builder.end("stop", None))

    # No piece holds more than a run of the text (about 64 K characters here, escaped), of 2.3 MB
    whole = len("".join(text))
    assert max(len(p) for p in ends) < whole // 10
    assert len(ends) > 4 * 10  # four copies, each in more than ten runs
    events = events_of("".join(ends))
    assert events[0]["text"] == "".join(text) and events[-1]["response"]["output"][0]["content"][0]["text"] == "".join(text)


def test_text_after_a_call_is_a_new_message_and_a_refusal_its_own_part():
    builder = ResponseBuilder("chat", {}, streaming=False)
    for frame in [chunk({"refusal": "No."}), call(0, "c", "f", "{}"), chunk({"content": "After."})]:
        builder.feed(frame)
    whole = Response.model_validate(builder.response("stop", None))
    assert [o.type for o in whole.output] == ["message", "function_call", "message"]
    assert whole.output[0].content[0].type == "refusal" and whole.output[0].content[0].refusal == "No."
    assert whole.output_text == "After."


@pytest.mark.parametrize(
    "payload",
    ["[1, 2]", '"surprise"', '{"choices": "nope"}', '{"choices": [7]}', '{"choices": [{"delta": ["a"]}]}',
     '{"choices": [{"delta": {"content": 5}}]}', '{"choices": [{"delta": {"tool_calls": [{"index": "0"}]}}]}', "{not json"],
)
def test_a_chunk_that_cannot_be_read_is_an_upstream_error(payload):
    with pytest.raises(UpstreamError) as raised:
        ResponseBuilder("chat", {}, streaming=True).feed(data_frame(payload))
    assert raised.value.code == "upstream" and "cannot read" in raised.value.message


def test_a_lone_surrogate_from_the_provider_can_be_written():
    builder = ResponseBuilder("chat", {}, streaming=True)
    out = builder.feed(data_frame('{"choices":[{"delta":{"content":"\\ud800 tail"}}]}'))
    assert events_of(out)[-1]["delta"] == "\ufffd tail"
    out.encode()  # no lone surrogate left to fail the write
