"""A lean SSE client for the benchmark: raw asyncio HTTP/1.1 with a chunked decoder, so that reading
hundreds of streams costs the client little (httpx-sse would cost as much as the server).

It reads both the server's stream (``event: delta`` frames) and the fake provider's own
(``data: {...}`` OpenAI chunks), and reports when each chunk arrived relative to the monotonic
send time the fake wrote into its text.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class StreamStats:
    status: int = 0
    sent: float = 0.0  # when the request was written
    first_text: float | None = None  # when the first answer text arrived
    delays: list[float] = field(default_factory=list)  # per chunk: arrival - the fake's send time
    arrivals: list[float] = field(default_factory=list)  # when each frame of text arrived
    events: list[str] = field(default_factory=list)
    chunks: int = 0
    error: str | None = None
    closed_at: float | None = None  # when this client hung up early


async def stream(
    port: int, path: str, body: dict, *, token: str = "", stop_after: int | None = None, timeout: float = 120
) -> StreamStats:
    """POST ``body`` to ``path`` and read the SSE answer; hang up after ``stop_after`` chunks."""
    stats = StreamStats()
    payload = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n"
        + (f"Authorization: token {token}\r\n" if token else "")
        + "\r\n"
    ).encode()
    try:
        async with asyncio.timeout(timeout):
            stats.sent = time.monotonic()
            writer.write(head + payload)
            await writer.drain()
            response_head = await reader.readuntil(b"\r\n\r\n")
            stats.status = int(response_head.split(b" ", 2)[1])
            if stats.status != 200:
                stats.error = f"HTTP {stats.status}"
                return stats
            buffer = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip() or b"0", 16)
                if size == 0:
                    break
                buffer += (await reader.readexactly(size + 2))[:-2]
                now = time.monotonic()
                *frames, buffer = buffer.split(b"\n\n")
                for frame in frames:
                    _read_frame(frame, now, stats)
                if stop_after is not None and stats.chunks >= stop_after:
                    stats.closed_at = time.monotonic()
                    return stats
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
        stats.error = f"{type(e).__name__}: {e}"
    finally:
        writer.close()
    if "done" not in stats.events and path.endswith("/cellmage/api/chat"):
        stats.error = stats.error or f"no done event ({stats.events[-3:]})"
    elif "error" in stats.events:
        stats.error = "error event"
    return stats


def _read_frame(frame: bytes, now: float, stats: StreamStats) -> None:
    event, data = "message", b""
    for line in frame.split(b"\n"):
        if line.startswith(b"event: "):
            event = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
    if not data:
        return
    stats.events.append(event)
    if event == "delta":
        text = json.loads(data)["text"]
    elif event == "message" and data != b"[DONE]":  # the fake provider's own chunks
        choices = json.loads(data).get("choices") or [{}]
        text = (choices[0].get("delta") or {}).get("content") or ""
    else:
        return
    stamps = text.split()
    if stamps and stats.first_text is None:
        stats.first_text = now
    if stamps:
        stats.arrivals.append(now)
    stats.chunks += len(stamps)
    stats.delays.extend(now - float(s) for s in stamps)
