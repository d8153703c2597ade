"""What every route of this extension shares: the typed-error mapping, the principal, a request
body that is refused before it is held, and the event-stream headers.

Every verb is authenticated and authorized against the ``cellmage`` resource. Handlers raise
:class:`~cellmage_server.errors.CellmageError`; the :func:`mapped` decorator turns it into the
``HTTPError`` that jupyter-server's ``APIHandler.write_error`` writes as ``{"message", "reason"}``.
Once a stream has started, errors are SSE ``error`` events instead (see answer/relay.py).
"""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_server._tz import utcnow
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..answer.board import AnswerRecord
from ..answer.lifecycle import AnswerService
from ..context.assemble import Assembled, assemble
from ..context.gather import gather
from ..contract import ContextRequest
from ..errors import BadRequest, CellmageError, NotFound, PayloadTooLarge, http_error
from ..personas import NOTEBOOK_FOLDER, NotebookFolder
from ..principal import principal
from ..store.history import Store, conversation_path

if TYPE_CHECKING:
    from ..app import CellmageState

AUTH_RESOURCE = "cellmage"

# Above the body limit, how much tornado reads before it drops the connection itself (its reads are
# 64 KiB): within it, the handler answers 413 first.
BODY_SLACK = 128 * 1024

# A route that takes no body (GET, DELETE, cancel, settle) accepts this much of one at most.
NO_BODY = 1024

# A body over the limit is never held. One up to this many times the limit is read and dropped
# before the 413 goes out, so a client that sends its whole request before it reads the answer
# (the openai SDK, httpx) sees the 413 rather than a broken connection; a larger one, or one
# from someone unknown, is refused at once and the connection closed.
DISCARD_FACTOR = 4


def mapped(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The one place typed errors become the HTTP errors jupyter-server writes as JSON."""

    @functools.wraps(method)
    async def wrapper(self: CellmageHandler, *args: str) -> None:
        try:
            await method(self, *args)
        except CellmageError as e:
            self.expected_error = e
            raise http_error(e) from e

    return wrapper


@web.stream_request_body
class CellmageHandler(APIHandler):
    """A body is read as it arrives, only from someone the server knows, and refused once it is
    over :meth:`body_limit`: by its ``Content-Length`` at once, or as soon as it grows past the
    limit, so the server never holds more. Routes that take a body override ``body_limit``."""

    auth_resource = AUTH_RESOURCE
    expected_error: CellmageError | None = None  # set by `mapped`, for the request log
    _body: bytearray | None = None
    _dropped = 0  # bytes of an oversized body read and dropped so far
    _oversize: PayloadTooLarge | None = None  # the 413 to answer once the body is read

    @property
    def cellmage(self) -> CellmageState:
        return self.settings["cellmage"]

    @property
    def answers(self) -> AnswerService:
        """The answer lifecycle (answer/lifecycle.py), or 503 saying why there is none."""
        state = self.cellmage
        state.require_config()
        assert state.answers is not None
        return state.answers

    @property
    def username(self) -> str:
        """The principal (see principal.py): what cancel, limits and the ledger key on."""
        return principal(self.identity_provider, self.current_user)

    # --- the body ---------------------------------------------------------------------------

    def body_limit(self) -> int:
        return NO_BODY

    def refuse_unknown(self) -> None:
        """Nobody unknown gets to send a body (jupyter-server itself may allow unauthenticated
        access and decide per verb, after the body was read)."""
        raise web.HTTPError(403)

    _closes = False  # answered before the request was read to its end: tornado will close

    def set_default_headers(self) -> None:
        super().set_default_headers()
        if self._closes:
            # Said in the answer (send_error clears headers, then comes here), so a proxy that keeps
            # connections alive (configurable-http-proxy) does not send its next request down a
            # socket tornado is about to close, which it would report as a 503 "server down".
            self.set_header("Connection", "close")

    async def prepare(self) -> None:
        try:
            await self._prepare()
        except BaseException:
            self._closes = True  # answered in prepare: tornado has not read the body, and closes
            raise

    async def _prepare(self) -> None:
        self._transforms = [t for t in self._transforms if not isinstance(t, web.GZipContentEncoding)]
        await super().prepare()  # authenticates
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return
        if not self.current_user:
            self.refuse_unknown()
        self._limit = self.body_limit()
        self._body = bytearray()
        # tornado's own cap, a backstop for a chunked body sent in pieces larger than its reads.
        dropped_at_most = self._limit * DISCARD_FACTOR if self._limit > NO_BODY else self._limit
        self.request.connection.set_max_body_size(dropped_at_most + BODY_SLACK)
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._limit:
            if not self._may_drop(int(declared)):
                raise http_error(self._too_large(int(declared)))
            self._oversize = self._too_large(int(declared))

    def _may_drop(self, size: int) -> bool:
        return self._limit > NO_BODY and size <= self._limit * DISCARD_FACTOR

    def data_received(self, chunk: bytes) -> None:
        if self._finished or self._body is None:
            return
        if self._oversize is None and len(self._body) + len(chunk) <= self._limit:
            self._body += chunk
            return
        self._dropped += len(self._body) + len(chunk)
        self._body.clear()
        self._oversize = self._oversize or self._too_large(self._dropped, at_least=True)
        if not self._may_drop(self._dropped):
            # Answered now, mid-body: tornado then closes the connection rather than read the rest.
            error = http_error(self._too_large(self._dropped, at_least=True))
            self._closes = True
            self.send_error(error.status_code, exc_info=(type(error), error, None))

    def body(self) -> bytes:
        """The request's body, or the 413 it earned (nothing of it was kept)."""
        if self._oversize is not None:
            raise self._oversize
        return bytes(self._body or b"")

    def _too_large(self, size: int, at_least: bool = False) -> PayloadTooLarge:
        more = "more than " if at_least else ""
        return PayloadTooLarge(f"The request is {more}{size} bytes; this server accepts at most {self._limit}.")

    # --- shared helpers ---------------------------------------------------------------------

    def conversation_id(self, raw: str) -> str:
        """A conversation's id: the notebook's API path. Kernels know their notebook by its file
        path (JPY_SESSION_NAME); one under the server's root becomes the same API path, one
        outside it is refused."""
        if os.path.isabs(raw):
            root = os.path.abspath(self.settings.get("server_root_dir") or self.contents_manager.root_dir)
            absolute = os.path.abspath(raw)
            if not absolute.startswith(root.rstrip(os.sep) + os.sep):
                raise BadRequest(f"The conversation {raw!r} is a file outside this server's root folder.")
            raw = absolute[len(root.rstrip(os.sep)) + 1 :].replace(os.sep, "/")
        try:
            return conversation_path(raw)
        except ValueError as e:
            raise BadRequest(f"The conversation {raw!r} is not a notebook path: {e}.") from None

    def notebook_argument(self) -> str | None:
        """The ``?notebook=`` of a request (a notebook's path, as ``conversation`` takes it), checked."""
        raw = self.get_query_argument("notebook", None)
        return self.conversation_id(raw) if raw else None

    def notebook_personas(self, conversation: str | None) -> NotebookFolder | None:
        """The ``llm_personas/`` folder beside the notebook ``conversation`` (an id from
        :meth:`conversation_id`), by the contents API's rules: inside the server's root (also
        once symbolic links are followed) and, unless the server shows hidden files, through no
        hidden folder. None when there is no such folder."""
        root = getattr(self.contents_manager, "root_dir", None)
        if conversation is None or not isinstance(root, str) or not root:
            return None
        relative = posixpath.join(posixpath.dirname(conversation), NOTEBOOK_FOLDER)
        if not getattr(self.contents_manager, "allow_hidden", False) and any(
            part.startswith(".") for part in relative.split("/")
        ):
            return None
        real_root = os.path.realpath(root)
        folder = os.path.realpath(os.path.join(real_root, *relative.split("/")))
        if not folder.startswith(real_root.rstrip(os.sep) + os.sep) or not os.path.isdir(folder):
            return None
        return NotebookFolder(Path(folder), Path(real_root))

    async def assembled(self, context: ContextRequest | None, conversation: str | None, cell_id: str | None) -> Assembled | None:
        """The context an answer asked for, gathered and within its budget (context/)."""
        if context is None:
            return None
        settings = self.cellmage.require_config().settings
        asked = await gather(
            context, settings, notebook=conversation, cell_id=cell_id, root=Path(self.contents_manager.root_dir),
            contents_manager=self.contents_manager, shared=self.cellmage.shared,
        )
        return assemble(asked, settings.context, settings.limits.context_chars)

    def store(self) -> Store:
        state = self.cellmage
        state.require_config()
        assert state.store is not None
        return state.store

    def event_stream_headers(self) -> None:
        """Never compressed (see prepare): compression buffers frames and breaks token-by-token
        delivery. And every frame goes out as it is written: without TCP_NODELAY (tornado sets it
        only as a response finishes) the kernel holds a small frame until the client acknowledges
        the one before, and clients delay their acknowledgements by up to 40 ms (Linux) or 200 ms."""
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None and not stream.closed():
            stream.set_nodelay(True)

    def visible(self, answer_id: str) -> AnswerRecord:
        """An answer this user may follow, settle or stop: any answer of a notebook cell (whoever
        can open this server can open the notebook), else only their own (404 for others)."""
        record = self.cellmage.board.get(answer_id)
        if (record.conversation is None or record.cell_id is None) and record.owner != self.username:
            raise NotFound(f"No answer with id {answer_id!r} is known to this server.")
        return record


def touch(settings: dict) -> None:
    """Count a running answer as server activity, so idle cullers leave the server up."""
    # ServerApp.last_activity() reads every setting whose name ends with "_last_activity".
    settings["cellmage_last_activity"] = utcnow()


class PromptBodyHandler(CellmageHandler):
    """A route whose body is a prompt (``chat``, ``context``): bounded by ``limits.max_prompt_bytes``."""

    def body_limit(self) -> int:
        config = self.cellmage.config
        return config.settings.limits.max_prompt_bytes if config else super().body_limit()
