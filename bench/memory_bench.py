"""What attacks on the server's memory cost: a real `jupyter server` with the extension and the
fake provider in their own processes, on 127.0.0.1; for each attack the server's peak resident
size over what it was just before (sampled every 10 ms), median of the repeats.

    python bench/memory_bench.py            # three repeats
    python bench/memory_bench.py --quick    # one

The attacks: followers that never read a 7 MB answer (ended, and running); a client of
`cellmage/v1` that never reads a 200 MB answer; a fast reader of a 200 MB answer (both
endpoints); a whole 200 MB answer; 200 MB bodies (without credentials, four at once; and with).
The answers are the provider ignoring `max_tokens`; their text is a quarter control characters
(JSON escapes each into 6 bytes). Run it against another checkout of the package with
PYTHONPATH=<checkout> to compare (the server process inherits it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relay_bench import TOKEN, Process, fake_provider, jupyter_server, print_table, server_toml  # noqa: E402

MB = 1 << 20
AUTH = {"Authorization": f"token {TOKEN}"}
CELL = {"conversation": "bench.ipynb"}


def _rss(proc: Process) -> int:
    return int(proc.rss_mb() * MB)


Mark = Callable[[], None]


async def peak_growth(proc: Process, attack: Callable[[Mark], Awaitable[None]]) -> int:
    """The server's peak RSS growth while ``attack`` runs (and half a second after), over its
    size when the attack calls ``mark()`` (once what it attacks is in place), or when it starts."""
    base, peak = _rss(proc), 0
    stop = asyncio.Event()

    def mark() -> None:
        nonlocal base, peak
        base, peak = _rss(proc), 0

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss(proc) - base)
            await asyncio.sleep(0.01)

    sampler = asyncio.ensure_future(sample())
    try:
        await attack(mark)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await sampler
    return peak


async def _raw(port: int, request: bytes, rcvbuf: int = 4096) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sends ``request`` and then reads nothing (a small receive window)."""
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 30)
    writer.transport.pause_reading()  # read nothing: the kernel's window fills and stays full
    writer.write(request)
    return reader, writer


def _post(path: str, body: dict, headers: dict[str, str]) -> bytes:
    data = json.dumps(body).encode()
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}Content-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def _spec(chunks: int, size: int, interval: float = 0) -> str:
    return f"chunks={chunks} size={size} nasty=1 interval={interval}"


async def stalled_followers(port: int, running: bool, mark: Mark, n: int = 8) -> None:
    """n followers that never read a 7 MB answer (ended, or still coming): under the default
    limits.max_answer_bytes, which the same attack on an older server would not have."""
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=120, headers=AUTH) as c:
        if running:
            asking = c.stream("POST", base + "/cellmage/api/chat", json={"prompt": _spec(450, 16000, 0.005), **CELL, "cell_id": f"r{time.monotonic_ns()}"})
            response = await asking.__aenter__()
            lines = response.aiter_lines()
            answer_id = None
            async for line in lines:
                if line.startswith("data:"):
                    answer_id = json.loads(line[5:])["id"]
                    break
        else:
            whole = await c.post(base + "/cellmage/api/chat", json={"prompt": _spec(450, 16000), "stream": False, **CELL, "cell_id": f"e{time.monotonic_ns()}"})
            answer_id = whole.json()["id"]
        request = f"GET /cellmage/api/answers/{answer_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {TOKEN}\r\n\r\n".encode()
        if not running:
            mark()  # the answer is in place: what follows is the followers'
        followers = [await _raw(port, request) for _ in range(n)]
        if running:
            async for _ in lines:  # the asker reads the whole answer
                pass
            await asking.__aexit__(None, None, None)
        else:
            await asyncio.sleep(3)
        for _, writer in followers:
            writer.close()


async def stalled_v1_reader(port: int, mark: Mark) -> None:
    """A kernel's library that asks for a 200 MB stream and never reads."""
    body = {"model": "bench", "messages": [{"role": "user", "content": _spec(12800, 16000)}], "stream": True}
    _, writer = await _raw(port, _post("/cellmage/v1/chat/completions", body, AUTH))
    await asyncio.sleep(5)
    writer.close()


async def fast_reader(port: int, route: str, mark: Mark) -> None:
    """A client that reads a 200 MB answer as fast as it comes."""
    base = f"http://127.0.0.1:{port}"
    if route == "v1":
        url, body = base + "/cellmage/v1/chat/completions", {"model": "bench", "messages": [{"role": "user", "content": _spec(12800, 16000)}], "stream": True}
    else:
        url, body = base + "/cellmage/api/chat", {"prompt": _spec(12800, 16000)}
    async with httpx.AsyncClient(timeout=300, headers=AUTH) as c, c.stream("POST", url, json=body) as response:
        async for _ in response.aiter_bytes():
            pass


async def whole_answer(port: int, route: str, mark: Mark) -> None:
    base = f"http://127.0.0.1:{port}"
    if route == "v1":
        url, body = base + "/cellmage/v1/chat/completions", {"model": "bench", "messages": [{"role": "user", "content": _spec(12800, 16000)}]}
    else:
        url, body = base + "/cellmage/api/chat", {"prompt": _spec(12800, 16000), "stream": False}
    async with httpx.AsyncClient(timeout=300, headers=AUTH) as c:
        await c.post(url, json=body)


async def big_bodies(port: int, credentials: bool, n: int, mark: Mark) -> None:
    """n bodies of 200 MB each, sent as fast as the server takes them."""
    piece = b"x" * (1 << 20)

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = f"Authorization: token {TOKEN}\r\n" if credentials else ""
        writer.write(
            (f"POST /cellmage/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
             f"Content-Type: application/json\r\nContent-Length: {200 * MB}\r\n\r\n").encode()
        )
        try:
            for _ in range(200):
                writer.write(piece)
                await asyncio.wait_for(writer.drain(), 10)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(n)))


ATTACKS: list[tuple[str, Callable[[int, Mark], Awaitable[None]]]] = [
    ("8 followers that never read a 7 MB answer (ended)", lambda port, mark: stalled_followers(port, False, mark)),
    ("8 followers that never read a 7 MB answer (running)", lambda port, mark: stalled_followers(port, True, mark)),
    ("a cellmage/v1 client that never reads a 200 MB stream", stalled_v1_reader),
    ("a fast reader of a 200 MB answer, chat endpoint", lambda port, mark: fast_reader(port, "chat", mark)),
    ("a fast reader of a 200 MB answer, cellmage/v1", lambda port, mark: fast_reader(port, "v1", mark)),
    ("a whole 200 MB answer, chat endpoint", lambda port, mark: whole_answer(port, "chat", mark)),
    ("a whole 200 MB answer, cellmage/v1", lambda port, mark: whole_answer(port, "v1", mark)),
    ("four 200 MB bodies without credentials, at once", lambda port, mark: big_bodies(port, False, 4, mark)),
    ("a 200 MB body with credentials", lambda port, mark: big_bodies(port, True, 1, mark)),
]


# What the limits allow (defaults: stream_buffer_bytes 1 MiB, max_answer_bytes 8 MiB).
GOALS = {name: "≤ 64 MB" for name, _ in ATTACKS}


async def run(repeats: int) -> list[tuple[str, str, str]]:
    rows = []
    with fake_provider() as fake_port:
        toml = server_toml(fake_port, "lean").replace("[timeouts]\n", "[timeouts]\nclient_behind = 3\n")
        with jupyter_server(toml) as (proc, port):
            for name, attack in ATTACKS:
                growths = [await peak_growth(proc, lambda mark: attack(port, mark)) for _ in range(repeats)]
                median = statistics.median(growths)
                rows.append((name, f"{median / MB:.0f} MB (" + ", ".join(f"{g / MB:.0f}" for g in growths) + ")", GOALS[name]))
                print(f"  {name}: {median / MB:.0f} MB", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args()
    rows = asyncio.run(run(1 if args.quick else 3))
    print("\nserver memory: peak resident growth during each attack, median (each run)")
    print_table(rows)


if __name__ == "__main__":
    main()
