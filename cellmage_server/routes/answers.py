"""``GET answers/{id}``, ``GET answers/{id}/events`` (follow it) and ``POST answers/{id}/settle``:
answers as others see them (answer/board.py, answer/follow.py)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..answer.follow import follow
from ..answer.outputs import SocketOutput
from ..config import Limits, Timeouts
from ..contract import dumps
from ..errors import BadRequest
from .base import CellmageHandler, mapped


class AnswerHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self, answer_id: str) -> None:
        """One answer as the board has it: where it is, its text so far, how it ended (if it did)."""
        record = self.visible(answer_id)
        self.finish(dumps({**record.start_data(), "text": record.text, "ending": record.ending, "written": record.written}))


class SettleHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def post(self, answer_id: str) -> None:
        """Write an ended answer into its cell of the live shared notebook (a page that opened the
        notebook found the answer's live placeholder). ``{"written": bool}``: false when there is
        no real-time collaboration here; the page then writes it into its own notebook."""
        record = self.visible(answer_id)
        if record.ending is None:
            raise BadRequest(f"The answer {answer_id!r} is still running; follow it instead.")
        await self.answers.settle(record)
        self.finish(dumps({"written": record.written}))


class FollowHandler(CellmageHandler):
    """``GET answers/{id}/events``: follow an answer someone else asked (a collaborator's page, or
    the lab plugin rendering a kernel's ``%%llm`` answer). The same events as the asker's stream:
    ``start`` (with the notebook and cell), the text so far, every later ``delta``, then
    ``usage``, ``error`` and ``done``. A follower cannot slow the answer down, and costs at most
    ``limits.stream_buffer_bytes``; ``limits.max_followers_per_answer`` and ``…_per_user`` bound
    their number (429)."""

    _out: SocketOutput | None = None

    @web.authenticated
    @authorized
    @mapped
    async def get(self, answer_id: str) -> None:
        state = self.cellmage
        record = self.visible(answer_id)
        limits = state.config.settings.limits if state.config else Limits()
        timeouts = state.config.settings.timeouts if state.config else Timeouts()
        user = self.username
        state.board.follow(record, user)  # 429 past the limits, before any byte
        try:
            self.event_stream_headers()
            self._out = SocketOutput(self)
            delivered = await follow(
                record, self._out, buffer_bytes=limits.stream_buffer_bytes, patience=timeouts.client_behind,
                ping_interval=limits.ping_interval,
            )
        finally:
            state.board.unfollow(record, user)
        if not delivered:
            self.request.connection.close()  # gone, or cut: stop holding what it did not read
        elif not self._finished:
            try:
                self.finish()
            except StreamClosedError:
                pass

    def on_connection_close(self) -> None:
        if self._out is not None:
            self._out.close()
        super().on_connection_close()
