"""What a client may send to ``cellmage/v1/responses``, and the Chat Completions body it becomes.

OpenAI's Responses API is served as a third wire format over the same answer: the request is
translated to the chat completions every provider path speaks, and the provider's chunks back
into Responses events (responses_wire.py). Pure: a request body in, the provider's body out, or
a typed error naming the field.

Stateless: nothing is stored, so ``store`` is dropped (named in ``x-cellmage-dropped``) and
what needs a stored response, conversation or prompt is refused with a message that says what
to send instead. As on ``chat/completions``, what would re-route the call or carry credentials is
refused, and so is any field in none of the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...config import CellmageSettings
from .errors import InvalidRequest
from .fields import REFUSED, Translated, _count, _number, model_entry
from .responses_input import STATELESS, input_messages, text_format, tool_choice, tools

# OpenAI's Responses request fields (API reference, and the openai SDK 2.54's responses.create()
# and responses.parse(), which also sends a top-level `verbosity`), besides model and stream; a
# test checks the installed SDK sends no field outside these tables.
RESPONSES_PASSED = frozenset(
    {
        "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
        "max_output_tokens", "temperature", "top_p", "reasoning", "user", "verbosity",
    }
)
# Harmless to ignore, or what would bill, store or route on the team's account.
RESPONSES_DROPPED = frozenset(
    {
        "store", "metadata", "service_tier", "include", "truncation", "prompt_cache_key",
        "prompt_cache_retention", "prompt_cache_options", "safety_identifier", "stream_options",
        "max_tool_calls", "top_logprobs", "moderation", "context_management", "background",
    }
)
# What needs state this server does not keep: refused unless null, each with what to do instead.
STATEFUL = {
    "previous_response_id": STATELESS,
    "conversation": "this server keeps no conversations: send the earlier turns' items in 'input'.",
    "prompt": "stored prompt templates live on OpenAI's platform: send 'instructions' and 'input' instead.",
}


@dataclass(frozen=True)
class ResponsesRequest(Translated):
    """A checked Responses request: the chat body, and what the response object echoes back."""

    echo: dict[str, Any] = field(default_factory=dict)


def responses_request(data: dict[str, Any], settings: CellmageSettings, principal: str) -> ResponsesRequest:
    """Check a Responses body and build the provider's Chat Completions body from it."""
    dropped = _sort(data)
    alias, entry = model_entry(settings, data.get("model"), "chat")
    stream = False if data.get("stream") is None else data["stream"]
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false.", "stream")
    if data.get("background"):
        raise InvalidRequest(
            "'background' responses are not served: this server keeps no responses to fetch later.", "background"
        )
    _number(data, "temperature", 0, 2)
    _number(data, "top_p", 0, 1)
    asked = _count(data, "max_output_tokens")

    messages: list[dict[str, Any]] = []
    instructions = data.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("'instructions' must be a string.", "instructions")
        messages.append({"role": "system", "content": instructions})
    skipped = input_messages(data.get("input"), messages)
    if skipped:
        dropped = tuple(sorted({*dropped, "input.reasoning"}))

    body: dict[str, Any] = {"messages": messages}
    chat_tools = tools(data.get("tools"))
    if chat_tools:
        body["tools"] = chat_tools
        if data.get("tool_choice") is not None:
            body["tool_choice"] = tool_choice(data["tool_choice"])
        if data.get("parallel_tool_calls") is not None:
            body["parallel_tool_calls"] = _flag(data, "parallel_tool_calls")
    text = text_format(data.get("text"), body)
    if data.get("verbosity") is not None:
        body["verbosity"] = data["verbosity"]
    reasoning = data.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise InvalidRequest("'reasoning' must be an object.", "reasoning")
        if reasoning.get("effort") is not None:
            body["reasoning_effort"] = reasoning["effort"]
        if reasoning.get("summary") is not None or reasoning.get("generate_summary") is not None:
            dropped = tuple(sorted({*dropped, "reasoning.summary"}))
    for name in ("temperature", "top_p"):
        if data.get(name) is not None:
            body[name] = data[name]
    limit = settings.limits.max_tokens
    body["max_tokens"] = min(asked, limit) if asked is not None else limit
    body["user"] = principal  # attribution at a gateway is the server's, never the client's word
    body["stream"] = True  # always streamed from the provider: one path for timeouts, cancel, usage
    body["stream_options"] = {"include_usage": True}

    echo = {
        "instructions": instructions,
        "tools": data.get("tools") or [],
        "tool_choice": data.get("tool_choice") or "auto",
        "parallel_tool_calls": data.get("parallel_tool_calls", True) is not False,
        "temperature": data.get("temperature"),
        "top_p": data.get("top_p"),
        "max_output_tokens": asked,
        "text": text,
        "reasoning": reasoning,
    }
    # include_usage: the builder reads the usage chunk's details (cached and reasoning tokens)
    return ResponsesRequest(alias, entry, body, stream=stream, include_usage=True, dropped=dropped, echo=echo)


def _sort(data: dict[str, Any]) -> tuple[str, ...]:
    refused = sorted(REFUSED.intersection(data))
    if refused:
        raise InvalidRequest(
            f"Field(s) {', '.join(refused)} are not accepted: where a request goes and with which "
            "credentials is set in the Jupyter server's cellmage configuration.",
            refused[0],
        )
    for name, instead in STATEFUL.items():
        if data.get(name) is not None:
            raise InvalidRequest(f"'{name}' is not served: {instead}", name)
    known = RESPONSES_PASSED | RESPONSES_DROPPED | STATEFUL.keys() | {"model", "stream"}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise InvalidRequest(f"Unrecognized request argument(s): {', '.join(unknown)}.", unknown[0])
    return tuple(sorted(k for k in data if k in RESPONSES_DROPPED))


def _flag(data: dict[str, Any], name: str) -> bool:
    if not isinstance(data[name], bool):
        raise InvalidRequest(f"'{name}' must be true or false.", name)
    return data[name]
