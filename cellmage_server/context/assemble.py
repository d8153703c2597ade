"""Context into the request the provider gets, within its budget (pure).

What goes where: snippets asked with ``--sys-snippet`` join the system prompt; everything else
(cells, the error, variables, snippets) goes before the prompt, in the last user message, in one
block that says what each part is. Earlier turns come between, as before.

What is cut, and how (each kind's cap in ``[context]``):
- a cell: its code, then its outputs; over ``cell_chars`` the outputs are cut from the middle
  (their start and end stay), then the code from its end;
- an error: over ``error_chars`` its start is cut (the error itself is at the end);
- a variable or a snippet: over its cap, its end is cut.
Every cut says so in the text, with how much was left out.

What is dropped when the whole is over ``limits.context_chars``: first the oldest earlier turns
(turns also stay within ``limits.history_chars``), then context in this order: the cells farthest
from the prompt, snippets, variables, the error. ``report`` says what went and what was dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..config import ContextSettings
from .notebook import CellText


@dataclass(frozen=True)
class Named:
    name: str
    text: str


@dataclass
class Asked:
    """The context one answer asked for, gathered (gather.py)."""

    cells: list[CellText] = field(default_factory=list)  # nearest the prompt last
    cells_found: bool = True  # the asking cell was in the notebook the server read
    cells_source: str = "page"  # "page", "shared notebook", "saved file"
    error: str | None = None
    variables: list[Named] = field(default_factory=list)
    snippets: list[Named] = field(default_factory=list)
    sys_snippets: list[Named] = field(default_factory=list)


@dataclass
class Assembled:
    system: str  # appended to the system prompt ("" for none)
    block: str  # before the prompt ("" for none)
    report: dict[str, Any]  # {"context": [...], "dropped": [...]}, as `start` carries it
    budget_left: int  # characters the earlier turns may use


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def fenced(text: str, info: str = "") -> str:
    fence = _fence(text)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def cut_end(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    return text[:cap] + f"\n… [{len(text) - cap} more characters cut]"


def cut_start(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    return f"[{len(text) - cap} characters cut] …\n" + text[-cap:]


def cut_middle(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    head = cap // 2
    return text[:head] + f"\n… [{len(text) - cap} characters cut] …\n" + text[len(text) - (cap - head) :]


def cell_part(cell: CellText, cap: int) -> str:
    source = cell.source
    outputs = cell.outputs
    if len(source) >= cap:
        source, outputs = cut_end(source, cap), ("[its outputs left out]" if outputs else "")
    elif outputs:
        outputs = cut_middle(outputs, cap - len(source))
    text = f"{cell.label}:\n" + fenced(source, "python")
    if outputs:
        text += "\nOutput:\n" + fenced(outputs, "text")
    return text


@dataclass
class _Part:
    kind: str  # cells, error, var, snippet
    name: str | None
    text: str
    drop_rank: int  # lower goes first


def assemble(asked: Asked, caps: ContextSettings, budget: int) -> Assembled:
    parts: list[_Part] = []
    for i, cell in enumerate(asked.cells):  # farthest first in the list: dropped first
        parts.append(_Part("cells", None, cell_part(cell, caps.cell_chars), i))
    rank = 1000
    for snippet in asked.snippets:
        parts.append(_Part("snippet", snippet.name, fenced(cut_end(snippet.text, caps.snippet_chars)), rank))
        rank += 1
    rank = 2000
    for variable in asked.variables:
        parts.append(_Part("var", variable.name, cut_end(variable.text, caps.var_chars), rank))
        rank += 1
    if asked.error is not None:
        parts.append(_Part("error", None, fenced(cut_start(asked.error, caps.error_chars), "text"), 3000))

    system_parts = [
        (s.name, f"## Snippet `{s.name}`\n" + fenced(cut_end(s.text, caps.snippet_chars))) for s in asked.sys_snippets
    ]
    system = "\n\n".join(text for _, text in system_parts)
    kept = sorted(parts, key=lambda p: p.drop_rank)
    used = len(system) + sum(len(p.text) for p in kept)
    dropped: list[_Part] = []
    while kept and used > budget:
        gone = kept.pop(0)
        dropped.append(gone)
        used -= len(gone.text)

    block = _block(asked, [p for p in parts if p in kept])
    report = {
        "context": _summary([p for p in parts if p in kept])
        + [{"kind": "sys_snippet", "name": name, "chars": len(text)} for name, text in system_parts],
        "dropped": _summary(dropped),
    }
    return Assembled(system, block, report, max(0, budget - len(system) - len(block)))


def _block(asked: Asked, parts: list[_Part]) -> str:
    if not parts:
        return ""
    sections = []
    cells = [p.text for p in parts if p.kind == "cells"]
    if cells:
        where = {"page": "", "shared notebook": "", "saved file": " (as last saved)"}.get(asked.cells_source, "")
        note = "" if asked.cells_found else " (this cell is not in the notebook yet: its last code cells)"
        sections.append(f"## The code cells above{where}{note}\n\n" + "\n\n".join(cells))
    for p in parts:
        if p.kind == "snippet":
            sections.append(f"## Snippet `{p.name}`\n" + p.text)
    for p in parts:
        if p.kind == "var":
            sections.append(f"## Variable `{p.name}`\n" + p.text)
    for p in parts:
        if p.kind == "error":
            sections.append("## The error\n" + p.text)
    return "# Context from the notebook\n\n" + "\n\n".join(sections)


def _summary(parts: list[_Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cells = [p for p in parts if p.kind == "cells"]
    if cells:
        out.append({"kind": "cells", "n": len(cells), "chars": sum(len(p.text) for p in cells)})
    for p in parts:
        if p.kind != "cells":
            out.append({"kind": p.kind, **({"name": p.name} if p.name else {}), "chars": len(p.text)})
    return out


def with_context(prompt: str, block: str) -> str:
    """The last user message: the context block, then the prompt."""
    return f"{block}\n\n# The question\n\n{prompt}" if block else prompt
