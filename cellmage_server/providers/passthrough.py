"""The provider side of ``cellmage/v1/*``: OpenAI-format requests passed through to both provider paths.

- The lean path sends the client's (checked) body to an OpenAI-compatible upstream through the
  lean provider's pool of streams (http1/) and passes each chunk's JSON text through untouched: it is
  decoded only when it carries usage or an error, and a finish reason is found by a regex.
- litellm serves every other provider and its chunks are re-emitted in OpenAI's format.

Both yield what the relay takes: ``str`` (SSE frames, in order), one
:class:`~cellmage_server.contract.Usage`, a final :class:`~cellmage_server.contract.Finish`; and
raise :class:`~cellmage_server.errors.UpstreamError` (a :class:`ProviderStatus` when the provider
answered an error status), with provider text redacted.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx

from ..contract import Finish, ProviderEvent, Usage
from ..errors import UpstreamError
from ..routes.openai.errors import ProviderStatus
from ..routes.openai.wire import data_frame
from ..safety.redaction import redact
from . import ProviderCall, classify, close_shielded, failure_message, shown_url
from .http1 import Response, StreamPool
from .litellm import provider_finished
from .openai_compat import _error_parts
from .sse import DONE, NO_CODING, event_data, event_limit

_FINISH = re.compile(r'"finish_reason"\s*:\s*"([^"]+)"')


def upstream_model(call: ProviderCall) -> str:
    """The provider's own model name: ``openai/gpt-4o`` is ``gpt-4o`` to the provider."""
    return call.model.split("/", 1)[1] if "/" in call.model else call.model


def _headers(call: ProviderCall, accept: str) -> dict[str, str]:
    headers = {"Accept": accept}
    if call.api_key is not None:
        headers["Authorization"] = f"Bearer {call.api_key.get_secret_value()}"
    return headers


def status_error(call: ProviderCall, response: httpx.Response | Response, secrets: Iterable[str]) -> ProviderStatus:
    try:
        kind, detail = _error_parts(response.json())
    except ValueError:
        kind, detail = "", response.text[:500]
    code = classify(response.status_code, f"{kind} {detail}")
    message = redact(failure_message(code, call, response.status_code, detail), secrets)
    return ProviderStatus(message, response.status_code, kind, response.headers.get("retry-after"))


def _usage(usage: dict[str, Any]) -> Usage:
    return Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens"))


def _transport_error(call: ProviderCall, error: httpx.HTTPError, secrets: Iterable[str]) -> UpstreamError:
    if isinstance(error, httpx.ConnectTimeout):
        code, message = "timeout", f"Connecting to the provider at {shown_url(call.api_base)} timed out."
    elif isinstance(error, httpx.ConnectError):
        code, message = "upstream", f"Cannot connect to the provider at {shown_url(call.api_base)}: {error or 'connection failed'}."
    elif isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)):
        detail = f"the connection broke ({error or type(error).__name__})"
        code, message = "upstream", failure_message("upstream", call, None, detail, mid_answer=True)
    else:
        code, message = "upstream", f"The request to the provider failed: {error or type(error).__name__}."
    return UpstreamError(code, redact(message, secrets))


async def lean_chunks(
    streams: StreamPool,
    call: ProviderCall,
    body: dict[str, Any],
    *,
    include_usage: bool,
    secrets: list[str],
    max_answer_bytes: int,
) -> AsyncIterator[ProviderEvent]:
    """Stream a Chat Completions request through to an OpenAI-compatible provider."""
    assert call.api_base is not None
    url = call.api_base.rstrip("/") + "/chat/completions"
    finish: str | None = None
    try:
        sent = json.dumps({**body, "model": upstream_model(call)}, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        headers = {**_headers(call, "text/event-stream"), "Content-Type": "application/json", **NO_CODING}
        async with streams.post(url, sent.encode(), headers) as response:
            if response.status_code != 200:
                await response.aread()
                raise status_error(call, response, secrets)
            if "text/event-stream" not in (response.headers.get("content-type") or ""):
                raise UpstreamError(
                    "upstream",
                    f"The provider for model '{call.alias}' did not answer with a stream; is api_base an "
                    "OpenAI-compatible /v1 URL?",
                )
            async for data in event_data(response.stream(), event_limit(max_answer_bytes), max_answer_bytes):
                if data == DONE:  # (the body's end is read after it: the connection is kept)
                    continue
                if '"usage"' in data or '"error"' in data:
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise UpstreamError("upstream", "The provider sent a chunk that is not JSON.") from None
                    if chunk.get("error"):
                        kind, detail = _error_parts(chunk)
                        code = classify(None, f"{kind} {detail}")
                        message = failure_message(code, call, None, detail, mid_answer=True)
                        raise UpstreamError(code, redact(message, secrets))
                    if chunk.get("usage"):
                        yield _usage(chunk["usage"])
                        if not include_usage:  # asked for the ledger, not by this client
                            if not chunk.get("choices"):
                                continue
                            del chunk["usage"]
                            data = json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
                if '"finish_reason"' in data and '"finish_reason":null' not in data:
                    found = _FINISH.search(data)
                    if found:
                        finish = found.group(1)
                if "\n" in data:  # multi-line data: JSON allows no raw newline inside a string
                    data = data.replace("\n", " ")
                yield data_frame(data)
    except httpx.HTTPError as e:
        raise _transport_error(call, e, secrets) from None
    if finish is None:
        raise UpstreamError("upstream", "The provider's stream ended before the answer was finished.")
    yield Finish(finish)


async def litellm_chunks(
    litellm_provider: Any,
    call: ProviderCall,
    body: dict[str, Any],
    *,
    include_usage: bool,
    connect_timeout: float,
) -> AsyncIterator[ProviderEvent]:
    """Stream a Chat Completions request through litellm; its chunks re-emitted in OpenAI's format."""
    litellm = await litellm_provider.loaded()
    kwargs: dict[str, Any] = {
        **body,
        "model": call.model,
        # A connect timeout only: the relay watches first-token, gap and total time itself.
        "timeout": httpx.Timeout(None, connect=connect_timeout),
        "num_retries": 0,
    }
    if "tools" in body:
        # litellm 1.106 hands any request with tools to its MCP gateway code first, which needs the
        # `mcp` package; tools here are the client's functions, never MCP servers, so skip it.
        kwargs["_skip_mcp_handler"] = True
    if call.api_base is not None:
        kwargs["api_base"] = call.api_base
    if call.api_key is not None:
        kwargs["api_key"] = call.api_key.get_secret_value()
    response = None
    finish: str | None = None
    answered = False
    try:
        response = await litellm.acompletion(**kwargs)
        async for chunk in response:
            data = chunk.model_dump(exclude_none=True, mode="json")
            usage = data.get("usage")
            if usage:
                yield _usage(usage)
                if not include_usage:
                    del data["usage"]
            choices = []
            for choice in data.get("choices") or ():
                choice.pop("provider_specific_fields", None)
                (choice.get("delta") or {}).pop("provider_specific_fields", None)
                if choice.get("finish_reason"):
                    if not provider_finished(response):
                        # litellm made this "stop" up: the provider's stream was cut short. It
                        # must not reach the client as a finished answer.
                        raise UpstreamError("upstream", "The provider's stream ended before the answer was finished.")
                    finish = choice["finish_reason"]
                # litellm gives its usage chunk an empty choice; OpenAI's has none.
                if choice.get("delta") or choice.get("finish_reason") or choice.get("logprobs"):
                    choices.append(choice)
            data["choices"] = choices
            if not choices and "usage" not in data:
                continue
            data.pop("provider_specific_fields", None)
            data.pop("citations", None)
            answered = True
            yield data_frame(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    except UpstreamError:
        raise
    except Exception as e:  # litellm's exceptions, and plain ones from some provider transforms
        raise litellm_error(litellm_provider, call, e, litellm.exceptions, answered) from None
    finally:
        if response is not None and hasattr(response, "aclose"):
            await close_shielded(response.aclose())  # the provider's HTTP response, also on cancel
    if finish is None:
        raise UpstreamError("upstream", "The provider's stream ended before the answer was finished.")
    yield Finish(finish)


def litellm_error(litellm_provider: Any, call: ProviderCall, error: BaseException, exceptions: Any, answered: bool) -> UpstreamError:
    """litellm's exception as the chat endpoint words it, with the provider's status kept for the
    client when it came before any answer (litellm gives connection failures a made-up 500)."""
    failure = litellm_provider._fail(call, error, exceptions, answered)
    status = getattr(error, "status_code", None)
    connection = isinstance(error, exceptions.APIConnectionError)
    if answered or connection or not isinstance(status, int):
        return failure
    headers = getattr(error, "litellm_response_headers", None) or getattr(getattr(error, "response", None), "headers", None)
    retry_after = headers.get("retry-after") if headers is not None else None
    return ProviderStatus(failure.message, status, str(getattr(error, "type", "") or ""), retry_after)


async def lean_embeddings(
    client: httpx.AsyncClient, call: ProviderCall, body: dict[str, Any], secrets: list[str]
) -> tuple[bytes, Usage | None]:
    """An Embeddings request to an OpenAI-compatible provider: its answer's bytes, and its usage."""
    assert call.api_base is not None
    url = call.api_base.rstrip("/") + "/embeddings"
    try:
        response = await client.post(
            url, json={**body, "model": upstream_model(call)}, headers=_headers(call, "application/json")
        )
    except httpx.HTTPError as e:
        raise _transport_error(call, e, secrets) from None
    if response.status_code != 200:
        raise status_error(call, response, secrets)
    try:
        usage = response.json().get("usage")
    except (ValueError, AttributeError):
        raise UpstreamError("upstream", f"The provider for model '{call.alias}' answered embeddings that are not JSON.") from None
    return response.content, _usage(usage) if isinstance(usage, dict) else None


async def litellm_embeddings(
    litellm_provider: Any, call: ProviderCall, body: dict[str, Any], *, connect_timeout: float
) -> tuple[bytes, Usage | None]:
    litellm = await litellm_provider.loaded()
    # No retries in litellm or the SDK under it: the client retries, honouring retry-after.
    kwargs: dict[str, Any] = {**body, "model": call.model, "timeout": connect_timeout * 6, "num_retries": 0, "max_retries": 0}
    if call.api_base is not None:
        kwargs["api_base"] = call.api_base
    if call.api_key is not None:
        kwargs["api_key"] = call.api_key.get_secret_value()
    try:
        response = await litellm.aembedding(**kwargs)
    except Exception as e:
        raise litellm_error(litellm_provider, call, e, litellm.exceptions, False) from None
    data = response.model_dump(exclude_none=True, mode="json")
    usage = data.get("usage")
    return json.dumps(data).encode(), _usage(usage) if isinstance(usage, dict) else None
