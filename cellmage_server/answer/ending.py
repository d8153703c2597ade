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
# its `done`).
HINTS = {
    "auth": "Ask whoever runs this Jupyter server to check the model's key in cellmage.toml.",
    "rate_limited": "Wait a moment, then run the cell again.",
    "context_length": "Use --no-history, clear the conversation, or choose a model with a longer context.",
    "timeout": "Run the cell again, or ask for a shorter answer.",
    "content_filter": "Rephrase the prompt.",
    "upstream": "Run the cell again; if it keeps failing, ask whoever runs this Jupyter server.",
    "internal": "Run the cell again; the Jupyter server's log says more.",
    "shutdown": "Run the cell again once the Jupyter server is back.",
    "slow_client": "Run the cell again.",
    "too_long": "Ask for a shorter answer.",
    "disconnected": "Check that the Jupyter server is running, then run the cell again.",
    "abandoned": "Run the cell again for a whole answer.",
    "cell_busy": "Stop the running answer first, or wait for it to end.",
}

# What happened, for a code whose message is empty.
WHAT = {
    "auth": "The provider refused this server's key.",
    "rate_limited": "The provider is limiting how often this server may ask.",
    "context_length": "The prompt and the conversation before it are too long for this model.",
    "timeout": "The provider took too long to answer.",
    "content_filter": "The provider's content filter refused the prompt or the answer.",
    "upstream": "The provider failed.",
    "internal": "The Jupyter server failed while relaying the answer.",
    "shutdown": "The Jupyter server stopped during the answer.",
    "slow_client": "The answer was read too slowly, so the server stopped it.",
    "too_long": "The answer grew past this server's size limit.",
    "disconnected": "The connection to the Jupyter server closed before the answer finished.",
    "abandoned": "The page or kernel that asked closed before the answer ended.",
    "cell_busy": "This cell is already answering.",
}

# Transport words in a server message, and what they mean for the user.
_BROKE = re.compile(
    r"connection broke|peer closed connection|incomplete chunked read|server disconnected|connection reset"
    r"|stream ended before the answer was finished",
    re.I,
)
_UNREACHABLE = re.compile(r"cannot connect to the provider|connection refused|name or service not known|nodename nor servname", re.I)
_HTTP_STATUS = re.compile(r"\s*\(HTTP \d{3}\)")

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


def failed(ending: Ending) -> bool:
    """Whether the ending is an error (a stop is not)."""
    return ending.error_code is not None and ending.error_code != "cancelled"


def describe_error(ending: Ending, partial: bool) -> tuple[str, str]:
    """The error in plain words: what happened (transport jargon said as what it means, no HTTP
    status) and what to do. ``partial``: some of the answer had arrived."""
    code = ending.error_code or "internal"
    message = " ".join((ending.error_message or "").split())
    if _BROKE.search(message):
        what = "The provider's connection broke mid-answer." if partial else "The provider's connection broke before it answered."
    elif _UNREACHABLE.search(message):
        what = "This Jupyter server cannot reach the provider."
    elif message:
        what = _HTTP_STATUS.sub("", message)
    else:
        what = WHAT.get(code, f"The answer failed ({code}).")
    return what, HINTS.get(code, HINTS["upstream"])


def error_line(ending: Ending, partial: bool = False) -> str:
    """The error as one line of plain text: what happened, what to do."""
    return " ".join(describe_error(ending, partial))


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


def ending_markdown(ending: Ending, partial: bool = False) -> str:
    """What follows the answer, in paragraphs of their own: the Stopped marker; then the error,
    said once (what happened, in bold, and what to do), or else the status line."""
    lines = []
    if ending.stopped:
        lines.append(STOPPED)
    if failed(ending):
        what, todo = describe_error(ending, partial)
        lines.append(f"**{escape(what)}** {escape(todo)}")
    else:
        lines.append(f"*{escape(status_line(ending))}*")
    return "\n\n".join(lines)


def final_markdown(text: str, ending: Ending, image_origins: tuple[str, ...] = ()) -> str:
    """The answer as it is stored: safe Markdown, any fence it left open closed, then its ending."""
    from ..safety.safe_markdown import close_open_fence, safe_markdown  # markdown-it: not at %load_ext

    body = close_open_fence(safe_markdown(text, image_origins)).rstrip("\n")
    return (body + "\n\n" if body.strip() else "") + ending_markdown(ending, bool(text.strip()))


def answer_bundle(
    text: str, ending: Ending, image_origins: tuple[str, ...] = (), answer_id: str | None = None
) -> dict[str, Any]:
    """The stored output's data: ``text/html`` for every renderer, safe Markdown for the lab plugin
    (with the answer's id, so the plugin keeps the live rendering's DOM when this replaces it,
    ``failed`` when it ended in an error, so the plugin offers Retry, and ``stopped`` when it was
    stopped: either way the answer said how it ended, and the plugin hides the kernel's line)."""
    from ..safety.answer_html import answer_html
    from ..safety.safe_markdown import close_open_fence

    closed = close_open_fence(text).rstrip("\n")
    ending_text = ending_markdown(ending, bool(text.strip()))
    html = answer_html((closed + "\n\n" if closed.strip() else "") + ending_text, image_origins)
    mark: dict[str, Any] = {"markdown": final_markdown(text, ending, image_origins)}
    if answer_id is not None:
        mark["answer"] = {"id": answer_id}
    if failed(ending):
        mark["failed"] = True
    if ending.stopped:
        mark["stopped"] = True
    return {"text/html": html, ANSWER_MIME: mark}


_FENCE = re.compile(r"^```(toml)?$")


def problem_markdown(message: str) -> str:
    """A problem (a request refused before the answer started) as Markdown: its text escaped, line
    breaks kept, and a ```toml block the server offers to paste as a code block
    (labextension/src/ending.ts: problemMarkdown)."""
    out: list[str] = []
    code: list[str] | None = None  # the lines of an open ```toml block, its fence line first
    paragraph: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            out.append("\\\n".join(paragraph))
            paragraph.clear()

    for line in message.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if code is not None:
            if line == "```":
                out.append("```toml\n" + "\n".join(code[1:]) + "\n```")
                code = None
            else:
                code.append(line.replace("`", "'"))
        elif _FENCE.match(line):
            end_paragraph()
            code = [line]
        elif not line.strip():
            end_paragraph()
        else:
            paragraph.append(escape(line))
    end_paragraph()
    if code is not None:
        out.append("\\\n".join(escape(line) for line in code))  # never closed: as text
    return "\n\n".join(out)


def problem_bundle(message: str) -> dict[str, Any]:
    """A problem's output data: text/html, the mark, and the message as plain text for the rest."""
    from ..safety.answer_html import answer_html

    markdown = problem_markdown(message)
    return {"text/html": answer_html(markdown), ANSWER_MIME: {"markdown": markdown, "problem": True}, "text/plain": message}


def live_mark(answer_id: str, quiet: bool = False) -> dict[str, Any]:
    """A live answer's placeholder mark (ANSWER_MIME data): the lab plugin follows the answer by
    its id and renders it (labextension/src/ending.ts: liveMarker); ``quiet``: only once complete
    (``--no-stream``), saying meanwhile that it is waiting."""
    answer: dict[str, Any] = {"id": answer_id, "live": True}
    if quiet:
        answer["quiet"] = True
    return {"markdown": "", "answer": answer}


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
