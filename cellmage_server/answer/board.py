"""Answers as others see them: the board of running and recently ended answers.

Every answer of the chat endpoint is on the board from its ``start`` to its end, with its text so
far, so that anyone may follow it by id (``GET answers/{id}/events``): a collaborator's page
watching the cell, or the lab plugin rendering a ``%%llm`` answer the kernel is streaming. The
board also owns "this cell is answering": one answer per notebook cell, whoever asks.

Followers read the text (follow.py); the board holds it once, whatever their number, and counts
them: at most ``max_per_answer`` on one answer and ``max_per_user`` for one person.

Ended answers stay for a while (a bounded number and size) so a page that comes late, or opens the
notebook after the asker left, learns how they ended. Pure bookkeeping: no I/O.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..contract import usage_data
from ..errors import CellBusy, NotFound, TooManyFollowers, sse_error

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


def _utf8(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass
class AnswerRecord:
    id: str
    owner: str
    conversation: str | None
    cell_id: str | None
    model: str
    persona: str | None
    # The text as it went out, in the pieces it went out in (followers read them in place).
    parts: list[str] = field(default_factory=list)
    size: int = 0  # the parts' size in UTF-8 bytes
    # The text as stored, when it is not the parts joined (redacted whole at the end).
    final: str | None = None
    # Set at the end: {"usage": {...} | None, "error": {"code", "message"} | None,
    # "done": {"finish_reason", "elapsed_ms"}}.
    ending: dict[str, Any] | None = None
    # The server wrote the final output into the live shared notebook itself (collab.py).
    written: bool = False
    followers: int = 0
    _more: asyncio.Future[None] | None = None

    @property
    def text(self) -> str:
        return self.final if self.final is not None else "".join(self.parts)

    def start_data(self) -> dict[str, Any]:
        """A follower's ``start`` event: who and where (never the prompt)."""
        return {
            "id": self.id, "model": self.model, "persona": self.persona,
            "conversation": self.conversation, "cell_id": self.cell_id, "running": self.ending is None,
        }

    def read(self, at: tuple[int, int], most: int) -> tuple[str, tuple[int, int]]:
        """Up to about ``most`` characters of the text from ``at`` (part, offset), and where the
        next read starts. Costs what it reads, not the text before it."""
        index, offset = at
        out: list[str] = []
        taken = 0
        while index < len(self.parts) and taken < most:
            part = self.parts[index]
            piece = part[offset : offset + most - taken]
            out.append(piece)
            taken += len(piece)
            offset += len(piece)
            if offset >= len(part):
                index, offset = index + 1, 0
        return "".join(out), (index, offset)

    def more(self) -> asyncio.Future[None]:
        """Done when more text comes, or the answer ends."""
        if self._more is None or self._more.done():
            self._more = asyncio.get_running_loop().create_future()
        return self._more

    def _changed(self) -> None:
        if self._more is not None and not self._more.done():
            self._more.set_result(None)


class AnswerBoard:
    """The answers of this server, running and recently ended."""

    def __init__(
        self, keep: int = 200, keep_bytes: int = 16 << 20, *, max_per_answer: int = 16, max_per_user: int = 32
    ) -> None:
        self._keep, self._keep_bytes = keep, keep_bytes
        self.max_per_answer, self.max_per_user = max_per_answer, max_per_user
        self._running: dict[str, AnswerRecord] = {}
        self._cells: dict[tuple[str, str], str] = {}  # (notebook, cell id) -> running answer id
        self._ended: OrderedDict[str, AnswerRecord] = OrderedDict()
        self._ended_bytes = 0
        self._following: Counter[str] = Counter()  # principal -> followers open

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
        record.size += _utf8(text)
        record._changed()

    def end(self, record: AnswerRecord, ending: dict[str, Any], final_text: str | None = None) -> None:
        """The answer ended: its cell is free, its followers get the end. ``final_text``, when
        given, is the text as stored (the relay's, redacted): text it adds past what went out
        (a whole answer's) goes to the followers too; where redaction made it differ, followers
        keep what went out and later readers get ``final_text``."""
        if record.ending is not None:
            return
        if final_text is not None:
            streamed = "".join(record.parts)
            if final_text.startswith(streamed):
                if len(final_text) > len(streamed):
                    self.text(record, final_text[len(streamed) :])
            else:
                record.final = final_text
        record.ending = ending
        record._changed()
        self._running.pop(record.id, None)
        key = (record.conversation, record.cell_id)
        if self._cells.get(key) == record.id:  # type: ignore[arg-type]
            del self._cells[key]  # type: ignore[arg-type]
        size = max(record.size, _utf8(record.final) if record.final is not None else 0)
        if size > self._keep_bytes:
            return  # kept only while it ran: one answer must not push every other out
        self._ended[record.id] = record
        self._ended_bytes += size
        while self._ended and (len(self._ended) > self._keep or self._ended_bytes > self._keep_bytes):
            _, old = self._ended.popitem(last=False)
            self._ended_bytes -= max(old.size, _utf8(old.final) if old.final is not None else 0)

    def get(self, answer_id: str) -> AnswerRecord:
        record = self._running.get(answer_id) or self._ended.get(answer_id)
        if record is None:
            raise NotFound(
                f"No answer with id {answer_id!r} is known to this server (it ended long ago, or "
                "before the server last started)."
            )
        return record

    def follow(self, record: AnswerRecord, user: str) -> None:
        """Count one more follower of ``record`` for ``user``, or raise :class:`TooManyFollowers`."""
        if record.followers >= self.max_per_answer:
            raise TooManyFollowers(
                f"This answer already has {record.followers} followers (limits.max_followers_per_answer); "
                "close a page that shows it, or wait for the answer to end."
            )
        if self._following[user] >= self.max_per_user:
            raise TooManyFollowers(
                f"You already follow {self._following[user]} answers (limits.max_followers_per_user); "
                "close pages that show running answers, or wait for them to end."
            )
        record.followers += 1
        self._following[user] += 1

    def unfollow(self, record: AnswerRecord, user: str) -> None:
        record.followers -= 1
        self._following[user] -= 1
        if self._following[user] <= 0:
            del self._following[user]

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
