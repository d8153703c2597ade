"""The REST and SSE API under ``{base_url}cellmage/api/`` (wire contract v1 in the README).

Every verb is authenticated and authorized against the ``cellmage`` resource. Handlers raise
:class:`~cellmage_server.errors.CellmageError`; the :func:`mapped` decorator turns it into the
``HTTPError`` that jupyter-server's ``APIHandler.write_error`` writes as ``{"message", "reason"}``.
Once a stream has started, errors are SSE ``error`` events instead (see relay.py).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from jupyter_server._tz import utcnow
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ._version import __version__
from .contract import ChatRequest, comment, dumps, frame, parse_chat_request, usage_data
from .errors import CellmageError, PayloadTooLarge, http_error, sse_error
from .history import LedgerEntry, Store, Turn, totals
from .relay import Outcome, Relay
from .resolve import HOW_TO_CONFIGURE, plan_answer

if TYPE_CHECKING:
    from .app import CellmageState

API_PATH = "cellmage/api"
AUTH_RESOURCE = "cellmage"

log = logging.getLogger(__name__)


def mapped(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The one place typed errors become the HTTP errors jupyter-server writes as JSON."""

    @functools.wraps(method)
    async def wrapper(self: CellmageHandler, *args: str) -> None:
        try:
            await method(self, *args)
        except CellmageError as e:
            raise http_error(e) from e

    return wrapper


class CellmageHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def cellmage(self) -> CellmageState:
        return self.settings["cellmage"]

    @property
    def username(self) -> str:
        return self.current_user.username

    def conversation_id(self, raw: str) -> str:
        """A conversation's id: the notebook's API path. Kernels know their notebook by its file
        path (JPY_SESSION_NAME); one under the server's root becomes the same API path."""
        root = os.path.abspath(self.settings.get("server_root_dir") or self.contents_manager.root_dir)
        if os.path.isabs(raw):
            absolute = os.path.abspath(raw)
            if absolute.startswith(root + os.sep):
                return absolute[len(root) + 1 :].replace(os.sep, "/")
        return raw.strip("/")

    def store(self) -> Store:
        state = self.cellmage
        state.require_config()
        assert state.store is not None
        return state.store

    def touch(self) -> None:
        """Count a running answer as server activity, so idle cullers leave the server up."""
        # ServerApp.last_activity() reads every setting whose name ends with "_last_activity".
        self.settings["cellmage_last_activity"] = utcnow()


class SSEOutput:
    """Writes a running answer to the response as SSE frames, each flushed at once."""

    def __init__(self, handler: web.RequestHandler) -> None:
        self._handler = handler

    def send(self, data: bytes) -> None:
        # Not awaited: once the client is gone the flush fails (tornado marks that error as
        # retrieved) and on_connection_close cancels the answer.
        self._handler.write(data)
        self._handler.flush()

    def text(self, text: str) -> None:
        self.send(frame("delta", {"text": text}))

    def ping(self) -> None:
        self.send(comment("ping"))


class _Discard:
    """A non-streamed answer: the relay keeps the text; nothing goes out until the end."""

    def text(self, text: str) -> None:
        pass

    def ping(self) -> None:
        pass


class ChatHandler(CellmageHandler):
    _relay: Relay | None = None

    def prepare(self) -> Any:
        # Never gzip an event stream: compression buffers frames and breaks token-by-token delivery.
        self._transforms = [t for t in self._transforms if not isinstance(t, web.GZipContentEncoding)]
        return super().prepare()

    @web.authenticated
    @authorized
    @mapped
    async def post(self) -> None:
        """Ask a model: the answer streams as SSE events, or comes whole with ``stream: false``."""
        state = self.cellmage
        config = state.require_config()
        limit = config.settings.limits.max_prompt_bytes
        if len(self.request.body) > limit:
            raise PayloadTooLarge(f"The request is {len(self.request.body)} bytes; this server accepts at most {limit}.")
        request = parse_chat_request(self.request.body)
        conversation = self.conversation_id(request.conversation) if request.conversation else None
        earlier = []
        if conversation is not None and request.history and state.store is not None:
            earlier = await state.store.earlier_turns(conversation, request.cell_id)
        plan = plan_answer(request, config, state.personas, earlier, user=self.username)
        state.streams.check_capacity(self.username)

        sse = SSEOutput(self)
        relay = Relay(
            state.providers[plan.path].stream(plan.call),
            sse if request.stream else _Discard(),
            timeouts=config.settings.timeouts,
            ping_interval=config.settings.limits.ping_interval,
            touch=self.touch,
            owner=self.username,
        )
        self._relay = relay
        persona = plan.persona.name if plan.persona else None
        with state.streams.running(relay):
            if request.stream:
                self.set_status(200)
                self.set_header("Content-Type", "text/event-stream; charset=utf-8")
                self.set_header("Cache-Control", "no-cache")
                self.set_header("X-Accel-Buffering", "no")
                start = {
                    "id": relay.id, "model": plan.alias, "persona": persona,
                    "history": {"turns": plan.history_turns, "dropped": plan.history_dropped},
                }
                sse.send(comment("cellmage") + frame("start", start))
            outcome = await relay.run()
        if outcome.usage is not None:
            outcome.usage = state.pricing.price(config.settings.models[plan.alias], outcome.usage)
        self._log_answer(outcome, plan.alias)
        # Stored before `done` goes out: a client that asks for the next cell as soon as this
        # answer is done must find this turn in the history.
        await self._remember(request, conversation, plan.alias, persona, outcome)
        if request.stream:
            self._end_stream(relay, outcome)
        else:
            self._answer_whole(relay, plan.alias, outcome)

    async def _remember(
        self, request: ChatRequest, conversation: str | None, alias: str, persona: str | None, outcome: Outcome
    ) -> None:
        """The turn (when the answer belongs to a conversation) and the ledger entry."""
        store = self.cellmage.store
        if store is None:
            return
        usage = outcome.usage
        counts = {
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "cost_usd": usage.cost_usd if usage else None,
        }
        status = "ok" if outcome.error is None else ("cancelled" if outcome.finish_reason == "cancelled" else "error")
        try:
            if conversation is not None:
                turn = Turn(
                    cell_id=request.cell_id or f"anonymous-{uuid.uuid4().hex}",
                    prompt=request.prompt, answer=outcome.text, model=alias, persona=persona, status=status,
                    error=outcome.error.message if outcome.error else None, **counts,
                )
                await store.save_turn(conversation, turn)
            entry = LedgerEntry(
                user=self.username, model=alias, elapsed_ms=outcome.elapsed_ms, outcome=outcome.finish_reason, **counts
            )
            await store.record(entry)
        except sqlite3.Error as e:  # the answer itself stands; the log says what was not kept
            self.log.warning("cellmage: could not store the answer in %s: %s", store.path, e)

    def _end_stream(self, relay: Relay, outcome: Outcome) -> None:
        if relay.silent:
            return  # the client is gone
        tail = b""
        if outcome.usage is not None:
            tail += frame("usage", usage_data(outcome.usage))
        if outcome.error is not None:
            tail += frame("error", sse_error(outcome.error))
        tail += frame("done", {"finish_reason": outcome.finish_reason, "elapsed_ms": outcome.elapsed_ms})
        self.write(tail)
        self.finish(set_content_type="text/event-stream; charset=utf-8")

    def _answer_whole(self, relay: Relay, alias: str, outcome: Outcome) -> None:
        if relay.silent:
            return  # the client is gone
        if outcome.error is not None:
            raise outcome.error
        self.finish(
            dumps(
                {
                    "id": relay.id,
                    "model": alias,
                    "text": outcome.text,
                    "usage": usage_data(outcome.usage) if outcome.usage else None,
                    "finish_reason": outcome.finish_reason,
                    "elapsed_ms": outcome.elapsed_ms,
                }
            )
        )

    def _log_answer(self, outcome: Outcome, alias: str) -> None:
        usage = outcome.usage
        self.log.info(
            "cellmage: answer user=%s model=%s finish=%s error=%s chars=%d tokens=%s/%s cost=%s %d ms",
            self.username, alias, outcome.finish_reason,
            outcome.error.code if outcome.error else "-", len(outcome.text),
            usage.prompt_tokens if usage else "?", usage.completion_tokens if usage else "?",
            usage.cost_usd if usage and usage.cost_usd is not None else "?", outcome.elapsed_ms,
        )

    def on_connection_close(self) -> None:
        if self._relay is not None:
            self._relay.cancel(silent=True)
        super().on_connection_close()


class CancelHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def post(self, stream_id: str) -> None:
        """Stop one of the current user's running answers; its stream ends with ``cancelled``."""
        self.cellmage.streams.get(stream_id, self.username).cancel()
        self.set_status(204)
        self.finish()


class ModelsHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """The model aliases clients may use (no provider details, no secrets)."""
        settings = self.cellmage.require_config().settings
        models = [
            {"name": alias, "description": settings.models[alias].description}
            for alias in settings.allowed
        ]
        self.finish(json.dumps({"default": settings.resolved_default_model, "models": models}))


class PersonasHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """The personas clients may use."""
        self.finish(json.dumps([p.public() for p in self.cellmage.personas.all()]))


class StatusHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """Version, whether a provider is configured, the default model (no secrets)."""
        state = self.cellmage
        config = state.config
        configured = bool(config and config.settings.models)
        if config is None:
            message = f"The CellMage configuration is invalid: {state.config_error}"
        elif not configured:
            message = HOW_TO_CONFIGURE
        else:
            message = f"{len(config.settings.allowed)} model(s) available."
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "configured": configured,
                    "default_model": config.settings.resolved_default_model if config else None,
                    "models": len(config.settings.allowed) if config else 0,
                    "config_file": str(config.path) if config and config.path else None,
                    "running_answers": len(state.streams),
                    "image_origins": config.settings.image_origins if config else [],
                    "persona_errors": state.personas.errors(),
                    "message": message,
                }
            )
        )


class ConversationHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self, conversation: str) -> None:
        """A conversation's turns, in notebook order (the id is the URL-encoded notebook path)."""
        turns = await self.store().turns(self.conversation_id(conversation))
        self.finish(
            dumps({"id": self.conversation_id(conversation), "turns": [t.public() for t in turns], "totals": totals(turns)})
        )

    @web.authenticated
    @authorized
    @mapped
    async def delete(self, conversation: str) -> None:
        """Forget a conversation's turns."""
        await self.store().clear(self.conversation_id(conversation))
        self.set_status(204)
        self.finish()


class TurnHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def delete(self, conversation: str, cell_id: str) -> None:
        """Forget one cell's turn."""
        await self.store().delete_turn(self.conversation_id(conversation), cell_id)
        self.set_status(204)
        self.finish()


class UsageHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """The current user's totals by day and model (never another user's)."""
        self.finish(dumps(await self.store().usage(self.username)))


# Routes as data: (pattern under API_PATH, handler).
default_handlers: list[tuple[str, type[CellmageHandler]]] = [
    ("chat", ChatHandler),
    (r"chat/([0-9a-f]{32})/cancel", CancelHandler),
    ("models", ModelsHandler),
    ("personas", PersonasHandler),
    ("status", StatusHandler),
    (r"conversations/([^/]+)/turns/([^/]+)", TurnHandler),
    (r"conversations/([^/]+)", ConversationHandler),
    ("usage", UsageHandler),
]
