"""The hub's memory of each server's gateway key: a mixin for the spawner class that keeps the
key's hash and alias in the spawner's state (see :mod:`cellmage_server.gateway_keys` for why
there), and adds what the key hooks say to the spawn's progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

STATE_KEY = "cellmage_gateway_key"  # in the spawner's state: {"token_id": ..., "alias": ...}


class GatewayKeyState:
    """Mixin for the hub's spawner class: keeps the server's key's hash and alias in the spawner's
    state, which the hub keeps in its database, so a hub restarted while the server runs
    (``cleanup_servers = False``) still deletes that key when the server stops::

        class TeamSpawner(GatewayKeyState, KubeSpawner):
            pass

    Put it first, so its ``get_state``/``load_state``/``clear_state`` (and ``progress``) run and
    call the spawner's own (JupyterHub's contract for spawner state: each calls ``super()``).
    """

    cellmage_gateway_key: dict[str, str | None] | None = None
    _cellmage_notes: ProgressNotes | None = None

    @property
    def cellmage_notes(self) -> ProgressNotes:
        if self._cellmage_notes is None:
            self._cellmage_notes = ProgressNotes()
        return self._cellmage_notes

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()  # type: ignore[misc]
        if self.cellmage_gateway_key:
            state[STATE_KEY] = dict(self.cellmage_gateway_key)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        held = state.get(STATE_KEY)
        if isinstance(held, dict) and all(isinstance(held.get(k), (str, type(None))) for k in ("token_id", "alias")):
            self.cellmage_gateway_key = {"token_id": held.get("token_id"), "alias": held.get("alias")}

    def clear_state(self) -> None:
        # The key's hash stays: LocalProcessSpawner.poll() clears the state as soon as the
        # server's process is gone, before the hub runs post_stop_hook, which needs it and then
        # forgets it. What a start says in its progress is over with its server.
        super().clear_state()  # type: ignore[misc]
        self.cellmage_notes.clear()

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """The spawner's own progress events, and what the hooks say as they say it."""
        notes, sent = self.cellmage_notes, 0
        own = super().progress().__aiter__()  # type: ignore[misc]
        step: asyncio.Future[Any] | None = asyncio.ensure_future(own.__anext__())
        try:
            while True:
                sent = min(sent, len(notes.events))
                while sent < len(notes.events):
                    sent += 1
                    yield notes.events[sent - 1]
                waits = [f for f in (step, notes.more()) if f is not None]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if step is not None and step.done():
                    try:
                        event = step.result()
                    except StopAsyncIteration:  # the spawner's own are over; ours may still come
                        step = None
                    else:
                        step = asyncio.ensure_future(own.__anext__())
                        yield event
        finally:  # the hub stops reading when the spawn is over
            if step is not None and not step.done():
                step.cancel()
                await asyncio.wait([step])
            await own.aclose()


class ProgressNotes:
    """What the hooks said during one start, for every progress stream that follows it (one per
    browser tab)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._more: asyncio.Future[None] | None = None

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self._more is not None and not self._more.done():
            self._more.set_result(None)
        self._more = None

    def more(self) -> asyncio.Future[None]:
        """Done when the next event is added."""
        if self._more is None:
            self._more = asyncio.get_running_loop().create_future()
        return self._more

    def clear(self) -> None:
        self.events.clear()



def note(spawner: Any, message: str) -> None:
    """Tell the spawn's progress (when the spawner has :class:`GatewayKeyState`)."""
    notes = getattr(spawner, "cellmage_notes", None)
    if isinstance(notes, ProgressNotes):
        notes.add({"message": message})
