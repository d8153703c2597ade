"""Provider paths: each turns a :class:`ProviderCall` into the contract's events.

A provider's ``stream(call)`` is an async iterator of ``str`` (answer text, in order), at most one
:class:`~cellmage_server.contract.Usage` and a final :class:`~cellmage_server.contract.Finish`.
It raises :class:`~cellmage_server.errors.UpstreamError` on any provider failure, with text
already redacted. Closing or cancelling the iteration closes the upstream request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from ..contract import ProviderEvent


@dataclass(frozen=True)
class ProviderCall:
    """Everything a provider needs for one answer; built by the server from config, never from a client."""

    model: str  # the provider's own model name
    api_base: str
    api_key: SecretStr | None
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float | None = None
    alias: str = ""  # the alias the client asked for, for messages


class Provider(Protocol):
    def stream(self, call: ProviderCall) -> AsyncIterator[ProviderEvent]: ...

    async def aclose(self) -> None: ...
