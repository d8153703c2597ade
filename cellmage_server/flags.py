"""The ``%%llm`` flag grammar: one definition, shared by the kernel magic and (through
``tests/flag_cases.json``, the table both clients are tested against) the lab plugin.

A cell is a prompt, optionally under a first line ``%%llm [flags]``::

    %%llm --stream -m gpt-4o --temperature 0.8 --persona code_expert --param top_p 0.9
    Explain recursion.

Pure: no I/O and nothing heavier than ``shlex`` to import (the kernel loads this at
``%load_ext``).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field

MAGIC = "%%llm"


class FlagError(ValueError):
    """A flag line cannot be read; the message says what is wrong and ends with the usage line."""


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    dest: str
    kind: str  # "str", "float", "int" (take a value), "list" (a value, repeatable), "pair" (a key and a value), "true", "false" (switches)
    help: str
    lo: float | None = None
    hi: float | None = None


FLAGS: tuple[Flag, ...] = (
    Flag(("-m", "--model"), "model", "str", "model alias of the server"),
    Flag(("-t", "--temperature"), "temperature", "float", "sampling temperature, 0 to 2", 0, 2),
    Flag(("-p", "--persona"), "persona", "str", "persona name"),
    Flag(("--max-tokens",), "max_tokens", "int", "most tokens to generate", 1, None),
    Flag(("--stream",), "stream", "true", "show the answer as it is written"),
    Flag(("--no-stream",), "stream", "false", "show the answer when it is complete"),
    Flag(("--no-history",), "remember", "false", "leave this exchange out of the conversation's history"),
    Flag(("--alone",), "history", "false", "send the prompt without the earlier turns"),
    Flag(("--no-rollback",), "rollback", "false", "keep this cell's earlier turn; add this one after it"),
    Flag(("--param",), "params", "pair", "another parameter for this cell (--param top_p 0.9)"),
    Flag(("-o", "--output"), "output", "str", "also store the answer in this variable"),
    # Context: what of the notebook the answer sees (README "Context").
    Flag(("--cells",), "cells", "int", "send the N code cells above, with their outputs", 1, 100),
    Flag(("--error",), "error", "true", "send the last error and its traceback"),
    Flag(("--var",), "vars", "list", "send a variable of the kernel, described (repeatable)"),
    Flag(("--snippet",), "snippets", "list", "send a snippet file before the prompt (repeatable)"),
    Flag(("--sys-snippet",), "sys_snippets", "list", "add a snippet file to the system prompt (repeatable)"),
)
_BY_NAME = {name: flag for flag in FLAGS for name in flag.names}

USAGE = (
    "usage: %%llm [-m MODEL] [-t TEMPERATURE] [-p PERSONA] [--max-tokens N] "
    "[--stream | --no-stream] [--no-history] [--alone] [--no-rollback] [--param KEY VALUE] [-o NAME] "
    "[--cells N] [--error] [--var NAME] [--snippet NAME] [--sys-snippet NAME]"
)

# A parameter's name, as the wire contract spells fields (the server says which it accepts).
PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # no leading "_", as in flags.ts (never __proto__)


@dataclass(frozen=True)
class CellFlags:
    """What the flag line set; ``None`` means "not given" (the session's default applies)."""

    model: str | None = None
    temperature: float | None = None
    persona: str | None = None
    max_tokens: int | None = None
    stream: bool | None = None
    history: bool | None = None
    remember: bool | None = None
    rollback: bool | None = None
    params: dict[str, object] | None = None
    output: str | None = None
    cells: int | None = None
    error: bool | None = None
    vars: tuple[str, ...] = ()
    snippets: tuple[str, ...] = ()
    sys_snippets: tuple[str, ...] = ()
    given: tuple[str, ...] = field(default=(), compare=False)


def _fail(message: str) -> FlagError:
    return FlagError(f"{message}\n{USAGE}")


def parse_flags(line: str) -> CellFlags:
    """Parse the flags after ``%%llm`` (the magic's line), or raise :class:`FlagError`."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise _fail(f"cannot read the flags: {e}") from None
    values: dict[str, object] = {}
    given: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        flag = _BY_NAME.get(name)
        if flag is None:
            raise _fail(f"unknown flag {word!r}" if word.startswith("-") else f"unexpected word {word!r}")
        if flag.kind in ("true", "false"):
            if eq:
                raise _fail(f"{name} takes no value")
            values[flag.dest] = flag.kind == "true"
        elif flag.kind == "pair":
            if eq or i + 2 >= len(words):
                raise _fail(f"{name} needs a name and a value (--param top_p 0.9)")
            key, raw = words[i + 1], words[i + 2]
            if not PARAM_NAME.fullmatch(key):
                raise _fail(f"{name} needs a parameter name, not {key!r}")
            params = values.setdefault(flag.dest, {})
            params[key] = param_value(raw)  # type: ignore[index]
            i += 2
        else:
            if eq:
                raw = inline
            elif i + 1 < len(words):
                i += 1
                raw = words[i]
            else:
                raise _fail(f"{name} needs a value")
            value = _convert(flag, name, raw)
            if flag.kind == "list":
                value = (*values.get(flag.dest, ()), value)  # type: ignore[misc]
            values[flag.dest] = value
        given.append(name)
        i += 1
    if "--stream" in given and "--no-stream" in given:
        raise _fail("--stream and --no-stream contradict each other")
    return CellFlags(**values, given=tuple(given))  # type: ignore[arg-type]


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")  # as JavaScript's JSON.parse says


def param_value(raw: str) -> object:
    """A parameter's value as written: a JSON number, ``true``/``false`` or array is that value;
    anything else is the text itself (``--param stop END``)."""
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except ValueError:
        return raw
    if isinstance(value, float) and not math.isfinite(value):
        return raw
    return value if isinstance(value, (bool, int, float, list)) else raw


def _convert(flag: Flag, name: str, raw: str) -> object:
    if flag.kind in ("str", "list"):
        if not raw or raw.startswith("-"):
            raise _fail(f"{name} needs a value")
        if flag.dest in ("output", "vars") and not raw.isidentifier():
            raise _fail(f"{name} needs a Python variable name, not {raw!r}")
        return raw
    try:
        value: float = int(raw) if flag.kind == "int" else float(raw)
    except ValueError:
        kind = "a whole number" if flag.kind == "int" else "a number"
        raise _fail(f"{name} needs {kind}, not {raw!r}") from None
    if (flag.lo is not None and value < flag.lo) or (flag.hi is not None and value > flag.hi):
        bounds = f"from {flag.lo:g} to {flag.hi:g}" if flag.hi is not None else f"at least {flag.lo:g}"
        raise _fail(f"{name} must be {bounds}, not {raw}")
    return value


def split_cell(text: str) -> tuple[CellFlags, str]:
    """A whole cell's text: flags from a first ``%%llm`` line (if any) and the prompt after it."""
    first, newline, rest = text.partition("\n")
    if first.strip() == MAGIC or first.lstrip().startswith(MAGIC + " "):
        return parse_flags(first.strip()[len(MAGIC) :]), rest
    return CellFlags(), text
