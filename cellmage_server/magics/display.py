"""Showing one answer in the cell's output: words at once, output traffic linear in its length.

While it streams, the text goes out append-only as ``stdout`` stream messages: the first delta at
once, then whatever arrived, at most every ``interval`` seconds and at least that often while text
keeps coming (a timer flushes it; nothing waits for a later chunk). Every byte of the answer is
sent once. When it ends, one ``clear_output(wait=True)`` and one display of the stored answer
replace that stream (``ending.answer_bundle``: a kernel's outputs are trusted by JupyterLab, so what
is stored must itself run and fetch nothing). The text crosses the wire twice in all: linear, not quadratic
as re-sending the whole text per token, or a throttled ``update_display`` of it, would be.
"""

from __future__ import annotations

import sys
import time

from ..ending import Ending, answer_bundle


class AnswerDisplay:
    def __init__(self, *, live: bool, interval: float = 0.1) -> None:
        self.live = live
        self.interval = interval
        self.parts: list[str] = []
        self._pending: list[str] = []
        self._last = 0.0
        self._wrote = False

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

        if self._wrote:
            clear_output(wait=True)  # the stream is replaced when the Markdown arrives: no flicker
        display(answer_bundle(self.text, ending, image_origins), raw=True)
