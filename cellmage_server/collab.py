"""Writing into a notebook's live shared document when real-time collaboration is on.

With jupyter-collaboration installed, an open notebook lives on the server as a shared document
(jupyter-server-ydoc's room, a pycrdt ``Doc`` holding a ``YNotebook``). Every page showing it,
and the file (saved ``YDocExtension.document_save_delay`` after the last change), follow that
document, not the contents API. So when the page that asked for an answer is gone, the server
writes the answer's last output there itself: every collaborator's page and the file get it.

Nothing here imports jupyter-server-ydoc or pycrdt until collaboration is found running, and no
method raises: without collaboration, or with the notebook not open, a write returns False and
the caller does what it does without collaboration.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import TYPE_CHECKING, Any

from .answer.ending import ANSWER_MIME
from .safety.shapes import answer_id as _answer_id_shape

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

log = logging.getLogger(__name__)

# The server extension of jupyter-collaboration (its YDocExtension's name).
YDOC_EXTENSION = "jupyter_server_ydoc"


class SharedNotebooks:
    """The live shared notebooks of one Jupyter server, when jupyter-server-ydoc serves them.

    Looks the extension up at each use: it loads after this one (extensions load by name)."""

    def __init__(self, serverapp: ServerApp) -> None:
        self._serverapp = serverapp

    def _extension(self) -> Any | None:
        """The loaded YDocExtension, unless absent, disabled, or told ``disable_rtc`` (then the
        pages open notebooks through the contents API and a room would only race their saves)."""
        manager = getattr(self._serverapp, "extension_manager", None)
        package = manager.extensions.get(YDOC_EXTENSION) if manager is not None else None
        if package is None or not package.enabled:
            return None
        for app in manager.extension_apps.get(YDOC_EXTENSION, ()):
            # ywebsocket_server exists once the extension has loaded (initialize_handlers).
            if getattr(app, "ywebsocket_server", None) is not None and not getattr(app, "disable_rtc", False):
                return app
        return None

    @property
    def available(self) -> bool:
        """Whether notebooks are shared documents on this server (collaboration installed and on)."""
        return self._extension() is not None

    async def read(self, path: str) -> dict[str, Any] | None:
        """The open shared notebook at ``path`` as nbformat JSON, as its pages see it now (edits
        not saved yet included); None without collaboration or when no page has it open."""
        extension = self._extension()
        if extension is None:
            return None
        try:
            notebook = await extension.get_document(path=path, content_type="notebook", file_format="json", copy=False)
            return notebook.get() if notebook is not None else None
        except Exception as e:  # a third party's internals: read the file instead
            log.warning("cellmage: could not read the shared notebook %s: %r", path, e)
            return None

    async def replace_output(self, path: str, cell_id: str, answer_id: str, output: dict[str, Any]) -> bool:
        """Replace, in one transaction, the output of answer ``answer_id`` in cell ``cell_id`` of
        the open shared notebook at ``path`` (a contents API path) with ``output`` (an nbformat
        output dict). The answer's output is the one whose ``data[ANSWER_MIME]["answer"]["id"]``
        is ``answer_id``. Returns whether it was replaced: False without collaboration, when no
        page has the notebook open (nor had it within ``document_cleanup_delay``), or when the
        cell or the output is not there (deleted, or cleared by a collaborator)."""
        extension = self._extension()
        if extension is None:
            return False
        try:
            # copy=False: the room's own document, not a fork; None when there is no room (it
            # does not open one: create=False).
            notebook = await extension.get_document(
                path=path, content_type="notebook", file_format="json", copy=False
            )
            if notebook is None:
                return False
            return _replace_answer_output(notebook, cell_id, answer_id, output)
        except Exception as e:  # a third party's internals: a failed write must not end the answer's handling
            log.warning("cellmage: could not write the answer into the shared notebook %s: %r", path, e)
            return False


def _replace_answer_output(notebook: Any, cell_id: str, answer_id: str, output: dict[str, Any]) -> bool:
    """The replacement in ``notebook`` (a jupyter_ydoc ``YNotebook``): delete then insert at the
    same index, as JupyterLab's own ``updateOutputs`` does, so the pages see an outputs change."""
    from pycrdt import Array, Map

    with notebook.ydoc.transaction():
        for ycell in notebook.ycells:
            if not isinstance(ycell, Map) or ycell.get("id") != cell_id:
                continue
            outputs = ycell.get("outputs")
            if not isinstance(outputs, Array):
                continue
            for index, youtput in enumerate(outputs):
                if _answer_id(youtput) == answer_id:
                    # A kernel's %%llm answer has its plain-text fallback (stdout) right after
                    # the placeholder; the stored answer replaces both, as the kernel's own
                    # clear_output would have. (Pages append an inserted output: as the last
                    # one it also lands in its place there.)
                    end = index + 1
                    while end < len(outputs) and _is_stdout(outputs[end]):
                        end += 1
                    del outputs[index:end]
                    outputs.insert(index, _youtput(output))
                    return True
    return False


def _is_stdout(youtput: Any) -> bool:
    get = getattr(youtput, "get", None)
    return get is not None and get("output_type") == "stream" and get("name") == "stdout"


def _answer_id(youtput: Any) -> str | None:
    """The answer id an output is marked with, if any. An output is a pycrdt ``Map`` (as pages and
    jupyter_ydoc write them) or a plain dict (jupyter_ydoc's granular cell updates); its data, and
    the answer MIME's value, are usually dicts, but a JSON string is read too."""
    data = _plain(youtput.get("data")) if hasattr(youtput, "get") else None
    mark = _plain(data.get(ANSWER_MIME)) if isinstance(data, dict) else None
    answer = mark.get("answer") if isinstance(mark, dict) else None
    return _answer_id_shape(answer.get("id")) if isinstance(answer, dict) else None


def _plain(value: Any) -> Any:
    """A shared value as Python: pycrdt types through ``to_py``, JSON strings parsed."""
    if hasattr(value, "to_py"):
        return value.to_py()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _youtput(output: dict[str, Any]) -> Any:
    """An output as the pages create one (@jupyter/ydoc ``createOutputs``): a ``Map`` of plain
    values, but a stream's text as a ``Text`` (the pages append to it)."""
    from pycrdt import Map, Text

    value = copy.deepcopy(output)
    if value.get("output_type") == "stream":
        text = value.get("text", "")
        value["text"] = Text(text if isinstance(text, str) else "".join(text))
    return Map(value)
