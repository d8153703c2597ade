"""How an answer ends, said the same way by both clients: the Markdown appended after the answer
(a *Stopped* marker, the error with what to do, the status line) and the stored answer built from
them: an output whose ``text/html`` (answer_html.py) any renderer shows safely, and whose
ANSWER_MIME data holds the safe Markdown the lab plugin renders. ``labextension/src/ending.ts`` is the same for the lab plugin; both are tested against
``tests/ending_cases.json``.

Pure, and light to import (the kernel loads it with ``%load_ext``); markdown-it is loaded only by
:func:`final_markdown`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..safety.safe_markdown import break_tex

# Marks an output as an answer: the lab plugin renders it (mime.ts) from the safe Markdown in its
# data; everything else renders the output's text/html.
ANSWER_MIME = "application/vnd.cellmage.answer+json"

# What to do about each error code of the contract (and "disconnected": the stream ended without
# its `done`), appended to the server's message.
HINTS = {
    "auth": "The provider refused this server's key: ask the admin to check the model's key in cellmage.toml.",
    "rate_limited": "Rate limited by the provider: retry in a moment.",
    "context_length": "The prompt and its history are too long: use --no-history or a model with a longer context.",
    "timeout": "The provider took too long: try again, or ask for a shorter answer.",
    "content_filter": "The provider's content filter refused it: rephrase the prompt.",
    "upstream": "The provider failed: try again; if it keeps failing, ask the admin.",
    "internal": "The server failed while relaying the answer: try again; its log says more.",
    "shutdown": "The Jupyter server stopped: run the cell again when it is back.",
    "slow_client": "The answer was read too slowly and the server stopped it: run the cell again.",
    "disconnected": "The connection closed before the answer finished: run the cell again.",
    "abandoned": "Run the cell again for a whole answer.",
    "cell_busy": "Stop the running answer first, or wait for it to end.",
}

STOPPED = "*Stopped before the end of the answer.*"


@dataclass
class Ending:
    """How an answer ended."""

    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    elapsed_s: float | None = None
    error_code: str | None = None  # the contract's code, or "disconnected"
    error_message: str | None = None
    stopped: bool = False
    context: str | None = None  # what context went (context_summary)


def _size(chars: int) -> str:
    return f"{chars} B" if chars < 1000 else f"{chars / 1000:.1f} KB"


def context_summary(report: list[dict[str, Any]] | None) -> str:
    """What context went (``start``'s ``context``), in a few words: "3 cells, df (1.2 KB), error"."""
    words = []
    for item in report or ():
        kind, name, chars = item.get("kind"), item.get("name"), item.get("chars") or 0
        if kind == "cells":
            n = item.get("n") or 0
            words.append(f"{n} cell{'s' if n != 1 else ''}")
        elif kind == "error":
            words.append("error")
        elif name:
            words.append(f"{name} ({_size(chars)})")
    return ", ".join(words)


def status_line(ending: Ending) -> str:
    """model · context when some went · tokens in → out · cost when known · time."""
    parts = [ending.model or "unknown model"]
    if ending.context:
        parts.append(ending.context)
    if ending.prompt_tokens is not None or ending.completion_tokens is not None:
        prompt = "?" if ending.prompt_tokens is None else ending.prompt_tokens
        completion = "?" if ending.completion_tokens is None else ending.completion_tokens
        parts.append(f"{prompt} → {completion} tokens")
    if ending.cost_usd is not None:
        parts.append(f"${ending.cost_usd:.4f}" if ending.cost_usd >= 0.0001 else "< $0.0001")
    if ending.elapsed_s is not None:
        parts.append(f"{ending.elapsed_s:.1f} s")
    return " · ".join(parts)


def error_line(ending: Ending) -> str:
    """The error as one line of plain text: its code, the server's message, what to do."""
    code = ending.error_code or "internal"
    words = [f"Error ({code}):"]
    if ending.error_message:
        words.append(ending.error_message.strip())
    if code in HINTS:
        words.append(HINTS[code])
    return " ".join(words)


# ASCII punctuation but brackets and parentheses: escaped, "\\(" and "\\[" would open math.
_PUNCT = re.compile(r"([!-'*-/:-@\\^-`{-~])")


def escape(text: str) -> str:
    """Plain text inside Markdown: every ASCII punctuation character backslash-escaped (no markup,
    HTML, entity, link or image can start in it), but brackets as entities and parentheses as they
    are (an escaped one would open math: ``\\(``, ``\\[``), a backslash followed by a zero-width
    space, and TeX commands broken (MathJax reads the page)."""
    escaped = _PUNCT.sub(r"\\\1", break_tex(" ".join(text.split())))
    # A backslash shows as one, then a zero-width space: "\\(" in the text must not open math either.
    return escaped.replace("\\\\", "\\\\\u200b").replace("[", "&#91;").replace("]", "&#93;")


def ending_markdown(ending: Ending) -> str:
    """What follows the answer: the marker, the error, the status line; paragraphs of their own."""
    lines = []
    if ending.stopped:
        lines.append(STOPPED)
    if ending.error_code is not None and ending.error_code != "cancelled":
        lines.append(f"**{escape(error_line(ending))}**")
    lines.append(f"*{escape(status_line(ending))}*")
    return "\n\n".join(lines)


def final_markdown(text: str, ending: Ending, image_origins: tuple[str, ...] = ()) -> str:
    """The answer as it is stored: safe Markdown, any fence it left open closed, then its ending."""
    from ..safety.safe_markdown import close_open_fence, safe_markdown  # markdown-it: not at %load_ext

    body = close_open_fence(safe_markdown(text, image_origins)).rstrip("\n")
    return (body + "\n\n" if body.strip() else "") + ending_markdown(ending)


def answer_bundle(
    text: str, ending: Ending, image_origins: tuple[str, ...] = (), answer_id: str | None = None
) -> dict[str, Any]:
    """The stored output's data: ``text/html`` for every renderer, safe Markdown for the lab plugin
    (with the answer's id, so the plugin keeps the live rendering's DOM when this replaces it)."""
    from ..safety.answer_html import answer_html
    from ..safety.safe_markdown import close_open_fence

    closed = close_open_fence(text).rstrip("\n")
    html = answer_html((closed + "\n\n" if closed.strip() else "") + ending_markdown(ending), image_origins)
    mark: dict[str, Any] = {"markdown": final_markdown(text, ending, image_origins)}
    if answer_id is not None:
        mark["answer"] = {"id": answer_id}
    return {"text/html": html, ANSWER_MIME: mark}


def live_mark(answer_id: str) -> dict[str, Any]:
    """A live answer's placeholder mark (ANSWER_MIME data): the lab plugin follows the answer by
    its id and renders it (labextension/src/ending.ts: liveMarker)."""
    return {"markdown": "", "answer": {"id": answer_id, "live": True}}


def ending_from_events(
    model: str | None, usage: dict[str, Any] | None, error: dict[str, Any] | None, elapsed_ms: int | None
) -> Ending:
    """An :class:`Ending` from a stream's last events (``usage``, ``error``, ``done``)."""
    usage = usage or {}
    code = (error or {}).get("code")
    return Ending(
        model=model, prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
        cost_usd=usage.get("cost_usd"), elapsed_s=None if elapsed_ms is None else elapsed_ms / 1000,
        error_code=code, error_message=(error or {}).get("message"), stopped=code in ("cancelled", "abandoned"),
    )
