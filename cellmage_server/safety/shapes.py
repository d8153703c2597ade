"""The shapes of ids that come from notebooks: checked before they reach a URL, a request, the
database or a shared document.

A notebook may come from anywhere, so everything read from it is untrusted input, like a model's
answer: an answer id is 32 lowercase hex characters (what the server mints), a cell id what
nbformat 4.5 allows (1 to 64 of ``A-Z a-z 0-9 - _``). A value of another shape is not repaired;
it is ignored. ``labextension/src/shapes.ts`` is the same for the lab plugin; both are tested
against ``tests/shape_cases.json``.

Pure, and light to import (the kernel loads it with ``%load_ext``).
"""

from __future__ import annotations

import hashlib
import re

ANSWER_ID = re.compile(r"[0-9a-f]{32}")
CELL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A saved conversation: the name a person gives (``--save NAME``) and its id, that name and the
# time (``NAME_20250507_123456``); letters, digits, ``_`` and ``-``, a letter or digit first.
SESSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")


def answer_id(value: object) -> str | None:
    """``value`` if it is an answer id, else None."""
    return value if type(value) is str and ANSWER_ID.fullmatch(value) else None


def cell_id(value: object) -> str | None:
    """``value`` if it is an nbformat cell id, else None."""
    return value if type(value) is str and CELL_ID.fullmatch(value) else None


def session_name(value: object) -> str | None:
    """``value`` if it may name a saved conversation, else None."""
    return value if type(value) is str and SESSION_NAME.fullmatch(value) else None


def session_id(value: object) -> str | None:
    """``value`` if it has the shape of a saved conversation's id (or the start of one), else None."""
    return value if type(value) is str and SESSION_ID.fullmatch(value) else None


def cell_key(value: object) -> str | None:
    """The key of a cell a kernel is running, from its frontend's request metadata: the cell id
    when it has nbformat's shape, else a stable digest of it (VS Code, for one, sends
    ``vscode-notebook-cell:…#…``), so a re-run still replaces that cell's turn and nothing of the
    raw value goes further. None when there is no id (or it is not a string)."""
    if type(value) is not str or not value:
        return None
    if CELL_ID.fullmatch(value):
        return value
    return "h-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]
