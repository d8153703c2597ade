"""What of the kernel and the notebook a ``%%llm`` cell's answer sees (README "Context"): its flags
and this kernel's ``%llm_config`` snippets as the request's ``context``. The kernel describes what
only it has (its last error, its variables: describe.py); the server reads the notebook's cells
and the snippet files."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from ..flags import CellFlags
from .describe import describe


class ContextProblem(Exception):
    """A flag asks for context this kernel cannot give; the message says what to do."""


@dataclass
class Snippets:
    """``%llm_config --snippet`` / ``--sys-snippet``: sent with every answer of this kernel."""

    user: list[str] = field(default_factory=list)
    system: list[str] = field(default_factory=list)


def last_error(shell: Any) -> str:
    """This kernel's last exception with its traceback, as plain text (IPython keeps the cell's
    code in linecache, so the traceback shows the failing lines)."""
    value = getattr(sys, "last_value", None)
    if value is None:
        raise ContextProblem("--error: there is no error in this kernel yet (run the failing cell first).")
    return "".join(traceback.format_exception(type(value), value, getattr(sys, "last_traceback", None)))


def context_of(flags: CellFlags, namespace: dict[str, Any], snippets: Snippets, shell: Any = None) -> dict[str, Any] | None:
    """The request's ``context`` for a cell with these flags (None when it asks for none)."""
    context: dict[str, Any] = {}
    if flags.cells is not None:
        context["cells"] = flags.cells
    if flags.error:
        context["error"] = {"text": last_error(shell)}
    if flags.vars:
        missing = [name for name in flags.vars if name not in namespace]
        if missing:
            raise ContextProblem(f"--var: no variable {', '.join(missing)} in this kernel.")
        context["vars"] = [{"name": name, "text": describe(name, namespace[name])} for name in dict.fromkeys(flags.vars)]
    user = list(dict.fromkeys([*snippets.user, *flags.snippets]))
    system = list(dict.fromkeys([*snippets.system, *flags.sys_snippets]))
    if user:
        context["snippets"] = user
    if system:
        context["sys_snippets"] = system
    return context or None

