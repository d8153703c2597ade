"""What ``%llm_config`` set for this kernel, the request a ``%%llm`` cell makes of it, and what the
magics share: where the notebook is, and how they speak.

:func:`request_body` is pure: a cell's flags, this kernel's defaults and the notebook in, the body
of ``POST chat`` out (or :class:`~cellmage_server.parameters.ParameterError` saying which
parameter may not be set, before anything is sent).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from ..flags import CellFlags
from ..parameters import check
from ..safety.shapes import cell_key
from .context import Snippets

# A model mapping's short name: what a model name may look like, nothing that parses as a flag.
MAPPING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")


@dataclass
class Session:
    """What ``%llm_config`` set for this kernel; a cell's own flags never change it."""

    model: str | None = None  # a model alias of the server (a mapping is resolved when it is set)
    persona: str | None = None
    stream_by_default: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)  # parameters for every cell (parameters.py)
    mappings: dict[str, str] = field(default_factory=dict)  # this kernel's short name -> a server alias
    auto_save: bool = False
    saved_as: str | None = None  # the saved conversation this kernel last saved or loaded
    snippets: Snippets = field(default_factory=Snippets)  # sent with every answer (--snippet)

    def model_for(self, name: str) -> str:
        """The server alias a model name of this kernel stands for."""
        return self.mappings.get(name, name)


def request_body(
    prompt: str, flags: CellFlags, session: Session, conversation: str | None, cell_id: str | None
) -> dict[str, Any]:
    """The ``POST chat`` body of a cell: its flags, then this kernel's defaults; parameters are
    checked here with the server's own rules."""
    body: dict[str, Any] = {"prompt": prompt, "stream": True}
    if conversation is not None:
        body["conversation"] = conversation
        body["history"] = flags.history is not False
        if flags.remember is False:
            body["remember"] = False
        if flags.rollback is False:
            body["rollback"] = False
        if cell_id:
            body["cell_id"] = cell_id
    model = session.model_for(flags.model) if flags.model else session.model
    for key, value in (
        ("model", model),
        ("persona", flags.persona or session.persona),
        ("temperature", flags.temperature),
        ("max_tokens", flags.max_tokens),
    ):
        if value is not None:
            body[key] = value
    params = {**session.overrides, **(flags.params or {})}
    if params:
        body["params"] = {name: check(name, value) for name, value in params.items()}
    return body


def current_cell_id(shell: Any) -> str | None:
    """The key of the cell being run: its id, which JupyterLab and Notebook 7 put in the request's
    metadata (or a digest of an id of another shape; see shapes.cell_key)."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:  # an older or non-ipykernel kernel: no cell ids, so every run is a new turn
        return None
    return cell_key(((parent or {}).get("metadata") or {}).get("cellId"))


def notebook_path() -> str | None:
    """The notebook this kernel runs for: Jupyter's session manager names it in JPY_SESSION_NAME."""
    return os.environ.get("JPY_SESSION_NAME") or None


def say(message: str) -> None:
    print(f"CellMage: {message}", file=sys.stderr)
