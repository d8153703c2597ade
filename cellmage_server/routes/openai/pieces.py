"""JSON written a piece at a time: an SSE event whose long strings (an answer's whole text) are
encoded in runs of about ``PIECE_CHARS`` characters, so a writer can wait for its client between
pieces instead of holding the whole event encoded. Pure.

A long string is a :class:`Long` inside the event; :class:`PieceEncoder` puts a marker in its
place, encodes the rest once, and splices the escaped runs in where the markers are. The markers
are random per encoder, so no text a provider sends can forge one.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

# At most this many characters of a long string go into one piece (JSON escaping may make a
# piece up to six times as many bytes).
PIECE_CHARS = 32 * 1024


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Long:
    """A string kept as the pieces it came in."""

    __slots__ = ("pieces",)

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces


def resolved(value: Any) -> Any:
    """``value`` with every :class:`Long` joined into its string."""
    if isinstance(value, Long):
        return "".join(value.pieces)
    if isinstance(value, dict):
        return {k: resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolved(v) for v in value]
    return value


class PieceEncoder:
    def __init__(self) -> None:
        self._mark = secrets.token_hex(8)
        # json.dumps escapes the NULs around a marker as \u0000, which no other text can contain
        # next to this mark.
        self._found = re.compile(r"\\u0000" + self._mark + r":(\d+)\\u0000")

    def frame(self, event: dict[str, Any]) -> Iterator[str]:
        """``event`` as one SSE frame (``event:`` its type), in pieces."""
        longs: list[Long] = []

        def mark(value: Any) -> Any:
            if isinstance(value, Long):
                longs.append(value)
                return f"\x00{self._mark}:{len(longs) - 1}\x00"
            if isinstance(value, dict):
                return {k: mark(v) for k, v in value.items()}
            if isinstance(value, list):
                return [mark(v) for v in value]
            return value

        skeleton = dumps(mark(event))
        head = f"event: {event['type']}\ndata: "
        at = 0
        for found in self._found.finditer(skeleton):
            head += skeleton[at : found.start()]
            at = found.end()
            for piece in escaped(longs[int(found.group(1))].pieces):
                yield head + piece
                head = ""
        yield head + skeleton[at:] + "\n\n"


def escaped(pieces: list[str]) -> Iterator[str]:
    """``pieces`` joined and JSON-escaped (without the quotes), in runs of about ``PIECE_CHARS``."""
    run: list[str] = []
    size = 0
    for piece in pieces:
        run.append(piece)
        size += len(piece)
        if size >= PIECE_CHARS:
            yield dumps("".join(run))[1:-1]
            run, size = [], 0
    yield dumps("".join(run))[1:-1]
