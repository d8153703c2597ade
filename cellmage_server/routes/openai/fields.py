"""What a client may send to ``cellmage/v1/*``: each OpenAI request field is known, and either
passed on to the provider, or dropped (named in the response header ``x-cellmage-dropped``), or
refused. Pure: a request body in, the provider's body out, or a typed error naming the field.

Passed on: what changes the answer and every provider path can carry. Dropped: what is harmless
to ignore but would bill, store or route on the team's account (``store``, ``service_tier``,
``metadata``, ...), so a newer SDK or LangChain that sends them keeps working. Refused: anything
that would re-route the call or carry credentials (the server's configuration alone decides
where a request goes), and any field in none of these lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ...config import CellmageSettings, ModelEntry
from .errors import InvalidRequest, ModelNotFound

# OpenAI's Chat Completions request fields (API reference, and the openai SDK 2.54's create()),
# besides model and stream; a test checks the installed SDK sends no field outside these tables.
CHAT_PASSED = frozenset(
    {
        "messages", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
        "max_tokens", "max_completion_tokens", "n", "parallel_tool_calls", "reasoning_effort",
        "response_format", "seed", "stop", "temperature", "tool_choice", "tools", "top_p", "user",
        "functions", "function_call", "prediction", "verbosity", "stream_options",
    }
)
CHAT_DROPPED = frozenset(
    {
        "metadata", "store", "service_tier", "prompt_cache_key", "prompt_cache_retention",
        "prompt_cache_options", "safety_identifier", "web_search_options", "audio", "modalities",
        "moderation",
    }
)
EMBEDDINGS_PASSED = frozenset({"input", "encoding_format", "dimensions", "user"})
EMBEDDINGS_DROPPED = frozenset()

# Fields that would steer the provider call itself (litellm's and the SDKs' names).
REFUSED = frozenset(
    {
        "api_base", "base_url", "api_key", "api_version", "api_type", "custom_llm_provider",
        "extra_headers", "headers", "extra_body", "extra_query", "callbacks", "success_callback",
        "failure_callback", "organization", "project", "deployment_id", "aws_access_key_id",
        "aws_secret_access_key", "aws_region_name", "vertex_credentials", "vertex_project",
        "vertex_location", "mock_response", "timeout", "num_retries", "litellm_params",
        "input_cost_per_token", "output_cost_per_token", "azure_ad_token", "client",
    }
)

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True)
class Translated:
    """A checked request: which alias, the provider's body (no model yet), and what was dropped."""

    alias: str
    entry: ModelEntry
    body: dict[str, Any]
    stream: bool = False
    include_usage: bool = False  # the client asked for the usage chunk
    dropped: tuple[str, ...] = field(default_factory=tuple)


# Deeper than any real request (tool schemas nest a dozen levels): the body is refused before the
# server or the provider path recurses through it.
MAX_DEPTH = 64


def _no_constant(name: str) -> None:
    raise InvalidRequest(f"The request body holds {name}, which JSON does not allow.")


def decode(raw: bytes) -> dict[str, Any]:
    """The body as JSON (standard JSON only: no NaN or Infinity, which cannot be sent on), or 400."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    except RecursionError:
        raise InvalidRequest(f"The request body is nested deeper than {MAX_DEPTH} levels.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if _depth(data) > MAX_DEPTH:
        raise InvalidRequest(f"The request body is nested deeper than {MAX_DEPTH} levels.")
    return data


def _depth(value: Any) -> int:
    """How deep ``value`` nests (iteratively: a deep value must not recurse here either)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def model_entry(settings: CellmageSettings, alias: object, kind: str) -> tuple[str, ModelEntry]:
    """The allowed alias ``alias`` of this ``kind``; 404 for anything else, as OpenAI answers a
    model the key cannot use (a declared but not allowed alias is not revealed)."""
    if not isinstance(alias, str) or not alias:
        raise InvalidRequest("'model' is required: one of this server's models (GET cellmage/v1/models).", "model")
    entry = settings.models.get(alias)
    if entry is None or alias not in settings.allowed:
        names = ", ".join(a for a in settings.allowed if settings.models[a].kind == kind) or "none"
        raise ModelNotFound(f"The model '{alias}' does not exist on this server. Models for this route: {names}.")
    if entry.kind != kind:
        route = "cellmage/v1/embeddings" if entry.kind == "embedding" else "cellmage/v1/chat/completions"
        raise InvalidRequest(f"The model '{alias}' is an {entry.kind} model: use it on {route}.", "model")
    return alias, entry


def _sort(data: dict[str, Any], passed: frozenset[str], dropped_known: frozenset[str]) -> tuple[str, ...]:
    refused = sorted(REFUSED.intersection(data))
    if refused:
        raise InvalidRequest(
            f"Field(s) {', '.join(refused)} are not accepted: where a request goes and with which "
            "credentials is set in the Jupyter server's cellmage configuration.",
            refused[0],
        )
    known = passed | dropped_known | {"model", "stream"}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise InvalidRequest(f"Unrecognized request argument(s): {', '.join(unknown)}.", unknown[0])
    return tuple(sorted(k for k in data if k in dropped_known))


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array of messages.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{i}] must be an object.", f"messages[{i}]")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(
                f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}; got {role!r}.", f"messages[{i}].role"
            )


def _number(data: dict[str, Any], name: str, low: float, high: float) -> None:
    value = data.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be a number from {low:g} to {high:g}.", name)


def _count(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"'{name}' must be an integer of at least 1.", name)
    return value


def chat_request(data: dict[str, Any], settings: CellmageSettings, principal: str) -> Translated:
    """Check a Chat Completions body and build the provider's body from it."""
    dropped = _sort(data, CHAT_PASSED, CHAT_DROPPED)
    alias, entry = model_entry(settings, data.get("model"), "chat")
    _check_messages(data.get("messages"))
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false.", "stream")
    _number(data, "temperature", 0, 2)
    _number(data, "top_p", 0, 1)
    _number(data, "frequency_penalty", -2, 2)
    _number(data, "presence_penalty", -2, 2)
    limits, endpoint = settings.limits, settings.openai_endpoint
    n = _count(data, "n")
    if n is not None and n > endpoint.max_n:
        raise InvalidRequest(f"'n' is {n}; this server allows at most {endpoint.max_n}.", "n")
    options = data.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", "stream_options")

    body = {k: v for k, v in data.items() if k in CHAT_PASSED and v is not None}
    # The server's cap holds whichever name the client uses; with neither, the cap is sent.
    for name in ("max_tokens", "max_completion_tokens"):
        asked = _count(data, name)
        if asked is not None:
            body[name] = min(asked, limits.max_tokens)
    if "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = limits.max_tokens
    body["user"] = principal  # attribution at a gateway is the server's, never the client's word
    body["stream"] = True  # always streamed from the provider: one path for timeouts, cancel, usage
    body["stream_options"] = {"include_usage": True}  # the ledger needs the counts
    include_usage = bool(stream and (options or {}).get("include_usage"))
    return Translated(alias, entry, body, stream, include_usage, dropped)


def embeddings_request(data: dict[str, Any], settings: CellmageSettings, principal: str) -> Translated:
    """Check an Embeddings body and build the provider's body from it."""
    dropped = _sort(data, EMBEDDINGS_PASSED, EMBEDDINGS_DROPPED)
    if "stream" in data:
        raise InvalidRequest("Unrecognized request argument(s): stream.", "stream")
    alias, entry = model_entry(settings, data.get("model"), "embedding")
    value = data.get("input")
    if not isinstance(value, (str, list)) or not value:
        raise InvalidRequest("'input' must be a non-empty string or array.", "input")
    if data.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    _count(data, "dimensions")
    body = {k: v for k, v in data.items() if k in EMBEDDINGS_PASSED and v is not None}
    body["user"] = principal
    return Translated(alias, entry, body, False, False, dropped)
