"""The routes under ``{base_url}cellmage/v1/``: OpenAI's wire format for the libraries in kernels.

Every verb is authenticated: with the server's scoped key (``Authorization: Bearer <key>``, see
scoped_key.py) or with ordinary Jupyter credentials (token header, cookie + XSRF); see base.py.
Errors come in OpenAI's shape (errors.py). After a stream has started, an error is its last event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from tornado import web

from ...answer.relay import Outcome, Relay
from ...config import LoadedConfig
from ...contract import ProviderEvent, Usage
from ...errors import CellmageError, NotFound, UpstreamError
from ...providers import ProviderCall
from ...providers import passthrough as upstream
from . import fields
from .base import DROPPED_HEADER, V1Handler, authorized_or_scoped, openai_mapped
from .errors import ModelNotFound, stream_error
from .fields import Translated
from .wire import DONE, PING, Assembler, frames_to_chunks


class _Stream:
    """Writes a running answer's frames; the 200 and its headers go with the first frame, so an
    error the provider answers before any chunk keeps its own status (a 429 stays a 429)."""

    def __init__(self, handler: V1Handler, dropped: tuple[str, ...]) -> None:
        self._handler = handler
        self._dropped = dropped
        self.started = False

    def start(self) -> None:
        handler = self._handler
        handler.set_status(200)
        handler.set_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.set_header("Cache-Control", "no-cache")
        handler.set_header("X-Accel-Buffering", "no")
        if self._dropped:
            handler.set_header(DROPPED_HEADER, ", ".join(self._dropped))
        self.started = True

    def send(self, data: bytes) -> None:
        if not self.started:
            self.start()
        # Not awaited: once the client is gone the flush fails and on_connection_close cancels.
        self._handler.write(data)
        self._handler.flush()

    def text(self, frames: str) -> None:
        self.send(frames.encode())

    def ping(self) -> None:
        self.send(PING)


class _Whole:
    """A whole answer: nothing goes out until the end (the relay keeps the frames)."""

    def text(self, frames: str) -> None:
        pass

    def ping(self) -> None:
        pass


class ChatCompletionsHandler(V1Handler):
    _relay: Relay | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        # Never gzip an event stream: compression buffers frames and breaks token-by-token delivery.
        self._transforms = [t for t in self._transforms if not isinstance(t, web.GZipContentEncoding)]
        await super().prepare()

    @web.authenticated
    @authorized_or_scoped
    @openai_mapped
    async def post(self) -> None:
        """OpenAI Chat Completions: streamed as ``chat.completion.chunk`` events, or whole."""
        state = self.cellmage
        config = state.require_config()
        settings = config.settings
        request = fields.chat_request(self.check_body(config), settings, self.username)
        call = self.provider_call(request, config)
        events = self._events(request, call, config)
        output = _Stream(self, request.dropped) if request.stream else _Whole()
        relay = Relay(
            events, output, timeouts=settings.timeouts, ping_interval=settings.limits.ping_interval,
            touch=self.touch, owner=self.username,
        )
        self._relay = relay
        with state.streams.running(relay):
            outcome = await relay.run()
        if outcome.usage is not None:
            outcome.usage = state.pricing.price(request.entry, outcome.usage)
        self.log_answer("openai chat", request.alias, outcome.finish_reason, outcome.error, outcome.usage, outcome.elapsed_ms)
        await self.record(request.alias, outcome.usage, outcome.elapsed_ms, outcome.finish_reason)
        if relay.silent:
            return  # the client is gone
        if isinstance(output, _Stream):
            self._end_stream(output, outcome)
        else:
            self._answer_whole(request, outcome)

    def _events(self, request: Translated, call: ProviderCall, config: LoadedConfig) -> AsyncIterator[ProviderEvent]:
        # A whole answer needs the usage chunk too: it is the answer's "usage".
        include_usage = request.include_usage or not request.stream
        provider = self.cellmage.providers[request.entry.path]
        if request.entry.path == "openai":
            return upstream.lean_chunks(
                provider.client, call, request.body, include_usage=include_usage, secrets=config.secret_values()
            )
        return upstream.litellm_chunks(
            provider, call, request.body, include_usage=include_usage,
            connect_timeout=config.settings.timeouts.connect,
        )

    def _end_stream(self, output: _Stream, outcome: Outcome) -> None:
        if outcome.error is not None and not output.started:
            raise outcome.error  # nothing sent yet: the error keeps its status
        if outcome.error is not None:
            output.send(b"data: " + json.dumps(stream_error(outcome.error)).encode() + b"\n\n")
        else:
            output.send(DONE)
        self.finish()

    def _answer_whole(self, request: Translated, outcome: Outcome) -> None:
        if outcome.error is not None:
            raise outcome.error
        assembler = Assembler()
        for chunk in frames_to_chunks(outcome.text):
            assembler.add(chunk)
        if request.dropped:
            self.set_header(DROPPED_HEADER, ", ".join(request.dropped))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(assembler.result(), ensure_ascii=False))

    def on_connection_close(self) -> None:
        if self._relay is not None:
            self._relay.cancel(silent=True)
        super().on_connection_close()


class EmbeddingsHandler(V1Handler):
    _task: asyncio.Task[tuple[bytes, Usage | None]] | None = None

    @web.authenticated
    @authorized_or_scoped
    @openai_mapped
    async def post(self) -> None:
        """OpenAI Embeddings, for the models the configuration marks ``kind = "embedding"``."""
        state = self.cellmage
        config = state.require_config()
        settings = config.settings
        request = fields.embeddings_request(self.check_body(config), settings, self.username)
        call = self.provider_call(request, config)
        provider = state.providers[request.entry.path]
        if request.entry.path == "openai":
            work = upstream.lean_embeddings(provider.client, call, request.body, config.secret_values())
        else:
            work = upstream.litellm_embeddings(provider, call, request.body, connect_timeout=settings.timeouts.connect)
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._task = asyncio.ensure_future(asyncio.wait_for(work, settings.timeouts.total))
        error: CellmageError | None = None
        usage: Usage | None = None
        try:
            body, usage = await self._task
        except asyncio.CancelledError:
            if not self._task.cancelled():
                raise  # the server itself is stopping this handler
            body, error = b"", None
        except TimeoutError:
            body, error = b"", UpstreamError("timeout", f"The embeddings took longer than timeouts.total ({settings.timeouts.total:g} s).")
        except CellmageError as e:
            body, error = b"", e
        elapsed_ms = round((loop.time() - started) * 1000)
        if usage is not None:
            usage = state.pricing.price(request.entry, Usage(usage.prompt_tokens, usage.completion_tokens or 0, usage.total_tokens))
        finish = "cancelled" if self._task.cancelled() else "error" if error else "stop"
        self.log_answer("openai embeddings", request.alias, finish, error, usage, elapsed_ms)
        await self.record(request.alias, usage, elapsed_ms, finish)
        if self._task.cancelled():
            return  # the client is gone
        if error is not None:
            raise error
        if request.dropped:
            self.set_header(DROPPED_HEADER, ", ".join(request.dropped))
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    def on_connection_close(self) -> None:
        if self._task is not None:
            self._task.cancel()  # closes the provider request
        super().on_connection_close()


def _model(alias: str) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": 0, "owned_by": "cellmage"}


class ModelsHandler(V1Handler):
    @web.authenticated
    @authorized_or_scoped
    @openai_mapped
    async def get(self) -> None:
        """The allowed aliases, in OpenAI's list format (no provider details, no secrets)."""
        settings = self.cellmage.require_config().settings
        self.finish(json.dumps({"object": "list", "data": [_model(alias) for alias in settings.allowed]}))


class ModelHandler(V1Handler):
    @web.authenticated
    @authorized_or_scoped
    @openai_mapped
    async def get(self, alias: str) -> None:
        """One allowed alias (the SDK's ``models.retrieve``)."""
        settings = self.cellmage.require_config().settings
        if alias not in settings.allowed:
            raise ModelNotFound(f"The model '{alias}' does not exist on this server.")
        self.finish(json.dumps(_model(alias)))


class NotServedHandler(V1Handler):
    """Any other OpenAI route (the Responses API, legacy completions, files, ...): a 404 that says
    what is served, so a library's error names the route rather than failing to parse a page."""

    @web.authenticated
    @authorized_or_scoped
    @openai_mapped
    async def get(self, route: str) -> None:
        raise NotFound(
            f"cellmage/v1/{route} is not served here: this endpoint serves chat/completions, "
            "embeddings and models of OpenAI's API."
        )

    post = delete = get


# Routes as data: (pattern under cellmage/v1, handler).
default_handlers: list[tuple[str, type[V1Handler]]] = [
    ("chat/completions", ChatCompletionsHandler),
    ("embeddings", EmbeddingsHandler),
    ("models", ModelsHandler),
    (r"models/([^/]+)", ModelHandler),
    (r"(.*)", NotServedHandler),
]
