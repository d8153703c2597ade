"""The routes under ``{base_url}cellmage/v1/``: OpenAI's wire format for the libraries in kernels.

Every verb is authenticated: with the server's scoped key (``Authorization: Bearer <key>``, see
scoped_key.py) or with ordinary Jupyter credentials (token header, cookie + XSRF). Errors come in
OpenAI's shape (errors.py): :func:`openai_mapped` writes typed errors, ``write_error`` the rest
(authentication, unknown routes). After a stream has started, an error is its last event.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from http.client import responses
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import User
from jupyter_server.base.call_context import CallContext
from tornado import web

from ..config import OPENAI_COMPATIBLE, LoadedConfig
from ..contract import ProviderEvent, Usage
from ..errors import CellmageError, NotFound, PayloadTooLarge, UpstreamError
from ..handlers import CellmageHandler
from ..history import LedgerEntry
from ..providers import ProviderCall
from ..relay import Outcome, Relay
from . import fields, upstream
from .errors import ModelNotFound, described, error_object, stream_error
from .fields import Translated
from .scoped_key import ScopedKey, key_owner
from .wire import DONE, PING, Assembler, frames_to_chunks

SETTINGS_KEY = "cellmage_scoped_key"
DROPPED_HEADER = "x-cellmage-dropped"


def openai_mapped(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Typed errors raised before a response started become OpenAI-shaped error responses."""

    @functools.wraps(method)
    async def wrapper(self: V1Handler, *args: str) -> None:
        try:
            await method(self, *args)
        except CellmageError as e:
            status, body, headers = described(e)
            self.clear()
            self.set_status(status)
            for name, value in headers.items():
                self.set_header(name, value)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))

    return wrapper


def authorized_or_scoped(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The scoped key is its own authorization: it opens these routes and no other. Jupyter
    credentials go through the server's authorizer, as on every other route."""
    checked = authorized(method)

    @functools.wraps(method)
    async def wrapper(self: V1Handler, *args: str) -> None:
        if self.scoped:
            return await method(self, *args)
        return await checked(self, *args)

    return wrapper


class V1Handler(CellmageHandler):
    scoped = False  # authenticated by the scoped key

    @property
    def scoped_key(self) -> ScopedKey:
        return self.settings[SETTINGS_KEY]

    async def prepare(self) -> None:  # type: ignore[override]
        if self.scoped_key.opens(self.request.headers.get("Authorization", "")):
            self._prepare_scoped()
            return
        try:
            await super().prepare()
        except web.HTTPError as e:
            if e.status_code == 403 and not self.current_user:
                # 401, as OpenAI answers a wrong key: the SDKs raise AuthenticationError for it.
                raise web.HTTPError(
                    401, "Invalid credentials: use the OPENAI_API_KEY this server gives its kernels, or a Jupyter token."
                ) from None
            raise

    def _prepare_scoped(self) -> None:
        """What JupyterHandler.prepare does, with the scoped key in place of the identity provider."""
        CallContext.set(CallContext.JUPYTER_HANDLER, self)
        if not self.check_host():
            raise web.HTTPError(403)
        self.scoped = True
        self.current_user = self._jupyter_current_user = User(key_owner())
        self._token_authenticated = True  # a header credential, like the token: no XSRF cookie applies
        self.set_cors_headers()
        if not self.check_origin():
            raise web.HTTPError(404)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = responses.get(status_code, "Unknown error")
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and not isinstance(exc, web.HTTPError):
            message = "The server failed; see its log."
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(error_object(status_code, message)))

    def check_body(self, config: LoadedConfig) -> dict[str, Any]:
        limit = config.settings.openai_endpoint.max_body_bytes
        if len(self.request.body) > limit:
            raise PayloadTooLarge(f"The request is {len(self.request.body)} bytes; this server accepts at most {limit}.")
        return fields.decode(self.request.body)

    def provider_call(self, request: Translated, config: LoadedConfig) -> ProviderCall:
        entry = request.entry
        api_base = entry.api_base
        if entry.path == "openai":
            api_base = api_base or OPENAI_COMPATIBLE[entry.prefix]
        return ProviderCall(
            model=entry.model, api_base=api_base, api_key=config.keys.get(request.alias),
            messages=[], max_tokens=config.settings.limits.max_tokens, alias=request.alias,
        )

    async def record(self, alias: str, usage: Usage | None, elapsed_ms: int, outcome: str) -> None:
        store = self.cellmage.store
        if store is None:
            return
        entry = LedgerEntry(
            user=self.username, model=alias, elapsed_ms=elapsed_ms, outcome=outcome,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cost_usd=usage.cost_usd if usage else None,
        )
        try:
            await store.record(entry)
        except sqlite3.Error as e:  # the answer itself stands; the log says what was not kept
            self.log.warning("cellmage: could not store the answer in %s: %s", store.path, e)

    def log_answer(self, route: str, alias: str, finish: str, error: CellmageError | None, usage: Usage | None, ms: int) -> None:
        self.log.info(
            "cellmage: %s user=%s model=%s finish=%s error=%s tokens=%s/%s cost=%s %d ms",
            route, self.username, alias, finish, error.code if error else "-",
            usage.prompt_tokens if usage else "?", usage.completion_tokens if usage else "?",
            usage.cost_usd if usage and usage.cost_usd is not None else "?", ms,
        )


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
