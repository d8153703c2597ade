"""Showing one answer in the cell's output, with output traffic linear in the answer's length.

While it streams, the text goes out append-only as ``stdout`` stream messages, batched to at
most one every ``interval`` seconds; every byte of the answer is sent once. When it ends, one
``clear_output(wait=True)`` and one display of the answer as safe Markdown (``safe_markdown.py``:
a model's answer is untrusted, and a kernel's outputs are trusted by JupyterLab, so the Markdown
itself must run and fetch nothing) replace that stream, so the notebook keeps a single rendered
answer (the text crosses the wire twice in all: linear, not quadratic). Re-sending
the whole text on every token, or a throttled ``update_display`` of it, grows with the square of
the answer's length.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass

from ..safe_markdown import break_tex


@dataclass
class Ending:
    """How the answer ended, for the status line."""

    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    elapsed_s: float | None = None
    error: str | None = None  # "code: message"
    stopped: bool = False


def status_line(ending: Ending) -> str:
    parts = [ending.model or "unknown model"]
    if ending.prompt_tokens is not None or ending.completion_tokens is not None:
        parts.append(f"{ending.prompt_tokens if ending.prompt_tokens is not None else '?'} → "
                     f"{ending.completion_tokens if ending.completion_tokens is not None else '?'} tokens")
    if ending.cost_usd is not None:
        parts.append(f"${ending.cost_usd:.4f}" if ending.cost_usd >= 0.0001 else "< $0.0001")
    if ending.elapsed_s is not None:
        parts.append(f"{ending.elapsed_s:.1f} s")
    return " · ".join(parts)


# The lab plugin renders outputs that carry this type with its own safe renderer (mime.ts).
ANSWER_MIME = "application/vnd.cellmage.answer+json"

_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")


def _escape(text: str) -> str:
    """Plain text inside Markdown: every ASCII punctuation character backslash-escaped, so no markup,
    HTML, entity, link or image can start in it, and no TeX command can link or load (used for
    messages that quote a provider)."""
    return _PUNCT.sub(r"\\\1", break_tex(text))


def final_markdown(text: str, ending: Ending, image_origins: tuple[str, ...] = ()) -> str:
    """The answer as it stays in the notebook: the text, what went wrong, and the status line."""
    tail = []
    if ending.stopped:
        tail.append("*⏹ Stopped.*")
    if ending.error:
        tail.append(f"**⚠ Error** {_escape(ending.error)}")
    tail.append(f"*{_escape(status_line(ending))}*")
    from ..safe_markdown import safe_markdown  # markdown-it: loaded with the first answer, not at %load_ext

    body = safe_markdown(text, image_origins).rstrip("\n")
    return (body + "\n\n" if body else "") + "\n\n".join(tail)


class AnswerDisplay:
    def __init__(self, *, live: bool, interval: float = 0.5) -> None:
        self.live = live
        self.interval = interval
        self.parts: list[str] = []
        self._pending: list[str] = []
        self._last = time.monotonic()
        self._wrote = False

    def delta(self, text: str) -> None:
        self.parts.append(text)
        if not self.live:
            return
        self._pending.append(text)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._write(now)

    def _write(self, now: float) -> None:
        if self._pending:
            sys.stdout.write("".join(self._pending))
            sys.stdout.flush()
            self._pending.clear()
            self._wrote = True
        self._last = now

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def finish(self, ending: Ending, image_origins: tuple[str, ...] = ()) -> None:
        from IPython.display import clear_output, display

        if self._wrote:
            clear_output(wait=True)  # the stream is replaced when the Markdown arrives: no flicker
        display({"text/markdown": final_markdown(self.text, ending, image_origins), ANSWER_MIME: {}}, raw=True)
