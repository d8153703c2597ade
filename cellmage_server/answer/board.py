"""Answers as others see them: the board of running and recently ended answers.

Every answer of a notebook cell is on the board from its ``start`` to its end, with its text so
far, so that anyone may follow it by id (``GET answers/{id}/events``): a collaborator's page
watching the cell, or the lab plugin rendering a ``%%llm`` answer the kernel is streaming. The
board also owns "this cell is answering": one answer per notebook cell, whoever asks.

Ended answers stay for a while (a bounded number and size) so a page that comes late, or opens the
notebook after the asker left, learns how they ended. Pure bookkeeping: no I/O; followers are
anything with ``text`` and ``end``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..contract import usage_data
from ..errors import CellBusy, NotFound, sse_error

# How a follower learns that an answer was abandoned: its asker (a page, a kernel) went away
# before the end. The stored answer says so like a stopped one.
ABANDONED = "abandoned"
ABANDONED_MESSAGE = "The page or kernel that asked for this answer closed before the answer ended."


def ending_data(outcome: Any, *, abandoned: bool = False) -> dict[str, Any]:
    """How a relay's ``Outcome`` ended, as a stream's last events carry it (outputs.ending_frames).
    An abandoned answer ends, for its followers, with the ``abandoned`` error."""
    error = sse_error(outcome.error) if outcome.error is not None else None
    if abandoned:
        error = {"code": ABANDONED, "message": ABANDONED_MESSAGE}
    return {
        "usage": usage_data(outcome.usage) if outcome.usage is not None else None,
        "error": error,
        "done": {"finish_reason": outcome.finish_reason, "elapsed_ms": outcome.elapsed_ms},
    }


class Follower(Protocol):
    def text(self, text: str) -> None:
        """More of the answer's text."""

    def end(self, ending: dict[str, Any]) -> None:
        """The answer ended (see :meth:`AnswerRecord.ending`); nothing follows."""


@dataclass
class AnswerRecord:
    id: str
    owner: str
    conversation: str | None
    cell_id: str | None
    model: str
    persona: str | None
    parts: list[str] = field(default_factory=list)
    # Set at the end: {"usage": {...} | None, "error": {"code", "message"} | None,
    # "done": {"finish_reason", "elapsed_ms"}}.
    ending: dict[str, Any] | None = None
    # The server wrote the final output into the live shared notebook itself (collab.py).
    written: bool = False
    followers: list[Follower] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def size(self) -> int:
        """Its text's size in UTF-8 bytes."""
        return sum(len(p.encode("utf-8", "surrogatepass")) for p in self.parts)

    def start_data(self) -> dict[str, Any]:
        """A follower's ``start`` event: who and where (never the prompt)."""
        return {
            "id": self.id, "model": self.model, "persona": self.persona,
            "conversation": self.conversation, "cell_id": self.cell_id, "running": self.ending is None,
        }


class AnswerBoard:
    """The answers of this server that have a notebook cell, running and recently ended."""

    def __init__(self, keep: int = 200, keep_bytes: int = 16 << 20) -> None:
        self._keep, self._keep_bytes = keep, keep_bytes
        self._running: dict[str, AnswerRecord] = {}
        self._cells: dict[tuple[str, str], str] = {}  # (notebook, cell id) -> running answer id
        self._ended: OrderedDict[str, AnswerRecord] = OrderedDict()
        self._ended_bytes = 0

    def check_cell(self, conversation: str | None, cell_id: str | None) -> None:
        """Raise :class:`CellBusy` if that cell is answering now."""
        if conversation is not None and cell_id is not None and (conversation, cell_id) in self._cells:
            raise CellBusy(
                "This cell is already answering (asked from another page or kernel). Stop that "
                "answer first, or wait for it to end, then ask again."
            )

    def open(
        self, answer_id: str, *, owner: str, conversation: str | None, cell_id: str | None,
        model: str, persona: str | None,
    ) -> AnswerRecord:
        """Put a starting answer on the board, holding its cell."""
        self.check_cell(conversation, cell_id)
        record = AnswerRecord(answer_id, owner, conversation, cell_id, model, persona)
        self._running[answer_id] = record
        if conversation is not None and cell_id is not None:
            self._cells[(conversation, cell_id)] = answer_id
        return record

    def text(self, record: AnswerRecord, text: str) -> None:
        record.parts.append(text)
        for follower in record.followers:
            follower.text(text)

    def end(self, record: AnswerRecord, ending: dict[str, Any], final_text: str | None = None) -> None:
        """The answer ended: its cell is free, its followers get the end. ``final_text``, when
        given, is the text as stored (the relay's, redacted) and replaces what was streamed."""
        if record.ending is not None:
            return
        if final_text is not None:
            streamed = record.text
            if final_text.startswith(streamed) and len(final_text) > len(streamed):
                # Text its followers have not had yet (a whole answer's, which streams to nobody)
                for follower in record.followers:
                    follower.text(final_text[len(streamed):])
            record.parts = [final_text]
        record.ending = ending
        self._running.pop(record.id, None)
        key = (record.conversation, record.cell_id)
        if self._cells.get(key) == record.id:  # type: ignore[arg-type]
            del self._cells[key]  # type: ignore[arg-type]
        followers, record.followers = record.followers, []
        for follower in followers:
            follower.end(ending)
        size = record.size
        if size > self._keep_bytes:
            return  # kept only while it ran: one answer must not push every other out
        self._ended[record.id] = record
        self._ended_bytes += size
        while self._ended and (len(self._ended) > self._keep or self._ended_bytes > self._keep_bytes):
            _, old = self._ended.popitem(last=False)
            self._ended_bytes -= old.size

    def get(self, answer_id: str) -> AnswerRecord:
        record = self._running.get(answer_id) or self._ended.get(answer_id)
        if record is None:
            raise NotFound(
                f"No answer with id {answer_id!r} is known to this server (it ended long ago, or "
                "before the server last started)."
            )
        return record

    def follow(self, record: AnswerRecord, follower: Follower) -> None:
        """``follower`` gets the text so far, then every delta, then the end (at once if ended)."""
        if record.parts:
            follower.text(record.text)
        if record.ending is not None:
            follower.end(record.ending)
        else:
            record.followers.append(follower)

    def unfollow(self, record: AnswerRecord, follower: Follower) -> None:
        if follower in record.followers:
            record.followers.remove(follower)

    def running_in(self, conversation: str) -> list[AnswerRecord]:
        """The answers running in one notebook."""
        return [r for r in self._running.values() if r.conversation == conversation]


def stored_output(record: AnswerRecord, image_origins: tuple[str, ...] = ()) -> dict[str, Any]:
    """An ended answer as the cell's output, as the clients store it: the answer bundle (text,
    stopped marker, error, status line) with the answer's metadata."""
    from .ending import answer_bundle, ending_from_events

    assert record.ending is not None
    usage, error, done = record.ending.get("usage"), record.ending.get("error"), record.ending["done"]
    ending = ending_from_events(record.model, usage, error, done.get("elapsed_ms"))
    meta: dict[str, Any] = {
        "model": record.model, "persona": record.persona, "usage": usage,
        "elapsed_ms": done.get("elapsed_ms"), "finish_reason": done.get("finish_reason"),
    }
    if ending.stopped:
        meta["stopped"] = True
    if error is not None:
        meta["error"] = error
    return {
        "output_type": "display_data",
        "data": answer_bundle(record.text, ending, image_origins, answer_id=record.id),
        "metadata": {"cellmage": meta},
    }
