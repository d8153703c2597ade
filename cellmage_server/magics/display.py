"""Showing one answer in the cell's output: words at once, live Markdown where the lab plugin is,
output traffic linear in the answer's length.

When the answer starts, a small placeholder output carries its id (``ending.live_mark``): in
JupyterLab and Notebook 7 the lab plugin renders it by following the answer from the server by
that id, as live Markdown, exactly as the toolbar's answers render, with "waiting for ‹model›…",
the seconds, and the Stop control until the first words. Elsewhere its ``text/plain`` says the
same, updated once a second until the first words come (then it is emptied); with ``--no-stream``
it says "waiting", then "writing", until the whole answer shows.
The kernel does not need to know whether a plugin is listening: the text also goes out as
append-only ``stdout`` (which the plugin hides while it renders the answer), and that is what
nbclient, VS Code or ``nbconvert --execute`` show. The first delta goes out at once, then whatever
arrived, at most every ``interval`` seconds and at least that often while text keeps coming (a
timer flushes it; nothing waits for a later chunk). Every byte of the answer is sent once.

When it ends, one ``clear_output(wait=True)`` and one display of the stored answer (with the same
id, so the plugin keeps the DOM it rendered) replace both (``ending.answer_bundle``: a kernel's
outputs are trusted by JupyterLab, so what is stored must itself run and fetch nothing). The text
crosses the wire twice in all: linear, not quadratic as re-sending the whole text per token, or a
throttled ``update_display`` of it, would be.
"""

from __future__ import annotations

import sys
import time

from typing import Any

from ..answer.ending import ANSWER_MIME, Ending, answer_bundle, live_mark, problem_bundle

TICK = 1.0  # seconds between two updates of "waiting for ‹model›… N s"


def waiting_text(model: str | None, seconds: int, writing: bool = False) -> str:
    """What the placeholder says while nothing of the answer shows yet."""
    name = model or "the model"
    return f"{name} is writing… {seconds} s" if writing else f"waiting for {name}… {seconds} s"


class AnswerDisplay:
    def __init__(self, *, live: bool, interval: float = 0.1) -> None:
        self.live = live
        self.interval = interval
        self.parts: list[str] = []
        self._pending: list[str] = []
        self._last = 0.0
        self._wrote = False
        self.answer_id: str | None = None
        self._handle: Any = None  # the placeholder, while it says what the answer is doing
        self._model: str | None = None
        self._since = 0.0
        self._shown_seconds = -1
        self._shown_writing = False

    def start(self, answer_id: str, model: str | None = None) -> None:
        """The answer has an id: show the placeholder the lab plugin follows it by, saying that it
        waits for the model."""
        from IPython.display import display

        self.answer_id = answer_id
        self._model = model
        self._since = time.monotonic()
        self._shown_seconds = 0
        self._handle = display(self._placeholder(waiting_text(model, 0)), raw=True, display_id=True)

    def _placeholder(self, text: str) -> dict[str, Any]:
        return {ANSWER_MIME: live_mark(self.answer_id or "", quiet=not self.live), "text/plain": text}

    def delta(self, text: str) -> None:
        first = not self.parts
        self.parts.append(text)
        if not self.live:
            if first:
                self.tick()  # "writing" from now on
            return
        if first and self._handle is not None:
            self._handle.update(self._placeholder(""), raw=True)  # the first words replace it
            self._handle = None
        self._pending.append(text)
        now = time.monotonic()
        if not self._wrote or now - self._last >= self.interval:
            self.flush()

    def wait(self) -> float | None:
        """Seconds until something is due: pending text, or the next second of the waiting line
        (None: nothing, wait for the next event)."""
        due = []
        if self._pending:
            due.append(max(0.0, self._last + self.interval - time.monotonic()))
        if self._handle is not None:
            due.append(max(0.0, self._since + (self._shown_seconds + 1) * TICK - time.monotonic()))
        return min(due) if due else None

    def tick(self) -> None:
        """Update the waiting line if a second went by (or the model started writing)."""
        if self._handle is None:
            return
        seconds = int((time.monotonic() - self._since) / TICK)
        writing = bool(self.parts)
        if (seconds, writing) != (self._shown_seconds, self._shown_writing):
            self._shown_seconds, self._shown_writing = seconds, writing
            self._handle.update(self._placeholder(waiting_text(self._model, seconds, writing)), raw=True)

    def problem(self, message: str) -> None:
        """A request refused before the answer started, said as the lab plugin says it."""
        from IPython.display import display

        display(problem_bundle(message), raw=True)

    def flush(self) -> None:
        """Show the pending text now (and the waiting line's seconds)."""
        self.tick()
        if self._pending:
            sys.stdout.write("".join(self._pending))
            sys.stdout.flush()
            self._pending.clear()
            self._wrote = True
            self._last = time.monotonic()

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def finish(self, ending: Ending, image_origins: tuple[str, ...] = ()) -> None:
        from IPython.display import clear_output, display

        if self._wrote or self.answer_id is not None:
            clear_output(wait=True)  # the stream is replaced when the Markdown arrives: no flicker
        display(answer_bundle(self.text, ending, image_origins, answer_id=self.answer_id), raw=True)
