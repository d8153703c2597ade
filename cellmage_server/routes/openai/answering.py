"""What ``chat/completions`` and ``responses`` share: an answer asked of a provider path, framed for
OpenAI's SDKs, over the one answer lifecycle (answer/lifecycle.py). Each route is a wire format:
it builds the provider's chat body and says how frames and the end look; this module streams them
with back-pressure, writes the end a piece at a time as the client takes it, and cancels the
answer (closing the provider request) when the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from ...answer.lifecycle import Answer
from ...answer.outputs import SocketOutput
from ...config import LoadedConfig
from ...contract import ProviderEvent, well_formed
from ...providers import passthrough as upstream
from .base import DROPPED_HEADER, V1Handler
from .fields import Translated
from .wire import PING


def encoded(text: str) -> bytes:
    """UTF-8, a lone surrogate (a provider's ``\\ud800``, decoded) replaced rather than failing."""
    try:
        return text.encode()
    except UnicodeEncodeError:  # rare: pay for the scan only then
        return well_formed(text).encode()


class FrameOutput(SocketOutput):
    """A streamed answer's frames, with back-pressure (the relay stops reading the provider while
    the client is ``limits.stream_buffer_bytes`` behind). The 200 and its headers go with the first
    frame, so an error the provider answers before any chunk keeps its own status (a 429 stays a
    429)."""

    def __init__(self, handler: V1Handler, dropped: tuple[str, ...]) -> None:
        super().__init__(handler)
        self._v1 = handler
        self._dropped = dropped
        self.started = False

    def send(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            self._v1.set_status(200)
            self._v1.event_stream_headers()
            if self._dropped:
                self._v1.set_header(DROPPED_HEADER, ", ".join(self._dropped))
        super().send(data)

    def text(self, frames: str) -> None:
        self.send(encoded(frames))

    def ping(self) -> None:
        self.send(PING)


class AnswerRoute(V1Handler):
    """A ``cellmage/v1`` route that answers with a model."""

    _answer: Answer | None = None

    def provider_events(
        self, request: Translated, config: LoadedConfig, *, include_usage: bool
    ) -> AsyncIterator[ProviderEvent]:
        """The provider's chat completion chunks for ``request``, as SSE frames (both paths);
        ``include_usage``: the usage chunk among them (the ledger gets the counts either way)."""
        call = self.provider_call(request, config)
        provider = self.cellmage.providers[request.entry.path]
        if request.entry.path == "openai":
            return upstream.lean_chunks(
                provider.streams, call, request.body, include_usage=include_usage,
                secrets=config.secret_values(), max_answer_bytes=config.settings.limits.max_answer_bytes,
            )
        return upstream.litellm_chunks(
            provider, call, request.body, include_usage=include_usage,
            connect_timeout=config.settings.timeouts.connect,
        )

    async def write_end(self, output: FrameOutput, pieces: Iterable[bytes]) -> bool:
        """Write the stream's last events, each piece once the client is within the buffer of what
        went before; whether the client got them all. One that stays more than
        ``limits.stream_buffer_bytes`` behind for ``timeouts.client_behind`` is disconnected, so
        its answer is not held."""
        settings = self.cellmage.require_config().settings
        patience, room = settings.timeouts.client_behind, settings.limits.stream_buffer_bytes
        try:
            for piece in pieces:
                output.send(piece)
                await asyncio.wait_for(output.drained(room), patience)
                if output.gone:
                    return False
            await asyncio.wait_for(output.drained(0), patience)
        except asyncio.TimeoutError:
            self.request.connection.close()
            return False
        if output.gone:
            return False
        self.finish()
        return True

    def write_whole(self, request: Translated, body: str) -> None:
        if request.dropped:
            self.set_header(DROPPED_HEADER, ", ".join(request.dropped))
        self.set_header("Content-Type", "application/json")
        self.finish(encoded(body))

    def on_connection_close(self) -> None:
        if self._answer is not None:
            self._answer.cancel(silent=True)  # closes the provider request
        super().on_connection_close()
