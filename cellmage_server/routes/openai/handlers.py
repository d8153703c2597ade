"""The routes under ``{base_url}cellmage/v1/``: OpenAI's wire formats for the libraries in kernels.
``chat/completions`` and ``responses`` are two of the three wire formats over one answer
lifecycle (answer/lifecycle.py; the chat endpoint is the third), thin over answering.py.

Every verb is authenticated: with the server's scoped key (``Authorization: Bearer <key>``, see
scoped_key.py) or with ordinary Jupyter credentials (token header, cookie + XSRF); see base.py.
Errors come in OpenAI's shape (errors.py). After a stream has started, an error is its last event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from tornado import web

from ...answer.lifecycle import Ask, Finished
from ...answer.outputs import Discard
from ...contract import ProviderEvent, Usage
from ...errors import CellmageError, NotFound, UpstreamError
from ...providers import passthrough as upstream
from . import fields
from .answering import AnswerRoute, FrameOutput, encoded
from .base import DROPPED_HEADER, V1Handler, authorized_or_scoped, openai_mapped
from .errors import ModelNotFound, stream_error
from .fields import Translated
from .not_served import not_served
from .responses_fields import responses_request
from .responses_wire import ResponseBuilder
from .wire import DONE, Assembler, frames_to_chunks

log = logging.getLogger(__name__)


class ChatCompletionsHandler(AnswerRoute):
    @web.authenticated
    @authorized_or_scoped
    @openai_mapped
    async def post(self) -> None:
        """OpenAI Chat Completions: streamed as ``chat.completion.chunk`` events, or whole."""
        config = self.cellmage.require_config()
        request = fields.chat_request(self.check_body(), config.settings, self.username)
        # A whole answer needs the usage chunk too: it is the answer's "usage".
        events = self.provider_events(request, config, include_usage=request.include_usage or not request.stream)
        ask = Ask(
            owner=self.username, alias=request.alias, entry=request.entry, events=events,
            route="openai chat", on_board=False, redact_text=False, keep_text=not request.stream,
        )
        if request.stream:
            output = FrameOutput(self, request.dropped)
            self._answer = self.answers.begin(ask, output)
            await self._answer.run(deliver=lambda finished: self._end_stream(output, finished))
        else:
            self._answer = self.answers.begin(ask, Discard())
            await self._answer.run(deliver=lambda finished: self._answer_whole(request, finished))

    async def _end_stream(self, output: FrameOutput, finished: Finished) -> bool:
        """Write the last event; whether the client got it."""
        if finished.silent:
            return False  # the client is gone
        error = finished.outcome.error
        if error is not None and not output.started:
            raise error  # nothing sent yet: the error keeps its status
        last = DONE if error is None else b"data: " + json.dumps(stream_error(error)).encode() + b"\n\n"
        return await self.write_end(output, [last])

    def _answer_whole(self, request: Translated, finished: Finished) -> bool:
        if finished.silent:
            return False
        outcome = finished.outcome
        if outcome.error is not None:
            raise outcome.error
        assembler = Assembler()
        for chunk in frames_to_chunks(outcome.text):
            assembler.add(chunk)
        self.write_whole(request, json.dumps(assembler.result(), ensure_ascii=False))
        return True


class ResponsesHandler(AnswerRoute):
    @web.authenticated
    @authorized_or_scoped
    @openai_mapped
    async def post(self) -> None:
        """OpenAI Responses, stateless: translated to chat completions for the provider and back,
        streamed as Responses events or whole."""
        config = self.cellmage.require_config()
        request = responses_request(self.check_body(), config.settings, self.username)
        builder = ResponseBuilder(request.alias, request.echo, streaming=request.stream)
        ask = Ask(
            owner=self.username, alias=request.alias, entry=request.entry,
            events=translated(self.provider_events(request, config, include_usage=True), builder),
            route="openai responses", on_board=False, redact_text=False, keep_text=False,
        )
        if request.stream:
            output = FrameOutput(self, request.dropped)
            self._answer = self.answers.begin(ask, output)
            await self._answer.run(deliver=lambda finished: self._end_stream(output, builder, finished))
        else:
            self._answer = self.answers.begin(ask, Discard())
            await self._answer.run(deliver=lambda finished: self._answer_whole(request, builder, finished))

    async def _end_stream(self, output: FrameOutput, builder: ResponseBuilder, finished: Finished) -> bool:
        if finished.silent:
            return False
        outcome = finished.outcome
        if outcome.error is not None and not output.started:
            raise outcome.error  # nothing sent yet: the error keeps its status
        error = stream_error(outcome.error)["error"] if outcome.error is not None else None
        pieces = builder.end(outcome.finish_reason, outcome.usage, error)
        return await self.write_end(output, (encoded(piece) for piece in pieces))

    def _answer_whole(self, request: Translated, builder: ResponseBuilder, finished: Finished) -> bool:
        if finished.silent:
            return False
        outcome = finished.outcome
        if outcome.error is not None:
            raise outcome.error
        self.write_whole(request, json.dumps(builder.response(outcome.finish_reason, outcome.usage), ensure_ascii=False))
        return True


async def translated(chunks: AsyncIterator[ProviderEvent], builder: ResponseBuilder) -> AsyncIterator[ProviderEvent]:
    """The provider's chat chunks as Responses events (a whole answer: the chunks as they came, so
    the relay counts them against ``limits.max_answer_bytes``; the builder keeps the answer)."""
    async with contextlib.aclosing(chunks):  # closing this closes the provider request
        async for event in chunks:
            if type(event) is str:
                frames = builder.feed(event)
                if builder.streaming:
                    if frames:
                        yield frames
                    continue
            yield event


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
        request = fields.embeddings_request(self.check_body(), settings, self.username)
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
        answers = self.answers
        if usage is not None:
            usage = answers.price(request.entry, request.alias, Usage(usage.prompt_tokens, usage.completion_tokens or 0, usage.total_tokens))
        finish = "cancelled" if self._task.cancelled() else "error" if error else "stop"
        log.info(
            "cellmage: embeddings user=%s model=%s finish=%s error=%s tokens=%s %d ms", self.username, request.alias,
            finish, error.code if error else "-", usage.prompt_tokens if usage else "?", elapsed_ms,
        )
        await answers.record(self.username, request.alias, usage, elapsed_ms, finish)
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
    """Any other OpenAI route (stored responses, legacy completions, files, ...): a 404 that says
    what is served and what to use instead (not_served.py), so a library's error names the route
    rather than failing to parse a page."""

    @web.authenticated
    @authorized_or_scoped
    @openai_mapped
    async def get(self, route: str) -> None:
        raise NotFound(not_served(route))

    post = delete = get


# Routes as data: (pattern under cellmage/v1, handler).
default_handlers: list[tuple[str, type[V1Handler]]] = [
    ("chat/completions", ChatCompletionsHandler),
    ("responses", ResponsesHandler),
    ("embeddings", EmbeddingsHandler),
    ("models", ModelsHandler),
    (r"models/([^/]+)", ModelHandler),
    (r"(.*)", NotServedHandler),
]
