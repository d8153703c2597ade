"""The Responses wire format out: a provider's ``chat.completion.chunk`` objects become OpenAI's
Responses events, in the order the SDKs check (``response.created`` first, sequence numbers from
0), and the whole ``response`` object. Pure: no I/O.

A streamed answer, as :class:`ResponseBuilder` writes it::

    response.created, response.in_progress                        with the first chunk
    response.output_item.added (message), response.content_part.added,
        response.output_text.delta ...                             the answer's text
    response.output_item.added (function_call),
        response.function_call_arguments.delta ...                 each tool call
    ... then, at the end, each item's done events in order:
    response.output_text.done, response.content_part.done, response.function_call_arguments.done,
        response.output_item.done
    response.completed | response.incomplete (max_output_tokens, content_filter)   with usage
    ... or, after a failure, instead of the done events:
    error (this server's code: upstream, timeout, too_long, slow_client, ...), response.failed

The done events and the last one repeat what the deltas carried (the whole text, up to four
times), so they are written in pieces (:meth:`ResponseBuilder.end`, pieces.py): the server holds
a piece for its client, never the whole answer encoded again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...contract import Usage, well_formed
from ...errors import UpstreamError
from .pieces import Long, PieceEncoder, dumps, resolved


def _frame(data: dict[str, Any]) -> str:
    # One line of compact JSON (it escapes every newline) under a fixed event name: valid SSE.
    return f"event: {data['type']}\ndata: {dumps(data)}\n\n"


def _unreadable(what: str) -> UpstreamError:
    return UpstreamError("upstream", f"The provider sent a chunk this server cannot read ({what}).")


def _string(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _unreadable(f"{what} is not a string")
    return well_formed(value)


@dataclass
class _Part:
    kind: str  # "output_text" | "refusal"
    pieces: list[str] = field(default_factory=list)


@dataclass
class _Item:
    """One output item: a message (its content parts) or a function call."""

    id: str
    kind: str  # "message" | "function_call"
    index: int = -1  # its output_index
    parts: list[_Part] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ResponseBuilder:
    """Folds chat chunks into a response. ``feed`` takes the provider path's SSE frames and, when
    ``streaming``, returns the Responses events they make; ``end`` gives the last events in pieces;
    ``response`` the whole object (a whole answer)."""

    def __init__(self, model: str, echo: dict[str, Any], *, streaming: bool) -> None:
        self.id = "resp_" + uuid.uuid4().hex
        self.created_at = int(time.time())
        self.streaming = streaming
        self.started = False  # response.created went out
        self._model = model
        self._echo = echo
        self._seq = 0
        self._items: list[_Item] = []
        self._open: _Item | None = None  # the message receiving text
        self._calls: dict[int, _Item] = {}  # by the chunks' tool-call index
        self._usage_details: dict[str, Any] = {}
        self._encoder = PieceEncoder()

    # --- chunks in --------------------------------------------------------------------------

    def feed(self, frames: str) -> str:
        out: list[str] = []
        for frame in frames.split("\n\n"):
            if frame.startswith("data: "):
                try:
                    chunk = json.loads(frame[6:])
                except ValueError:
                    raise _unreadable("not JSON") from None
                self._chunk(chunk, out)
        return "".join(out)

    def _chunk(self, chunk: object, out: list[str]) -> None:
        if not isinstance(chunk, dict):
            raise _unreadable("not an object")
        if not self.started:
            self.started = True
            if self.streaming:
                out.append(self._event("response.created", response=self._response("in_progress")))
                out.append(self._event("response.in_progress", response=self._response("in_progress")))
        usage = chunk.get("usage")
        if isinstance(usage, dict):  # its counts reach the ledger by the provider path; the details here
            self._usage_details = usage
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise _unreadable("its choices are not a list")
        for choice in choices:
            if not isinstance(choice, dict):
                raise _unreadable("a choice is not an object")
            if choice.get("index", 0) != 0:
                continue  # one answer per response
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise _unreadable("a delta is not an object")
            text = _string(delta.get("content"), "its content")
            if text:
                self._text("output_text", text, out)
            refusal = _string(delta.get("refusal"), "its refusal")
            if refusal:
                self._text("refusal", refusal, out)
            calls = delta.get("tool_calls") or []
            if not isinstance(calls, list):
                raise _unreadable("its tool calls are not a list")
            for call in calls:
                self._tool_call(call, out)

    def _text(self, kind: str, text: str, out: list[str]) -> None:
        item = self._open
        if item is None:
            item = self._open = self._add(_Item("msg_" + uuid.uuid4().hex, "message"), out)
        if not item.parts or item.parts[-1].kind != kind:
            item.parts.append(_Part(kind))
            if self.streaming:
                out.append(self._event(
                    "response.content_part.added", item_id=item.id, output_index=item.index,
                    content_index=len(item.parts) - 1, part=self._part(item.parts[-1], ""),
                ))
        item.parts[-1].pieces.append(text)
        if self.streaming:
            where = f'"item_id":"{item.id}","output_index":{item.index},"content_index":{len(item.parts) - 1}'
            if kind == "output_text":
                out.append(self._delta("response.output_text.delta", where, text, ',"logprobs":[]'))
            else:
                out.append(self._delta("response.refusal.delta", where, text))

    def _tool_call(self, call: object, out: list[str]) -> None:
        if not isinstance(call, dict):
            raise _unreadable("a tool call is not an object")
        index = call.get("index", len(self._calls))
        function = call.get("function") or {}
        if not isinstance(function, dict) or isinstance(index, bool) or not isinstance(index, int):
            raise _unreadable("a tool call is not one")
        name = _string(function.get("name"), "a tool's name")
        arguments = _string(function.get("arguments"), "a tool call's arguments")
        item = self._calls.get(index)
        if item is None:
            self._open = None  # text after a call is a new message
            call_id = _string(call.get("id"), "a tool call's id") or "call_" + uuid.uuid4().hex
            item = self._calls[index] = _Item("fc_" + uuid.uuid4().hex, "function_call", call_id=call_id, name=name)
            self._add(item, out)
        elif name:
            item.name += name  # a provider that sends the name in pieces
        if arguments:
            item.arguments.append(arguments)
            if self.streaming:
                where = f'"item_id":"{item.id}","output_index":{item.index}'
                out.append(self._delta("response.function_call_arguments.delta", where, arguments))

    def _add(self, item: _Item, out: list[str]) -> _Item:
        item.index = len(self._items)
        self._items.append(item)
        if self.streaming:
            out.append(self._event(
                "response.output_item.added", output_index=item.index,
                item=self._item(item, "in_progress", skeleton=False),
            ))
        return item

    # --- events and objects out --------------------------------------------------------------

    def _delta(self, kind: str, where: str, delta: str, tail: str = "") -> str:
        """A delta event, the hot path: one dumps of the delta, the rest (this server's ids and
        counts, nothing that needs escaping) written as it is."""
        seq = self._seq
        self._seq += 1
        return f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":{seq},{where},"delta":{dumps(delta)}{tail}}}\n\n'

    def _event(self, kind: str, **data: Any) -> str:
        event = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return _frame(event)

    def _part(self, part: _Part, text: str | Long) -> dict[str, Any]:
        if part.kind == "refusal":
            return {"type": "refusal", "refusal": text}
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def _value(self, pieces: list[str], skeleton: bool) -> str | Long:
        return Long(pieces) if skeleton else "".join(pieces)

    def _item(self, item: _Item, status: str, *, skeleton: bool) -> dict[str, Any]:
        """The item as the API shows it (``skeleton``: long strings left as :class:`Long`)."""
        if item.kind == "function_call":
            return {
                "id": item.id, "type": "function_call", "status": status, "call_id": item.call_id,
                "name": item.name, "arguments": self._value(item.arguments, skeleton) if status != "in_progress" else "",
            }
        content = [] if status == "in_progress" else [self._part(p, self._value(p.pieces, skeleton)) for p in item.parts]
        return {"id": item.id, "type": "message", "status": status, "role": "assistant", "content": content}

    def _response(
        self, status: str, *, usage: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
        incomplete: str | None = None, skeleton: bool = False,
    ) -> dict[str, Any]:
        item_status = "in_progress" if status == "in_progress" else "completed" if status == "completed" else "incomplete"
        echo = self._echo
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": echo.get("instructions"), "max_output_tokens": echo.get("max_output_tokens"),
            "model": self._model, "output": [self._item(i, item_status, skeleton=skeleton) for i in self._items],
            "parallel_tool_calls": echo.get("parallel_tool_calls", True), "previous_response_id": None,
            "reasoning": echo.get("reasoning"), "store": False, "temperature": echo.get("temperature"),
            "text": echo.get("text") or {"format": {"type": "text"}}, "tool_choice": echo.get("tool_choice", "auto"),
            "tools": echo.get("tools") or [], "top_p": echo.get("top_p"), "truncation": "disabled",
            "usage": usage, "user": None, "metadata": {}, "background": False,
        }

    def _usage(self, usage: Usage | None) -> dict[str, Any] | None:
        if usage is None:
            return None
        details = self._usage_details
        prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
        return {
            "input_tokens": prompt, "output_tokens": completion,
            "total_tokens": usage.total_tokens if usage.total_tokens is not None else prompt + completion,
            "input_tokens_details": {"cached_tokens": _count(details, "prompt_tokens_details", "cached_tokens"), "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": _count(details, "completion_tokens_details", "reasoning_tokens")},
        }

    def _ending(self, finish: str, usage: Usage | None, error: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """The last event's type, and its response (a skeleton)."""
        if error is not None:
            # ResponseError's codes are OpenAI's; the `error` event before it carries this server's.
            code = "rate_limit_exceeded" if error.get("code") == "rate_limited" else "server_error"
            failure = {"code": code, "message": error.get("message", "")}
            return "response.failed", self._response("failed", usage=self._usage(usage), error=failure, skeleton=True)
        incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish)
        if incomplete:
            return "response.incomplete", self._response("incomplete", usage=self._usage(usage), incomplete=incomplete, skeleton=True)
        return "response.completed", self._response("completed", usage=self._usage(usage), skeleton=True)

    def response(self, finish: str, usage: Usage | None) -> dict[str, Any]:
        """The whole response of an answer that ended with ``finish``."""
        return resolved(self._ending(finish, usage, None)[1])

    def end(self, finish: str, usage: Usage | None, error: dict[str, Any] | None = None) -> Iterator[str]:
        """The stream's last events, in pieces of at most about ``pieces.PIECE_CHARS`` characters
        of text each (JSON-escaped): each item's done events, then the terminal event; or, after a
        failure (``error``: the ``error`` object of errors.stream_error), ``error`` then
        ``response.failed``, whose output holds the text so far."""
        if not self.started:
            self.started = True
            yield self._event("response.created", response=self._response("in_progress"))
            yield self._event("response.in_progress", response=self._response("in_progress"))
        if error is not None:
            # Failed: no item is done; the error first, then the response with the text so far.
            yield self._event("error", code=error.get("code"), message=error.get("message", ""), param=error.get("param"))
        else:
            yield from self._done_events("incomplete" if finish in ("length", "content_filter") else "completed")
        kind, response = self._ending(finish, usage, error)
        yield from self._pieces(self._skeleton_event(kind, response=response))

    def _done_events(self, status: str) -> Iterator[str]:
        for index, item in enumerate(self._items):
            if item.kind == "function_call":
                yield from self._pieces(self._skeleton_event(
                    "response.function_call_arguments.done", item_id=item.id, output_index=index,
                    name=item.name, arguments=Long(item.arguments),
                ))
            for content_index, part in enumerate(item.parts):
                where = {"item_id": item.id, "output_index": index, "content_index": content_index}
                if part.kind == "output_text":
                    yield from self._pieces(self._skeleton_event("response.output_text.done", **where, text=Long(part.pieces), logprobs=[]))
                else:
                    yield from self._pieces(self._skeleton_event("response.refusal.done", **where, refusal=Long(part.pieces)))
                yield from self._pieces(self._skeleton_event("response.content_part.done", **where, part=self._part(part, Long(part.pieces))))
            yield from self._pieces(self._skeleton_event(
                "response.output_item.done", output_index=index, item=self._item(item, status, skeleton=True)
            ))

    def _skeleton_event(self, kind: str, **data: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return event

    def _pieces(self, event: dict[str, Any]) -> Iterator[str]:
        return self._encoder.frame(event)


def _count(usage: dict[str, Any], details: str, name: str) -> int:
    """A count from the usage chunk's details, or 0 (providers send anything, or nothing)."""
    part = usage.get(details)
    value = part.get(name) if isinstance(part, dict) else None
    return value if type(value) is int and value >= 0 else 0
