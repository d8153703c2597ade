"""One answer's lifecycle, the same for every wire format (the chat endpoint, OpenAI's
``chat/completions`` and ``responses``): a thin route turns its request into an :class:`Ask` and
an output, and :class:`AnswerService` does the rest, as jupyter_server's kernel handlers leave a
kernel's lifecycle to its manager:

1. **admitted** (:meth:`AnswerService.begin`): the user's running answers are under
   ``limits.max_streams_per_user`` and the cell is not answering, else 429 / 409 before any byte;
2. **running** (:meth:`Answer.run`): counted as this user's until its last byte is delivered, on
   the board for followers, relayed within the limits (``limits.stream_buffer_bytes`` for a slow
   client, ``limits.max_answer_bytes`` for a provider that never stops, the timeouts);
3. **finished**: redacted, priced, logged, its cell freed and its followers told, its turn stored
   with the conversation and its entry in the usage ledger, then delivered by the route; an answer
   its client never got is written into the live shared notebook where there is one.

A rule added later (a bound, a kind of context) is added here once.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import LoadedConfig, ModelEntry
from ..contract import ProviderEvent, Usage
from ..errors import Shutdown
from ..safety.redaction import redact, redact_values
from ..store.history import LedgerEntry, Store, Turn
from .board import AnswerBoard, AnswerRecord, ending_data, stored_output
from .pricing import Pricing
from .relay import Outcome, Output, Relay
from .streams import Streams

if TYPE_CHECKING:
    from ..collab import SharedNotebooks

log = logging.getLogger(__name__)


@dataclass
class Ask:
    """One answer, as a route asks for it."""

    owner: str  # the principal (principal.py)
    alias: str
    entry: ModelEntry
    events: AsyncIterator[ProviderEvent]  # the provider's stream
    route: str  # named in the log line: "chat", "openai chat", ...
    conversation: str | None = None  # the notebook, when the answer is a turn of its conversation
    cell_id: str | None = None
    persona: str | None = None
    prompt: str | None = None  # the turn's prompt, stored with its answer
    remember: bool = True  # store the turn (False: the cell's earlier turn goes, unless turn_key is set)
    turn_key: str | None = None  # the turn's key when it is not the cell's own (kept beside its earlier turn)
    context: str | None = None  # the context that went with the prompt, stored with the turn
    on_board: bool = True  # followers may follow it by id (the chat endpoint's answers)
    redact_text: bool = True  # its text is redacted as stored (OpenAI's chunks pass through as sent)
    keep_text: bool = True  # keep the text for the end (a stream nobody stores or assembles: False)


@dataclass
class Finished:
    """How an answer ended, for its route to deliver."""

    outcome: Outcome
    ending: dict[str, Any]  # the stream's last events' data (board.ending_data)
    record: AnswerRecord | None
    silent: bool  # its client went away: nothing more can be written to it


class Answer:
    """One admitted answer: ``run()`` it once; ``cancel()`` it from anywhere on the loop (a
    route's ``on_connection_close``, the cancel route)."""

    def __init__(self, service: AnswerService, ask: Ask, output: Output) -> None:
        self._service = service
        self.ask = ask
        self.output = output
        self.record: AnswerRecord | None = None
        config = service.config
        limits = config.settings.limits
        self.relay = Relay(
            ask.events, output, timeouts=config.settings.timeouts, ping_interval=limits.ping_interval,
            touch=service.touch, owner=ask.owner, buffer_bytes=limits.stream_buffer_bytes,
            max_bytes=limits.max_answer_bytes, keep_text=ask.keep_text,
        )

    @property
    def id(self) -> str:
        return self.relay.id

    def cancel(self, *, silent: bool = False) -> None:
        self.relay.cancel(silent=silent)

    async def run(
        self,
        *,
        started: Callable[[Answer], None] | None = None,
        deliver: Callable[[Finished], Awaitable[bool] | bool],
    ) -> Finished:
        """Run the answer to its end. ``started`` is called once it is registered (the route
        writes its first event); ``deliver`` writes its end and says whether the client got it.
        The answer counts as running until ``deliver`` returns."""
        return await self._service._run(self, started, deliver)


class AnswerService:
    """Every answer of this server, whichever route asked."""

    def __init__(
        self,
        *,
        config: LoadedConfig,
        streams: Streams,
        board: AnswerBoard,
        pricing: Pricing,
        store: Store | None,
        shared: SharedNotebooks | None,
        touch: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.streams = streams
        self.board = board
        self.pricing = pricing
        self.store = store
        self.shared = shared
        self.touch = touch

    def begin(self, ask: Ask, output: Output) -> Answer:
        """Admit an answer, or raise what its client should see (429, 409) before any byte."""
        self.streams.check_capacity(ask.owner)
        if ask.on_board:
            self.board.check_cell(ask.conversation, ask.cell_id)
        return Answer(self, ask, output)

    async def _run(
        self,
        answer: Answer,
        started: Callable[[Answer], None] | None,
        deliver: Callable[[Finished], Awaitable[bool] | bool],
    ) -> Finished:
        ask, relay = answer.ask, answer.relay
        with self.streams.running(relay):
            if ask.on_board:
                # On the board from here to the end: followers see it, its cell is taken.
                answer.record = self.board.open(
                    relay.id, owner=ask.owner, conversation=ask.conversation, cell_id=ask.cell_id,
                    model=ask.alias, persona=ask.persona,
                )
                if hasattr(answer.output, "tee"):
                    answer.output.tee = functools.partial(self.board.text, answer.record)  # type: ignore[attr-defined]
            if started is not None:
                started(answer)
            outcome = await relay.run()
            self._finish(ask, outcome)
            # The asker went away mid-answer (a page closed, a kernel died): for everyone else
            # the answer ends as abandoned, and where the notebook is shared live the server
            # writes it.
            finished = Finished(
                outcome, ending_data(outcome, abandoned=relay.silent and outcome.error is not None),
                answer.record, relay.silent,
            )
            if answer.record is not None:
                # The cell is free before the end goes out: its asker may ask again at once.
                self.board.end(answer.record, finished.ending, outcome.text if ask.keep_text else None)
            # Stored before the end goes out: a client that asks for the next cell as soon as
            # this answer is done must find this turn in the history (and a re-ask of the freed
            # cell stores its turn after this one, not before).
            await self._remember(ask, outcome)
            delivered = deliver(finished)
            if not isinstance(delivered, bool):
                delivered = await delivered
        if not delivered and answer.record is not None:
            # Its asker never got the end, so never wrote the stored answer: the server writes it
            # into the shared notebook where it can (a no-op without collaboration).
            await self.settle(answer.record)
        return finished

    def _finish(self, ask: Ask, outcome: Outcome) -> None:
        """The one place every answer's error and kept text pass before they are written, stored
        or logged (deltas already streamed were redacted as they went, by the chat route)."""
        secrets = self.config.secret_values()
        if ask.redact_text:
            outcome.text = redact_values(outcome.text, secrets)
        if outcome.error is not None:
            outcome.error.message = redact(outcome.error.message, secrets)
        if outcome.usage is not None:
            outcome.usage = self.price(ask.entry, ask.alias, outcome.usage)
        usage = outcome.usage
        log.info(
            "cellmage: answer route=%s user=%s model=%s finish=%s error=%s chars=%d tokens=%s/%s cost=%s %d ms",
            ask.route, ask.owner, ask.alias, outcome.finish_reason,
            outcome.error.code if outcome.error else "-", len(outcome.text),
            usage.prompt_tokens if usage else "?", usage.completion_tokens if usage else "?",
            usage.cost_usd if usage and usage.cost_usd is not None else "?", outcome.elapsed_ms,
        )

    def price(self, entry: ModelEntry, alias: str, usage: Usage) -> Usage:
        try:
            return self.pricing.price(entry, usage)
        except Exception:  # a price entry of the wrong shape: the answer stands, unpriced
            log.exception("cellmage: could not price an answer of %s", alias)
            return usage

    async def _remember(self, ask: Ask, outcome: Outcome) -> None:
        """The turn (when the answer belongs to a conversation) and the ledger entry."""
        if self.store is None:
            return
        if outcome.error is None:
            status = "ok"
        elif isinstance(outcome.error, Shutdown):
            status = "interrupted"
        else:
            status = "cancelled" if outcome.finish_reason == "cancelled" else "error"
        try:
            if ask.conversation is not None and not ask.remember:
                # Left out of the history (CellMage's --no-history): a re-run of the cell still
                # takes its earlier turn away, as the cell no longer shows that answer.
                if ask.cell_id is not None and ask.turn_key is None:
                    await self.store.delete_turn(ask.conversation, ask.cell_id)
            elif ask.conversation is not None and ask.prompt is not None:
                usage = outcome.usage
                turn = Turn(
                    cell_id=ask.turn_key or ask.cell_id or f"anonymous-{uuid.uuid4().hex}",
                    prompt=ask.prompt, answer=outcome.text, model=ask.alias, persona=ask.persona, status=status,
                    error=outcome.error.message if outcome.error else None,
                    prompt_tokens=usage.prompt_tokens if usage else None,
                    completion_tokens=usage.completion_tokens if usage else None,
                    cost_usd=usage.cost_usd if usage else None, context=ask.context,
                )
                await self.store.save_turn(ask.conversation, turn)
        except (sqlite3.Error, RuntimeError) as e:  # the answer stands; the log says what was not kept
            log.warning("cellmage: could not store the answer in %s: %s", self.store.path, e)
        await self.record(ask.owner, ask.alias, outcome.usage, outcome.elapsed_ms, outcome.finish_reason)

    async def record(self, owner: str, alias: str, usage: Usage | None, elapsed_ms: int, outcome: str) -> None:
        """One entry of the usage ledger (every answer, and every embeddings request)."""
        if self.store is None:
            return
        entry = LedgerEntry(
            user=owner, model=alias, elapsed_ms=elapsed_ms, outcome=outcome,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cost_usd=usage.cost_usd if usage else None,
        )
        try:
            await self.store.record(entry)
        except (sqlite3.Error, RuntimeError) as e:  # the answer stands; the log says what was not kept
            log.warning("cellmage: could not store the answer in %s: %s", self.store.path, e)

    async def settle(self, record: AnswerRecord) -> None:
        """Write an ended answer into its cell of the live shared notebook (real-time
        collaboration), once; nothing when collaboration is absent or the notebook is not open."""
        if record.written or record.ending is None or record.conversation is None or record.cell_id is None:
            return
        if self.shared is None or not self.shared.available:
            return
        origins = tuple(self.config.settings.image_origins)
        record.written = True  # one writer: a second settle while this one awaits does nothing
        record.written = await self.shared.replace_output(
            record.conversation, record.cell_id, record.id, stored_output(record, origins)
        )
