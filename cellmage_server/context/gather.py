"""Gathering what an answer's context asks for (contract.ContextRequest): the cells above from
the notebook (the live shared notebook under real-time collaboration, else the saved file) when a
kernel asks, or as the asking page sent them; the error and variables as the client sent them;
snippet files from disk. Refuses, with 400, a kind the admin did not allow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import CellmageSettings
from ..contract import ContextRequest
from ..errors import BadRequest
from .assemble import Asked, Named
from .notebook import CellText, code_cells_above, plain
from .snippets import read_snippet

if TYPE_CHECKING:
    from ..collab import SharedNotebooks

FLAGS = {"cells": "--cells", "error": "--error", "var": "--var", "snippet": "--snippet / --sys-snippet"}


async def gather(
    context: ContextRequest,
    settings: CellmageSettings,
    *,
    notebook: str | None,
    cell_id: str | None,
    root: Path,
    contents_manager: Any,
    shared: SharedNotebooks | None,
) -> Asked:
    caps = settings.context
    for kind in context.kinds():
        if kind not in caps.allowed:
            raise BadRequest(
                f"This server does not send {kind} context to models (its [context] allowed list): leave out "
                f"{FLAGS[kind]}, or ask the admin."
            )
    asked = Asked()
    if context.page_cells is not None:
        cells = context.page_cells[-caps.max_cells :]
        asked.cells = [CellText(c.label or f"cell {i + 1}", c.source, plain(c.outputs)) for i, c in enumerate(cells)]
    elif context.cells is not None:
        if context.cells > caps.max_cells:
            raise BadRequest(f"--cells {context.cells} is over this server's [context] max_cells of {caps.max_cells}.")
        if notebook is None:
            raise BadRequest("--cells needs the notebook, and this kernel is not attached to one.")
        content, asked.cells_source = await _read_notebook(notebook, contents_manager, shared)
        asked.cells, asked.cells_found = code_cells_above(content, cell_id, context.cells)
    if context.error is not None:
        asked.error = plain(context.error.text)
    asked.variables = [Named(v.name, v.text) for v in context.vars]
    team = list(caps.snippets_dirs)
    for names, into in ((context.snippets, asked.snippets), (context.sys_snippets, asked.sys_snippets)):
        for name in names:
            text = await asyncio.to_thread(read_snippet, name, notebook, root, team, caps.snippet_chars)
            into.append(Named(name, text))
    return asked


async def _read_notebook(path: str, contents_manager: Any, shared: SharedNotebooks | None) -> tuple[dict[str, Any], str]:
    if shared is not None:
        live = await shared.read(path)
        if live is not None:
            return live, "shared notebook"
    try:
        # As text, parsed here: the contents API's own notebook reading also validates the whole
        # notebook against nbformat's schema and checks its signature (milliseconds on a time to
        # first token); notebook.py checks every value it takes against its own shapes anyway.
        model = contents_manager.get(path, content=True, type="file", format="text")
        if asyncio.iscoroutine(model):
            model = await model
    except Exception as e:  # the contents API's own errors (missing file, a folder)
        raise BadRequest(f"--cells cannot read the notebook {path!r}: {getattr(e, 'log_message', None) or e}") from None
    try:
        content = json.loads(model["content"])
    except (TypeError, ValueError, RecursionError):
        content = None
    if not isinstance(content, dict):
        raise BadRequest(f"--cells cannot read the notebook {path!r}: it is not a notebook (JSON) file.")
    return content, "saved file"
