"""The lean provider path: any OpenAI-compatible ``/chat/completions`` endpoint, streamed over
http1/'s keep-alive pool and read by ``sse.py`` (OpenAI, a LiteLLM Proxy gateway, vLLM, Ollama,
OpenRouter, Groq, ...); requests that do not stream (embeddings) go through httpx.

Per chunk it does one JSON decode and a few dict look-ups: the relay's CPU budget is spent here.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterable

import httpx

from .._version import __version__
from ..contract import Finish, ProviderEvent, Usage, checked_usage
from ..errors import UpstreamError
from ..safety.redaction import redact
from . import ProviderCall, classify, failure_message, shown_url
from .http1 import Response, StreamPool
from .sse import DONE, NO_CODING, event_data, event_limit

#: How the lean path names itself to providers (a gateway's logs tell it from the SDKs).
USER_AGENT = f"cellmage-server/{__version__}"


def _error_parts(payload: object) -> tuple[str, str]:
    """(kind, message) from an OpenAI-style error body ``{"error": {"message", "code", "type"}}``."""
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, dict):
            kind = " ".join(str(err[k]) for k in ("code", "type") if err.get(k))
            return kind, str(err.get("message") or err.get("detail") or "")
        if isinstance(err, str):
            return "", err
    return "", ""


def read_chunk(chunk: object) -> tuple[str | None, str | None, Usage | None]:
    """(text, finish reason, usage) of one decoded chunk; ValueError when its shape is not OpenAI's."""
    if not isinstance(chunk, dict):
        raise ValueError("a chunk that is not a JSON object")
    text = finish = None
    choices = chunk.get("choices")
    if choices:
        if not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise ValueError("'choices' of the wrong shape")
        choice = choices[0]
        delta = choice.get("delta")
        if delta:
            if not isinstance(delta, dict):
                raise ValueError("a 'delta' of the wrong shape")
            text = delta.get("content")
            if text is not None and not isinstance(text, str):
                raise ValueError("answer text that is not a string")
        finish = choice.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            raise ValueError("a 'finish_reason' that is not a string")
    usage = chunk.get("usage")
    if usage:
        if not isinstance(usage, dict):
            raise ValueError("a 'usage' of the wrong shape")
        usage = checked_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens"))
    return text, finish, usage or None


class OpenAICompatProvider:
    """Streams chat completions from OpenAI-compatible servers through one shared connection pool."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        secrets: Iterable[str] = (),
        verify: ssl.SSLContext | bool = True,
        max_answer_bytes: int = 8 << 20,
    ) -> None:
        # Reads have no timeout here: the relay watches first-token, gap and total time itself,
        # and cancels this request when one runs out.
        timeout = httpx.Timeout(connect=connect_timeout, read=None, write=connect_timeout, pool=connect_timeout)
        tls = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(
            verify=tls, limits=limits, timeout=timeout, trust_env=False, headers={"User-Agent": USER_AGENT}
        )
        self._streams = StreamPool(connect_timeout=connect_timeout, verify=tls, user_agent=USER_AGENT)
        self._secrets = [s for s in secrets if s]
        self.max_answer_bytes = max_answer_bytes  # one event of a stream is bounded by it (sse.py)

    @property
    def client(self) -> httpx.AsyncClient:
        """The connection pool of requests that do not stream (the OpenAI-compatible endpoint's embeddings)."""
        return self._client

    @property
    def streams(self) -> StreamPool:
        """The connection pool of streamed answers (both endpoints' chat completions)."""
        return self._streams

    async def aclose(self) -> None:
        await self._streams.aclose()
        await self._client.aclose()

    def _fail(self, code: str, message: str) -> UpstreamError:
        return UpstreamError(code, redact(message, self._secrets))

    def _status_error(self, call: ProviderCall, response: Response) -> UpstreamError:
        try:
            kind, detail = _error_parts(response.json())
        except ValueError:
            kind, detail = "", response.text[:500]
        code = classify(response.status_code, f"{kind} {detail}")
        return self._fail(code, failure_message(code, call, response.status_code, detail))

    def _body(self, call: ProviderCall) -> dict[str, object]:
        body: dict[str, object] = {
            "model": call.model.split("/", 1)[1] if "/" in call.model else call.model,
            "messages": call.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": call.max_tokens,
        }
        body.update(call.options)
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if call.user:
            body["user"] = call.user
        return body

    async def stream(self, call: ProviderCall) -> AsyncIterator[ProviderEvent]:
        assert call.api_base is not None  # resolved from the prefix's default for this path
        url = call.api_base.rstrip("/") + "/chat/completions"
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json", **NO_CODING}
        if call.api_key is not None:
            headers["Authorization"] = f"Bearer {call.api_key.get_secret_value()}"
        finish: str | None = None
        try:
            body = json.dumps(self._body(call), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            async with self._streams.post(url, body, headers) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._status_error(call, response)
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" not in content_type:
                    raise self._fail(
                        "upstream",
                        f"The provider for model '{call.alias or call.model}' did not answer with a "
                        f"stream (content type {content_type or 'none'!r}); is api_base an "
                        "OpenAI-compatible /v1 URL?",
                    )
                async for data in event_data(response.stream(), event_limit(self.max_answer_bytes), self.max_answer_bytes):
                    if data == DONE:  # (the body's end is read after it: the connection is kept)
                        finish = finish or "stop"
                        continue
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise self._fail("upstream", "The provider sent a chunk that is not JSON.") from None
                    try:
                        text, chunk_finish, usage = read_chunk(chunk)
                    except ValueError as e:
                        raise self._fail(
                            "upstream",
                            failure_message("upstream", call, None, f"it sent {e}", mid_answer=True),
                        ) from None
                    if text:
                        yield text
                    if chunk_finish:
                        finish = chunk_finish
                    if usage is not None:
                        yield usage
                    if "error" in chunk:
                        kind, detail = _error_parts(chunk)
                        code = classify(None, f"{kind} {detail}")
                        raise self._fail(code, failure_message(code, call, None, detail, mid_answer=True))
        except httpx.ConnectTimeout:
            raise self._fail("timeout", f"Connecting to the provider at {shown_url(call.api_base)} timed out.") from None
        except httpx.ConnectError as e:
            raise self._fail(
                "upstream", f"Cannot connect to the provider at {shown_url(call.api_base)}: {e or 'connection failed'}."
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as e:
            detail = f"the connection broke ({e or type(e).__name__})"
            raise self._fail("upstream", failure_message("upstream", call, None, detail, mid_answer=True)) from None
        except httpx.HTTPError as e:
            raise self._fail("upstream", f"The request to the provider failed: {e or type(e).__name__}.") from None
        if finish is None:
            raise self._fail("upstream", "The provider's stream ended before the answer was finished.")
        yield Finish(finish)
