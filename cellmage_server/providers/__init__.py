"""Provider paths: each turns a :class:`ProviderCall` into the contract's events.

A provider's ``stream(call)`` is an async iterator of ``str`` (answer text, in order), at most one
:class:`~cellmage_server.contract.Usage` and a final :class:`~cellmage_server.contract.Finish`.
It raises :class:`~cellmage_server.errors.UpstreamError` on any provider failure, with text
already redacted. Closing or cancelling the iteration closes the upstream request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import SecretStr

from ..contract import ProviderEvent


@dataclass(frozen=True)
class ProviderCall:
    """Everything a provider needs for one answer; built by the server from config, never from a client."""

    model: str  # as litellm writes it: "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"
    api_base: str | None  # None: the provider's public API (litellm path only)
    api_key: SecretStr | None
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float | None = None
    alias: str = ""  # the alias the client asked for, for messages
    user: str | None = None  # the principal, sent as OpenAI `user` so a gateway attributes spend per person
    # Other sampling parameters (top_p, stop, seed, penalties: parameters.py), checked already.
    options: Mapping[str, Any] = field(default_factory=dict)


_LEADS = {
    "auth": "The provider rejected this server's credentials for model",
    "rate_limited": "The provider is rate-limiting model",
    "timeout": "The provider timed out on model",
    "context_length": "The prompt is too long for model",
    "content_filter": "The provider's content filter blocked the request to model",
    "upstream": "The provider failed on model",
}


def classify(status: int | None, text: str) -> str:
    """The contract's error code for a provider failure, from its HTTP status and its own words."""
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status in (408, 504):
        return "timeout"
    lowered = text.lower()
    if "context_length" in lowered or "context length" in lowered or "maximum context" in lowered:
        return "context_length"
    if "content_filter" in lowered or "content_policy" in lowered or "content management policy" in lowered:
        return "content_filter"
    return "upstream"


def shown_url(url: str | None) -> str:
    """A provider's URL as messages show it: without the userinfo a password may be in."""
    if not url or "@" not in url:
        return url or ""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"


def failure_message(code: str, call: ProviderCall, status: int | None, detail: str, *, mid_answer: bool = False) -> str:
    """One wording of a provider failure for both paths: what happened, to which model, and the
    provider's own words (the caller redacts the result)."""
    lead = "The provider failed mid-answer on model" if mid_answer else _LEADS[code]
    message = f"{lead} '{call.alias or call.model}'"
    if status:
        message += f" (HTTP {status})"
    return f"{message}: {detail}" if detail else f"{message}."


class Provider(Protocol):
    def stream(self, call: ProviderCall) -> AsyncIterator[ProviderEvent]: ...

    async def aclose(self) -> None: ...


async def close_shielded(closing: Awaitable[None]) -> None:
    """Await ``closing`` (a response's ``aclose()``) to its end, even if the caller is cancelled
    again meanwhile: a cancellation that lands inside httpcore's close leaves the connection, and
    the provider's request, open. The caller still sees that later cancellation."""
    task = asyncio.ensure_future(closing)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no warning
        raise
