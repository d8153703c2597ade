"""Showing one answer in the cell's output: words at once, live Markdown where the lab plugin is,
output traffic linear in the answer's length.

When the answer starts, a small placeholder output carries its id (``ending.live_mark``,
with an empty ``text/plain``): in JupyterLab and Notebook 7 the lab plugin renders it by following
the answer from the server by that id, as live Markdown, exactly as the toolbar's answers render.
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

from ..answer.ending import ANSWER_MIME, Ending, answer_bundle, live_mark


class AnswerDisplay:
    def __init__(self, *, live: bool, interval: float = 0.1) -> None:
        self.live = live
        self.interval = interval
        self.parts: list[str] = []
        self._pending: list[str] = []
        self._last = 0.0
        self._wrote = False
        self.answer_id: str | None = None
        self._placeholder = False

    def start(self, answer_id: str) -> None:
        """The answer has an id: show the placeholder the lab plugin follows it by."""
        from IPython.display import display

        self.answer_id = answer_id
        if self.live:
            display({ANSWER_MIME: live_mark(answer_id), "text/plain": ""}, raw=True)
            self._placeholder = True

    def delta(self, text: str) -> None:
        self.parts.append(text)
        if not self.live:
            return
        self._pending.append(text)
        now = time.monotonic()
        if not self._wrote or now - self._last >= self.interval:
            self.flush()

    def wait(self) -> float | None:
        """Seconds until pending text is due (None: nothing pending, wait for the next delta)."""
        if not self._pending:
            return None
        return max(0.0, self._last + self.interval - time.monotonic())

    def flush(self) -> None:
        """Show the pending text now."""
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

        if self._wrote or self._placeholder:
            clear_output(wait=True)  # the stream is replaced when the Markdown arrives: no flicker
        display(answer_bundle(self.text, ending, image_origins, answer_id=self.answer_id), raw=True)
