"""A watching collaborator for bench/collab_bench.py: joins a notebook's room as a page does
(``PUT api/collaboration/session/{path}``, then the room's websocket, synced with pycrdt; the same
approach as tests/test_collab_write.py) and records every websocket message it receives: when, how
many bytes (the raw message), and of which kind (Yjs sync step or update, awareness, other).

It also notes which message brought the asked cell's answer placeholder (the lab plugin's live
output) and which brought the stored answer, by looking at its copy of the notebook after each
document message is applied.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pycrdt
from jupyter_ydoc import YNotebook
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

ANSWER_MIME = "application/vnd.cellmage.answer+json"

KINDS = {(0, 0): "sync step 1", (0, 1): "sync step 2", (0, 2): "sync update", (1, None): "awareness"}


def kind_of(message: bytes) -> str:
    if not message:
        return "empty"
    if message[0] == 0 and len(message) > 1:
        return KINDS.get((0, message[1]), f"sync {message[1]}")
    return KINDS.get((message[0], None), f"type {message[0]}")


def answer_state(outputs: list[dict[str, Any]]) -> tuple[str, dict[str, Any] | None]:
    """("none" | "live" | "stored", the answer's output) of a cell's outputs."""
    for output in outputs:
        mark = (output.get("data") or {}).get(ANSWER_MIME)
        if isinstance(mark, dict) and isinstance(mark.get("answer"), dict):
            return ("live" if mark["answer"].get("live") else "stored"), output
    return "none", None


@dataclass
class Message:
    at: float  # time.monotonic() when it was read
    size: int  # bytes of the websocket message
    kind: str


@dataclass
class Transition:
    state: str
    at: float
    index: int  # which message (in Watcher.messages) brought it
    size: int


class _CountingChannel:
    """A pycrdt ``Channel`` over tornado's websocket client that records what it receives and,
    each time the provider asks for the next message (the previous one applied), looks at the
    answer's state."""

    def __init__(self, watcher: Watcher, connection: WebSocketClientConnection, path: str) -> None:
        self._watcher = watcher
        self._connection = connection
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> _CountingChannel:
        return self

    async def __anext__(self) -> bytes:
        self._watcher._look()
        message = await self._connection.read_message()
        if message is None:
            raise StopAsyncIteration
        data = message if isinstance(message, bytes) else message.encode()
        self._watcher.messages.append(Message(time.monotonic(), len(data), kind_of(data)))
        return data

    async def send(self, message: bytes) -> None:
        await self._connection.write_message(message, binary=True)

    async def recv(self) -> bytes:
        return await self.__anext__()


@dataclass
class Watcher:
    base_url: str  # http://127.0.0.1:PORT/
    path: str
    cell: int = 0
    messages: list[Message] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    file_id: str = ""
    notebook: YNotebook | None = None
    _connection: WebSocketClientConnection | None = None
    _provider: Any = None
    _task: asyncio.Task | None = None
    _state: str = "none"
    _seen: int = 0

    def _look(self) -> None:
        """After a document message: did the answer's state change?"""
        if self.notebook is None or len(self.messages) == self._seen:
            return
        self._seen = len(self.messages)
        last = self.messages[-1]
        if not last.kind.startswith("sync") or self.notebook.cell_number <= self.cell:
            return
        state, _ = answer_state(self.notebook.get_cell(self.cell).get("outputs", []))
        if state != self._state:
            self._state = state
            self.transitions.append(Transition(state, last.at, len(self.messages) - 1, last.size))

    def output(self) -> dict[str, Any] | None:
        assert self.notebook is not None
        return answer_state(self.notebook.get_cell(self.cell).get("outputs", []))[1]

    def when(self, state: str, after: float = 0.0) -> Transition | None:
        return next((t for t in self.transitions if t.state == state and t.at >= after), None)

    def since(self, start: float, end: float | None = None) -> list[Message]:
        return [m for m in self.messages if m.at >= start and (end is None or m.at <= end)]

    async def open(self, timeout: float = 20) -> None:
        client = AsyncHTTPClient()
        response = await client.fetch(
            f"{self.base_url}api/collaboration/session/{self.path}",
            method="PUT",
            body=json.dumps({"format": "json", "type": "notebook"}),
        )
        session = json.loads(response.body)
        self.file_id = session["fileId"]
        room = f"{session['format']}:{session['type']}:{session['fileId']}"
        ws_base = "ws" + self.base_url[len("http") :]
        url = f"{ws_base}api/collaboration/room/{room}?sessionId={session['sessionId']}"
        self._connection = await websocket_connect(HTTPRequest(url), max_message_size=256 * 1024 * 1024)
        self.notebook = YNotebook()
        self._provider = pycrdt.Provider(self.notebook.ydoc, _CountingChannel(self, self._connection, room))
        self._task = asyncio.create_task(self._provider.start())
        await asyncio.wait_for(self._provider.synced.wait(), timeout)
        deadline = time.monotonic() + timeout
        while self.notebook.cell_number <= self.cell:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: the shared notebook has no cell {self.cell}")
            await asyncio.sleep(0.05)

    async def wait_for(self, state: str, after: float, timeout: float) -> Transition:
        deadline = time.monotonic() + timeout
        while True:
            found = self.when(state, after)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: no {state!r} answer within {timeout} s (states: {self.transitions})")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._provider is not None:
            try:
                await asyncio.wait_for(self._provider.stop(), 5)
            except Exception:  # noqa: BLE001 (the connection is gone: nothing left to stop cleanly)
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except BaseException:  # noqa: BLE001
                pass
