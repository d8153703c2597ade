"""A notebook's cells as the text a model reads (pure: an nbformat dict in, text out).

A cell is its code, then its outputs as text: streams and ``text/plain`` as written, errors as
their traceback (terminal colours removed), images and other rich outputs as a one-word mark, and
this extension's own answers as a mark (they are in the conversation's history already).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..answer.ending import ANSWER_MIME
from ..safety.shapes import cell_id as _cell_id

# Terminal colour and cursor codes (IPython's tracebacks are full of them).
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def plain(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass(frozen=True)
class CellText:
    label: str  # "In [12]", or "cell 4" for one that never ran
    source: str
    outputs: str


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def outputs_text(outputs: Any) -> str:
    """A cell's outputs as text, in order (anything of the wrong shape is left out)."""
    parts: list[str] = []
    for output in outputs if isinstance(outputs, list) else ():
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(plain(_text(output.get("text"))))
        elif kind == "error":
            traceback = output.get("traceback")
            if isinstance(traceback, list) and traceback:
                parts.append(plain("\n".join(t for t in traceback if isinstance(t, str))))
            else:
                parts.append(f"{_text(output.get('ename'))}: {_text(output.get('evalue'))}")
        elif kind in ("execute_result", "display_data"):
            data = output.get("data") if isinstance(output.get("data"), dict) else {}
            if ANSWER_MIME in data:
                parts.append("[an LLM answer]")
            elif any(isinstance(k, str) and k.startswith("image/") for k in data):
                parts.append("[image]")  # (its text/plain is a repr like "<Figure>": no help)
            elif "text/plain" in data:
                parts.append(plain(_text(data["text/plain"])))
            elif data:
                parts.append("[rich output]")
    return "\n".join(p.rstrip("\n") for p in parts if p.strip())


def cell_text(cell: dict[str, Any], index: int) -> CellText:
    count = cell.get("execution_count")
    label = f"In [{count}]" if isinstance(count, int) and not isinstance(count, bool) else f"cell {index + 1}"
    return CellText(label, _text(cell.get("source")), outputs_text(cell.get("outputs")))


def is_prompt(cell: dict[str, Any]) -> bool:
    """A prompt cell (a ``%%llm`` first line): not code; its turn is in the conversation."""
    return _text(cell.get("source")).lstrip().startswith("%%llm")


def code_cells_above(notebook: dict[str, Any], cell_id: str | None, n: int) -> tuple[list[CellText], bool]:
    """The ``n`` code cells above the cell ``cell_id``, nearest last (prompt cells left out); and
    whether that cell was found. A cell not in the notebook (not saved yet) gets the notebook's
    last ``n`` code cells. Ids are compared only in their nbformat shape."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    cells = [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []
    end, found = len(cells), False
    wanted = _cell_id(cell_id)
    if wanted is not None:
        for i, cell in enumerate(cells):
            if _cell_id(cell.get("id")) == wanted:
                end, found = i, True
                break
    above = [(i, c) for i, c in enumerate(cells[:end]) if c.get("cell_type") == "code" and not is_prompt(c)]
    return [cell_text(c, i) for i, c in above[-n:]], found
