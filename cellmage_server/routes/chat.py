"""``POST chat`` (ask: the answer streams as SSE events, or comes whole) and ``POST
chat/{id}/cancel``: the chat endpoint's wire format over the answer lifecycle (answer/lifecycle.py)."""

from __future__ import annotations

import asyncio
import uuid

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..answer.lifecycle import Answer, Ask, Finished
from ..answer.outputs import Discard, SSEOutput, ending_frames
from ..answer.plan import plan_answer
from ..contract import comment, dumps, frame, parse_chat_request, usage_data
from ..errors import NotFound
from .base import CellmageHandler, PromptBodyHandler, mapped


class ChatHandler(PromptBodyHandler):
    _answer: Answer | None = None

    @web.authenticated
    @authorized
    @mapped
    async def post(self) -> None:
        """Ask a model: the answer streams as SSE events, or comes whole with ``stream: false``."""
        state = self.cellmage
        config = state.require_config()
        answers = self.answers
        request = parse_chat_request(self.body())
        conversation = self.conversation_id(request.conversation) if request.conversation else None
        earlier = []
        if conversation is not None and request.history and state.store is not None:
            # Without rollback the cell's own earlier turn is history too.
            earlier = await state.store.earlier_turns(conversation, request.cell_id if request.rollback else None)
        notebook = self.notebook_personas(conversation) if request.persona else None
        assembled = await self.assembled(request.context, conversation, request.cell_id)
        plan = plan_answer(
            request, config, state.personas, earlier, user=self.username, notebook=notebook, context=assembled
        )
        persona = plan.persona.name if plan.persona else None
        turn_key = None
        if not request.rollback and request.cell_id is not None:
            turn_key = f"{request.cell_id[:40]}-r{uuid.uuid4().hex[:12]}"  # a new turn, in a cell id's shape
        ask = Ask(
            owner=self.username, alias=plan.alias, entry=config.settings.models[plan.alias],
            events=state.providers[plan.path].stream(plan.call), route="chat",
            conversation=conversation, cell_id=request.cell_id, persona=persona, prompt=request.prompt,
            remember=request.remember, turn_key=turn_key, context=plan.context_text,
        )
        patience = config.settings.timeouts.client_behind

        def started(answer: Answer) -> None:
            self.set_status(200)
            self.event_stream_headers()
            start = {
                "id": answer.id, "model": plan.alias, "persona": persona,
                "history": {"turns": plan.history_turns, "dropped": plan.history_dropped},
                **(plan.context or {}),
            }
            answer.output.send(comment("cellmage") + frame("start", start))  # type: ignore[attr-defined]

        async def end_stream(finished: Finished) -> bool:
            """Write the last events; whether the client got them."""
            if finished.silent:
                return False  # the client is gone
            self.write(ending_frames(finished.ending))
            try:
                await asyncio.wait_for(self.flush(), patience)
            except asyncio.TimeoutError:  # a client that does not read: stop holding its answer
                self.request.connection.close()
                return False
            except StreamClosedError:
                return False
            self.finish(set_content_type="text/event-stream; charset=utf-8")
            return True

        def answer_whole(finished: Finished) -> bool:
            """Write the whole answer (or raise its error); whether there was a client to write to."""
            if finished.silent:
                return False
            outcome = finished.outcome
            if outcome.error is not None:
                raise outcome.error
            self.finish(
                dumps(
                    {
                        "id": self._answer.id if self._answer else None,
                        "model": plan.alias,
                        "text": outcome.text,
                        "usage": usage_data(outcome.usage) if outcome.usage else None,
                        "finish_reason": outcome.finish_reason,
                        "elapsed_ms": outcome.elapsed_ms,
                    }
                )
            )
            return True

        if request.stream:
            self._answer = answers.begin(ask, SSEOutput(self, tuple(config.secret_values())))
            await self._answer.run(started=started, deliver=end_stream)
        else:
            self._answer = answers.begin(ask, Discard())
            await self._answer.run(deliver=answer_whole)

    def on_connection_close(self) -> None:
        if self._answer is not None:
            self._answer.cancel(silent=True)
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
