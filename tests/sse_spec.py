"""A byte-level Server-Sent Events parser written from the WHATWG HTML spec (9.2.6), for tests.

Independent of httpx-sse: it decodes UTF-8 incrementally, splits lines on CRLF, CR or LF only,
strips one leading space after the colon, and dispatches on blank lines.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable


def parse(chunks: Iterable[bytes]) -> list[tuple[str, str]]:
    """(event type, data) of every dispatched event, from bytes arriving in any split."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    events: list[tuple[str, str]] = []
    buffer = ""
    data: list[str] = []
    event_type = ""
    first = True

    def process(line: str) -> None:
        nonlocal event_type, data
        if line == "":
            if data:
                events.append((event_type or "message", "\n".join(data)))
            data, event_type = [], ""
            return
        if line.startswith(":"):
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data.append(value)

    pending_cr = False
    for chunk in chunks:
        text = decoder.decode(chunk)
        if first and text:
            text = text.removeprefix("\ufeff")
            first = False
        for ch in text:
            if pending_cr:
                pending_cr = False
                if ch == "\n":
                    continue
            if ch == "\r":
                process(buffer)
                buffer = ""
                pending_cr = True
            elif ch == "\n":
                process(buffer)
                buffer = ""
            else:
                buffer += ch
    return events
