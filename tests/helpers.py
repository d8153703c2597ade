"""What the test modules share (no test module imports from another): waiting for a condition,
reading an answer's events, raw-socket clients, the server's memory, the key-run check, a kernel
with the magics loaded, and an identity provider that names people. The fixtures (a server, the
fake provider, kernels) and the configuration builders are in ``conftest.py``."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from httpx_sse import EventSource
from jupyter_server.auth.identity import IdentityProvider, User

from .conftest import SECRET
from .kernel import Kernel

# A notebook cell's turn: answers of cells may be followed and stopped by collaborators.
CELL = {"conversation": "team/one.ipynb", "cell_id": "cell-1"}


# --- waiting for a condition ---------------------------------------------------------------

async def until(condition: Callable[[], Any], timeout: float = 10.0, every: float = 0.02) -> Any:
    """Poll ``condition`` (a function, or a coroutine function) until it returns something truthy,
    which is returned; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)


def answer_tasks() -> list[asyncio.Task]:
    """The server's tasks that run an answer (this process runs the server under test)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("cellmage-answer-")]


async def settled(api: Any, timeout: float = 10.0, *, tasks: bool = False) -> None:
    """Wait until the server runs no answer (it notices hang-ups within a few loop turns); with
    ``tasks``, until no answer task is left either (its provider request closed)."""
    async def idle() -> bool:
        return (await api.get("status")).json()["running_answers"] == 0 and not (tasks and answer_tasks())

    await until(idle, timeout)


# --- an answer's events --------------------------------------------------------------------

class Stream:
    """An SSE response read in steps (httpx_sse reads a response once)."""

    def __init__(self, response: Any) -> None:
        self._sse = EventSource(response).aiter_sse()
        self.events: list[tuple[str, dict]] = []

    async def until_delta(self) -> str:
        """Read up to the first delta; the answer's id."""
        async for sse in self._sse:
            self.events.append((sse.event, json.loads(sse.data)))
            if sse.event == "delta":
                return self.events[0][1]["id"]
        raise AssertionError("the answer ended before any text")

    async def rest(self) -> list[tuple[str, dict]]:
        async for sse in self._sse:
            self.events.append((sse.event, json.loads(sse.data)))
        return self.events


async def read_events(response: Any) -> list[tuple[str, dict]]:
    return await Stream(response).rest()


def delta_text(events: list[tuple[str, dict]]) -> str:
    return "".join(data["text"] for name, data in events if name == "delta")


# --- raw-socket clients --------------------------------------------------------------------

def raw_get(path: str, auth: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\r\n".encode()


def raw_post(path: str, auth: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def stalled_client(port: int, request: bytes) -> socket.socket:
    """A client with a small receive window that sends ``request`` and then reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    await asyncio.get_running_loop().sock_sendall(sock, request)
    return sock


async def read_response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """The rest of a chunked response, to its last chunk or the connection's end."""
    sock.setblocking(True)
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        got = await asyncio.to_thread(sock.recv, 1 << 20)
        if not got:
            break
        data += got
    return data


async def first_answer_bytes(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection; what the server answers first (at most 64 KB, 5 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


# --- the server's memory -------------------------------------------------------------------

# 15 MB of answer whose JSON escaping is at its worst (a control character becomes 6 bytes).
NASTY = "\x01" * 4000 + "y" * 12000


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@asynccontextmanager
async def peak_growth() -> AsyncIterator[list[int]]:
    """Samples this process's resident size every 10 ms; yields a one-item list that holds, on
    exit, the peak growth in bytes over the size at entry."""
    base, peak = _rss(), [0]

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], _rss() - base)
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(sample())
    try:
        yield peak
    finally:
        task.cancel()
        peak[0] = max(peak[0], _rss() - base)


def running_handler(kind: type) -> Any:
    """The one live handler of this class that is serving an answer."""
    import gc

    (found,) = [h for h in gc.get_objects() if isinstance(h, kind) and getattr(h, "_answer", None) is not None and not h._finished]
    return found


# --- secrets -------------------------------------------------------------------------------

def runs_of_the_key(text: str, run: int = 8) -> list[str]:
    """Every run of ``run`` characters of the provider key that ``text`` holds."""
    return [SECRET[i : i + run] for i in range(len(SECRET) - run + 1) if SECRET[i : i + run] in text]


# --- kernels -------------------------------------------------------------------------------

async def loaded(kernel: Kernel) -> Kernel:
    """``kernel`` with ``%load_ext cellmage_server`` run, without an error."""
    run = await kernel.run("%load_ext cellmage_server")
    assert not run.errors() and not run.stderr(), run.stderr()
    return kernel


def streamed_before_the_answer(run: Any) -> str:
    """The stdout text that arrived before the final Markdown display (the one after clear_output)."""
    out = []
    for m in run.messages:
        if m["msg_type"] == "clear_output":
            break
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout":
            out.append(m["content"]["text"])
    return "".join(out)


async def printed_json(kernel: Kernel, code: str) -> object:
    """Run ``code`` in the kernel; it prints one JSON value last, which is returned."""
    run = await kernel.run(code)
    assert run.reply["status"] == "ok", (run.errors(), run.stderr())
    return json.loads(run.stdout().strip().splitlines()[-1])


# --- people --------------------------------------------------------------------------------

class NamedUsers(IdentityProvider):
    """Like JupyterHub's: a request with the token names its person in ``X-Test-User``."""

    def get_user_token(self, handler: Any) -> Any:
        async def named() -> User | None:
            user = await super(NamedUsers, self).get_user_token(handler)
            name = handler.request.headers.get("X-Test-User")
            return User(username=name) if user is not None and name else user

        return named()
