"""Following an answer by id (``GET answers/{id}/events``): the events its asker gets, for anyone
else who shows it (a collaborator's page, the lab plugin rendering a kernel's ``%%llm`` answer).

A follower reads the answer's text from the board (board.py) at its own pace: the text so far in
pieces, then each new piece, then the end. What the server holds for it is what its socket has
not taken, at most ``limits.stream_buffer_bytes`` and a piece; one that stays that far behind for
``timeouts.client_behind`` is cut (``slow_client``). A follower never slows the answer down.
"""

from __future__ import annotations

import asyncio

from ..contract import comment, delta_frame, frame
from .board import AnswerRecord
from .outputs import SocketOutput, ending_frames

SLOW = {
    "error": {
        "code": "slow_client",
        "message": "This page read the answer too slowly to follow it; the cell shows it when it ends.",
    },
    "done": {"finish_reason": "error", "elapsed_ms": 0},
}


async def follow(
    record: AnswerRecord, out: SocketOutput, *, buffer_bytes: int, patience: float, ping_interval: float
) -> bool:
    """Write ``record``'s events to ``out`` until the answer ended and its end is delivered (True),
    or the client is gone or was cut (False)."""
    out.send(comment("cellmage") + frame("start", record.start_data()))
    # A piece is at most 1/8 of the buffer in characters: its frame (JSON may escape a character
    # into 6 bytes) stays under the buffer.
    piece = max(1024, buffer_bytes // 8)
    at = (0, 0)
    while not out.gone:
        text, at = record.read(at, piece)
        if text:
            out.send(delta_frame(text))
            if out.backlog > buffer_bytes:
                try:
                    await asyncio.wait_for(out.drained(buffer_bytes // 2), patience)
                except asyncio.TimeoutError:
                    out.send(ending_frames(SLOW))  # queued behind what it has not read
                    return False
            continue
        if record.ending is not None:
            out.send(ending_frames(record.ending))
            try:
                await asyncio.wait_for(out.drained(0), patience)
            except asyncio.TimeoutError:
                return False
            return not out.gone
        more = record.more()
        await asyncio.wait((more, out.closed()), timeout=ping_interval, return_when=asyncio.FIRST_COMPLETED)
        if not more.done() and not out.gone:
            out.send(comment("ping"))
    return False
