"""``sessions``: a person's saved copies of notebooks' conversations (CellMage's ``--save``,
``--load``, ``--list-sessions``, ``--auto-save``), in the store's database (store/sessions.py).
Every saved copy belongs to the principal who saved it: nobody else lists, loads, replaces or
deletes it, and a name of another person's is simply not found.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..contract import dumps, parse_session_request
from ..errors import BadRequest, Conflict, NotFound
from ..safety import shapes
from ..store.sessions import MAX_SESSIONS, TooManySessions
from .base import CellmageHandler, mapped

BODY_LIMIT = 8 * 1024  # a notebook path and a name


def _session(raw: str) -> str:
    if shapes.session_id(raw) is None:
        raise BadRequest(
            f"{raw[:80]!r} is not the name of a saved conversation (letters, digits, '_' and '-', at most 80)."
        )
    return raw


class SessionsHandler(CellmageHandler):
    def body_limit(self) -> int:
        return BODY_LIMIT

    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """This person's saved conversations, oldest first."""
        saved = await self.store().list_sessions(self.username)
        self.finish(dumps({"sessions": [s.public() for s in saved], "most": MAX_SESSIONS}))

    @web.authenticated
    @authorized
    @mapped
    async def post(self) -> None:
        """Save a notebook's conversation as a new copy named ``name`` and the time."""
        request = parse_session_request(self.body())
        conversation = self.conversation_id(request.conversation)
        try:
            saved = await self.store().save_session(self.username, request.name, conversation)
        except TooManySessions:
            raise Conflict(
                f"You have {MAX_SESSIONS} saved conversations, the most this server keeps: delete one "
                "first (%llm_config --delete-session ID)."
            ) from None
        self.set_status(201)
        self.finish(dumps(saved.public()))


class SessionHandler(CellmageHandler):
    def body_limit(self) -> int:
        return BODY_LIMIT

    @web.authenticated
    @authorized
    @mapped
    async def put(self, session: str) -> None:
        """Save a notebook's conversation over the saved copy ``session`` (auto-save)."""
        request = parse_session_request(self.body())
        if request.name is not None:
            raise BadRequest("A saved conversation keeps its name: 'name' is for POST sessions.")
        saved = await self.store().replace_session(self.username, _session(session), self.conversation_id(request.conversation))
        if saved is None:
            raise NotFound(f"You have no saved conversation {session!r}.")
        self.finish(dumps(saved.public()))

    @web.authenticated
    @authorized
    @mapped
    async def delete(self, session: str) -> None:
        """Forget a saved copy."""
        if not await self.store().delete_session(self.username, _session(session)):
            raise NotFound(f"You have no saved conversation {session!r}.")
        self.set_status(204)
        self.finish()


class LoadHandler(CellmageHandler):
    def body_limit(self) -> int:
        return BODY_LIMIT

    @web.authenticated
    @authorized
    @mapped
    async def post(self, wanted: str) -> None:
        """Make a notebook's conversation the saved copy's turns: the one of that id, or the one
        whose id begins so (enough of it to be unique, as CellMage takes it)."""
        request = parse_session_request(self.body())
        if request.name is not None:
            raise BadRequest("'name' is for POST sessions.")
        conversation = self.conversation_id(request.conversation)
        store = self.store()
        found = await store.matching_sessions(self.username, _session(wanted))
        if not found:
            saved = [s.id for s in await store.list_sessions(self.username)]
            listed = ", ".join(saved[-5:]) if saved else "none yet (%llm_config --save NAME)"
            raise NotFound(f"You have no saved conversation {wanted!r}. The latest: {listed}.")
        if len(found) > 1:
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            raise Conflict(f"{wanted!r} begins {len(found)} saved conversations: {', '.join(found[:5])}{more}. Say which.")
        turns = await store.load_session(self.username, found[0], conversation)
        self.finish(dumps({"id": found[0], "conversation": conversation, "turns": turns}))
