"""The REST and SSE API under ``{base_url}cellmage/api/`` (wire contract v1 in the README).

Every verb is authenticated and authorized against the ``cellmage`` resource. Handlers raise
:class:`~cellmage_server.errors.CellmageError`; the :func:`mapped` decorator turns it into the
``HTTPError`` that jupyter-server's ``APIHandler.write_error`` writes as ``{"message", "reason"}``.
Once a stream has started, errors are SSE ``error`` events instead (see answer/relay.py).
"""

from __future__ import annotations

import asyncio
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
from tornado.iostream import StreamClosedError

from .._version import __version__
from ..answer.board import AnswerRecord, ending_data, stored_output
from ..answer.outputs import Discard, FollowerOutput, SSEOutput, ending_frames
from ..answer.plan import HOW_TO_CONFIGURE, plan_answer
from ..answer.relay import Outcome, Relay
from ..config import Limits, Timeouts
from ..contract import ChatRequest, comment, dumps, frame, parse_chat_request, usage_data
from ..errors import BadRequest, CellmageError, NotFound, PayloadTooLarge, Shutdown, http_error
from ..principal import principal
from ..safety import shapes
from ..safety.redaction import redact, redact_values
from ..store.history import LedgerEntry, Store, Turn, conversation_path, totals

if TYPE_CHECKING:
    from ..app import CellmageState

API_PATH = "cellmage/api"
AUTH_RESOURCE = "cellmage"

log = logging.getLogger(__name__)

# Above the body limit, how much tornado reads before it drops the connection itself (its reads are
# 64 KiB): within it, the handler answers 413 first.
BODY_SLACK = 128 * 1024


def mapped(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The one place typed errors become the HTTP errors jupyter-server writes as JSON."""

    @functools.wraps(method)
    async def wrapper(self: CellmageHandler, *args: str) -> None:
        try:
            await method(self, *args)
        except CellmageError as e:
            self.expected_error = e
            raise http_error(e) from e

    return wrapper


class CellmageHandler(APIHandler):
    auth_resource = AUTH_RESOURCE
    expected_error: CellmageError | None = None  # set by `mapped`, for the request log

    @property
    def cellmage(self) -> CellmageState:
        return self.settings["cellmage"]

    @property
    def username(self) -> str:
        """The principal (see principal.py): what cancel, limits and the ledger key on."""
        return principal(self.identity_provider, self.current_user)

    def conversation_id(self, raw: str) -> str:
        """A conversation's id: the notebook's API path. Kernels know their notebook by its file
        path (JPY_SESSION_NAME); one under the server's root becomes the same API path, one
        outside it is refused."""
        if os.path.isabs(raw):
            root = os.path.abspath(self.settings.get("server_root_dir") or self.contents_manager.root_dir)
            absolute = os.path.abspath(raw)
            if not absolute.startswith(root.rstrip(os.sep) + os.sep):
                raise BadRequest(f"The conversation {raw!r} is a file outside this server's root folder.")
            raw = absolute[len(root.rstrip(os.sep)) + 1 :].replace(os.sep, "/")
        try:
            return conversation_path(raw)
        except ValueError as e:
            raise BadRequest(f"The conversation {raw!r} is not a notebook path: {e}.") from None

    def store(self) -> Store:
        state = self.cellmage
        state.require_config()
        assert state.store is not None
        return state.store

    def without_gzip(self) -> None:
        """Never gzip an event stream: compression buffers frames and breaks token-by-token delivery."""
        self._transforms = [t for t in self._transforms if not isinstance(t, web.GZipContentEncoding)]

    def event_stream_headers(self) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")

    def visible(self, answer_id: str) -> AnswerRecord:
        """An answer this user may follow, settle or stop: any answer of a notebook cell (whoever
        can open this server can open the notebook), else only their own (404 for others)."""
        record = self.cellmage.answers.get(answer_id)
        if (record.conversation is None or record.cell_id is None) and record.owner != self.username:
            raise NotFound(f"No answer with id {answer_id!r} is known to this server.")
        return record

    async def settle(self, record: AnswerRecord) -> None:
        """Write an ended answer into its cell of the live shared notebook (real-time
        collaboration), once; nothing when collaboration is absent or the notebook is not open."""
        state = self.cellmage
        if record.written or record.ending is None or record.conversation is None or record.cell_id is None:
            return
        if state.shared is None or not state.shared.available:
            return
        origins = tuple(state.config.settings.image_origins) if state.config else ()
        record.written = True  # one writer: a second settle while this one awaits does nothing
        record.written = await state.shared.replace_output(
            record.conversation, record.cell_id, record.id, stored_output(record, origins)
        )

    def touch(self) -> None:
        """Count a running answer as server activity, so idle cullers leave the server up."""
        # ServerApp.last_activity() reads every setting whose name ends with "_last_activity".
        self.settings["cellmage_last_activity"] = utcnow()


@web.stream_request_body
class ChatHandler(CellmageHandler):
    """The body is read as it arrives, so a body over ``limits.max_prompt_bytes`` is refused
    before it is held: by its ``Content-Length`` at once, or as soon as it grows past the limit."""

    _relay: Relay | None = None

    async def prepare(self) -> None:
        self.without_gzip()
        await super().prepare()  # authenticates: nobody unknown gets to send a body
        config = self.cellmage.config
        self._limit = (config.settings.limits if config else Limits()).max_prompt_bytes
        self._body = bytearray()
        # tornado's own cap, a backstop for a chunked body sent in pieces larger than its reads.
        self.request.connection.set_max_body_size(self._limit + BODY_SLACK)
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._limit:
            raise http_error(self._too_large(int(declared)))

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        if len(self._body) + len(chunk) > self._limit:
            # Answered now, mid-body: tornado then closes the connection rather than read the rest.
            error = http_error(self._too_large(len(self._body) + len(chunk), at_least=True))
            self._body.clear()
            self.send_error(error.status_code, exc_info=(type(error), error, None))
            return
        self._body += chunk

    def _too_large(self, size: int, at_least: bool = False) -> PayloadTooLarge:
        more = "more than " if at_least else ""
        return PayloadTooLarge(f"The request is {more}{size} bytes; this server accepts at most {self._limit}.")

    @web.authenticated
    @authorized
    @mapped
    async def post(self) -> None:
        """Ask a model: the answer streams as SSE events, or comes whole with ``stream: false``."""
        state = self.cellmage
        config = state.require_config()
        request = parse_chat_request(bytes(self._body))
        conversation = self.conversation_id(request.conversation) if request.conversation else None
        earlier = []
        if conversation is not None and request.history and state.store is not None:
            earlier = await state.store.earlier_turns(conversation, request.cell_id)
        plan = plan_answer(request, config, state.personas, earlier, user=self.username)
        state.streams.check_capacity(self.username)
        state.answers.check_cell(conversation, request.cell_id)

        sse = SSEOutput(self, tuple(config.secret_values()))
        relay = Relay(
            state.providers[plan.path].stream(plan.call),
            sse if request.stream else Discard(),
            timeouts=config.settings.timeouts,
            ping_interval=config.settings.limits.ping_interval,
            touch=self.touch,
            owner=self.username,
            buffer_bytes=config.settings.limits.stream_buffer_bytes,
        )
        self._relay = relay
        persona = plan.persona.name if plan.persona else None
        with state.streams.running(relay):
            # On the board from here to the end: followers see it, its cell is taken.
            record = state.answers.open(
                relay.id, owner=self.username, conversation=conversation, cell_id=request.cell_id,
                model=plan.alias, persona=persona,
            )
            sse.tee = functools.partial(state.answers.text, record)
            if request.stream:
                self.set_status(200)
                self.event_stream_headers()
                start = {
                    "id": relay.id, "model": plan.alias, "persona": persona,
                    "history": {"turns": plan.history_turns, "dropped": plan.history_dropped},
                }
                sse.send(comment("cellmage") + frame("start", start))
            outcome = await relay.run()
            # The one place every answer's error and kept text pass before they are written,
            # stored or logged. (Deltas already streamed went out as the provider sent them.)
            secrets = config.secret_values()
            outcome.text = redact_values(outcome.text, secrets)
            if outcome.error is not None:
                outcome.error.message = redact(outcome.error.message, secrets)
            if outcome.usage is not None:
                try:
                    outcome.usage = state.pricing.price(config.settings.models[plan.alias], outcome.usage)
                except Exception:  # a price entry of the wrong shape: the answer stands, unpriced
                    self.log.exception("cellmage: could not price an answer of %s", plan.alias)
            self._log_answer(outcome, plan.alias)
            # The asker went away mid-answer (a page closed, a kernel died): for everyone else the
            # answer ends as abandoned, and where the notebook is shared live the server writes it.
            abandoned = relay.silent and outcome.error is not None
            ending = ending_data(outcome, abandoned=abandoned)
            # The cell is free before `done` goes out: its asker may ask again at once.
            state.answers.end(record, ending, outcome.text)
            # Stored before `done` goes out: a client that asks for the next cell as soon as this
            # answer is done must find this turn in the history. (And before the settle below
            # awaits: a re-ask of the freed cell stores its turn after this one, not before.)
            await self._remember(request, conversation, plan.alias, persona, outcome)
            # Still running until the client has its last byte (or is cut off).
            if request.stream:
                delivered = await self._end_stream(relay, ending, config.settings.timeouts.client_behind)
            else:
                delivered = self._answer_whole(relay, plan.alias, outcome)
            if not delivered:
                # Its asker never got the end, so never wrote the stored answer: the server writes
                # it into the shared notebook where it can (a no-op without collaboration).
                await self.settle(record)

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
        if outcome.error is None:
            status = "ok"
        elif isinstance(outcome.error, Shutdown):
            status = "interrupted"
        else:
            status = "cancelled" if outcome.finish_reason == "cancelled" else "error"
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
        except (sqlite3.Error, RuntimeError) as e:  # the answer stands; the log says what was not kept
            self.log.warning("cellmage: could not store the answer in %s: %s", store.path, e)

    async def _end_stream(self, relay: Relay, ending: dict[str, Any], patience: float) -> bool:
        """Write the last events; whether the client got them."""
        if relay.silent:
            return False  # the client is gone
        self.write(ending_frames(ending))
        try:
            await asyncio.wait_for(self.flush(), patience)
        except asyncio.TimeoutError:  # a client that does not read: stop holding its answer
            self.request.connection.close()
            return False
        except StreamClosedError:
            return False
        self.finish(set_content_type="text/event-stream; charset=utf-8")
        return True

    def _answer_whole(self, relay: Relay, alias: str, outcome: Outcome) -> bool:
        """Write the whole answer (or raise its error); whether there was a client to write to."""
        if relay.silent:
            return False  # the client is gone
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
        return True

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
        """Stop a running answer: the user's own, or any of a notebook cell (a collaborator's stop
        button); its stream ends with ``cancelled``."""
        owner = self.username
        try:
            owner = self.visible(stream_id).owner
        except NotFound:
            pass  # an answer without a cell: only its owner finds it below
        self.cellmage.streams.get(stream_id, owner).cancel()
        self.set_status(204)
        self.finish()


class AnswerHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self, answer_id: str) -> None:
        """One answer as the board has it: where it is, its text so far, how it ended (if it did)."""
        record = self.visible(answer_id)
        self.finish(dumps({**record.start_data(), "text": record.text, "ending": record.ending, "written": record.written}))


class SettleHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def post(self, answer_id: str) -> None:
        """Write an ended answer into its cell of the live shared notebook (a page that opened the
        notebook found the answer's live placeholder). ``{"written": bool}``: false when there is
        no real-time collaboration here; the page then writes it into its own notebook."""
        record = self.visible(answer_id)
        if record.ending is None:
            raise BadRequest(f"The answer {answer_id!r} is still running; follow it instead.")
        await self.settle(record)
        self.finish(dumps({"written": record.written}))


class FollowHandler(CellmageHandler):
    """``GET answers/{id}/events``: follow an answer someone else asked (a collaborator's page, or
    the lab plugin rendering a kernel's ``%%llm`` answer). The same events as the asker's stream:
    ``start`` (with the notebook and cell), the text so far as one ``delta``, every later
    ``delta``, then ``usage``, ``error`` and ``done``. A follower cannot slow the answer down."""

    _follow: tuple[AnswerRecord, FollowerOutput] | None = None

    async def prepare(self) -> None:
        self.without_gzip()
        await super().prepare()

    @web.authenticated
    @authorized
    @mapped
    async def get(self, answer_id: str) -> None:
        state = self.cellmage
        record = self.visible(answer_id)
        limits = state.config.settings.limits if state.config else Limits()
        limits_behind = (state.config.settings.timeouts if state.config else Timeouts()).client_behind
        self.event_stream_headers()
        output = FollowerOutput(self, max_backlog=limits.stream_buffer_bytes)
        output.send(comment("cellmage") + frame("start", record.start_data()))
        self._follow = (record, output)
        state.answers.follow(record, output)
        try:
            while not output.ended.done():  # ends with the answer, or when this page goes away
                try:
                    await asyncio.wait_for(asyncio.shield(output.ended), limits.ping_interval)
                except asyncio.TimeoutError:
                    output.ping()
        finally:
            state.answers.unfollow(record, output)
        try:  # the last events are in the socket (or the page is gone, or it never reads)
            await asyncio.wait_for(output.drained(0), limits_behind)
        except asyncio.TimeoutError:
            self.request.connection.close()
            return
        if not self._finished:
            try:
                self.finish()
            except StreamClosedError:
                pass

    def on_connection_close(self) -> None:
        if self._follow is not None:
            record, output = self._follow
            self.cellmage.answers.unfollow(record, output)
            if not output.ended.done():
                output.ended.set_result(None)
        super().on_connection_close()


class ModelsHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """The model aliases clients may use (no provider details, no secrets)."""
        config = self.cellmage.require_config()
        settings = config.settings
        models = []
        for alias in settings.allowed:
            model: dict[str, Any] = {"name": alias, "description": settings.models[alias].description}
            model["available"] = alias not in config.unavailable
            if alias in config.unavailable:
                model["problem"] = config.unavailable[alias]
            models.append(model)
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
            broken = [a for a in config.settings.allowed if a in config.unavailable]
            message = f"{len(config.settings.allowed) - len(broken)} model(s) available."
            if broken:
                message += " Unavailable: " + " ".join(config.unavailable[a] for a in broken)
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "configured": configured,
                    "default_model": config.settings.resolved_default_model if config else None,
                    "models": len(config.settings.allowed) if config else 0,
                    "unavailable_models": dict(config.unavailable) if config else {},
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
        """A conversation's turns, in notebook order (the id is the notebook's path)."""
        path = self.conversation_id(conversation)
        turns = await self.store().turns(path)
        self.finish(dumps({"id": path, "turns": [t.public() for t in turns], "totals": totals(turns)}))

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
        if shapes.cell_id(cell_id) is None:
            raise BadRequest(f"{cell_id[:80]!r} is not a notebook cell id (1 to 64 of A-Z a-z 0-9 - _).")
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
    (r"answers/([0-9a-f]{32})", AnswerHandler),
    (r"answers/([0-9a-f]{32})/events", FollowHandler),
    (r"answers/([0-9a-f]{32})/settle", SettleHandler),
    ("models", ModelsHandler),
    ("personas", PersonasHandler),
    ("status", StatusHandler),
    # The notebook path as the contents API takes it (slashes as written, or URL-encoded).
    (r"conversations/(.+)/turns/([^/]+)", TurnHandler),
    (r"conversations/(.+)", ConversationHandler),
    ("usage", UsageHandler),
]
