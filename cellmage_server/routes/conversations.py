"""``conversations/{path}`` and ``conversations/{path}/turns/{cell}``: a notebook's turns, in
notebook order, and forgetting them (store/history.py)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..contract import dumps
from ..errors import BadRequest
from ..safety import shapes
from ..store.history import totals
from .base import CellmageHandler, mapped


class ConversationHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self, conversation: str) -> None:
        """A conversation's turns, in notebook order (the id is the notebook's path)."""
        path = self.conversation_id(conversation)
        turns = await self.store().turns(path)
        self.finish(dumps({"id": path, "turns": [t.public() for t in turns], "totals": totals(turns)}))

    @web.authenticated
    @authorized
    @mapped
    async def delete(self, conversation: str) -> None:
        """Forget a conversation's turns."""
        await self.store().clear(self.conversation_id(conversation))
        self.set_status(204)
        self.finish()


class TurnHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def delete(self, conversation: str, cell_id: str) -> None:
        """Forget one cell's turn."""
        if shapes.cell_id(cell_id) is None:
            raise BadRequest(f"{cell_id[:80]!r} is not a notebook cell id (1 to 64 of A-Z a-z 0-9 - _).")
        await self.store().delete_turn(self.conversation_id(conversation), cell_id)
        self.set_status(204)
        self.finish()
