"""Ambient mode (CellMage's ``%llm_config_persistent``): every following code cell the person runs
is a prompt, as if it began with a bare ``%%llm`` line. One notion of a prompt cell: the cell is
rewritten into that ``%%llm`` call, so it asks, streams, stops, fails and joins the notebook's
conversation exactly as a ``%%llm`` cell does.

An IPython input transformer does the rewriting, first of the cleanup transformers (so the prompt
reaches the magic as written: no ``>>>`` or indentation stripped). It leaves alone:

- a cell whose first line is a magic or a shell command (``%``, ``!``): ``%%py`` runs Python;
- an execution the person did not ask for: a frontend's or an extension's *silent* request, or
  one that is not stored in the history (the way background code runs, where CellMage's own
  ambient mode sent ``__jupyter_exec_background__()`` calls to the model), and any request that
  is not ``execute_request``;
- the body ``%%py`` runs, and empty cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Ambient:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._bypass = 0

    @property
    def on(self) -> bool:
        return self.transform in self.shell.input_transformers_cleanup

    def enable(self) -> bool:
        """Turn it on; whether it was off."""
        if self.on:
            return False
        self.shell.input_transformers_cleanup.insert(0, self.transform)
        return True

    def disable(self) -> bool:
        """Turn it off; whether it was on."""
        was = self.on
        while self.transform in self.shell.input_transformers_cleanup:
            self.shell.input_transformers_cleanup.remove(self.transform)
        return was

    @contextmanager
    def bypassed(self) -> Iterator[None]:
        """Cells run meanwhile are Python (``%%py``'s body)."""
        self._bypass += 1
        try:
            yield
        finally:
            self._bypass -= 1

    def _asked_by_the_person(self) -> bool:
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None:
            return True  # a terminal IPython: what runs is what the person typed
        try:
            parent = kernel.get_parent() or {}
        except Exception:  # a kernel without parents: nothing to go by, so not a prompt
            return False
        content = parent.get("content") or {}
        return (
            (parent.get("header") or {}).get("msg_type") == "execute_request"
            and not content.get("silent", False)
            and content.get("store_history", True) is not False
        )

    def transform(self, lines: list[str]) -> list[str]:
        if self._bypass:
            return lines
        first = next((line for line in lines if line.strip()), None)
        if first is None or first.lstrip().startswith(("%", "!")):
            return lines
        if not self._asked_by_the_person():
            return lines
        cell = "".join(lines).removesuffix("\n")  # the newline IPython adds to every cell
        return [f"get_ipython().run_cell_magic('llm', '', {cell!r})\n"]
