"""A lean fake OpenAI-compatible provider for the benchmark, on raw asyncio streams (the tests'
tornado fake is clearer but too slow to feed hundreds of paced streams on two cores).

The last user message sets the answer: ``chunks=200 interval=0.02 id=abc``. Each chunk's text is
the monotonic time it was sent (``"12345.678901 "``), so a client can tell each chunk's delay
exactly (CLOCK_MONOTONIC is shared by all processes of the machine); ``size=16000`` pads it to
that many characters (``nasty=1``: with control characters, JSON's costliest to escape). ``GET /hangups`` answers the
monotonic time at which each request id's client hung up.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

_PARAM = re.compile(r"(\w+)=(\S+)")


class FakeProvider:
    def __init__(self) -> None:
        self.hangups: dict[str, float] = {}
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> FakeProvider:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=2048)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = b""  # the next request's first byte, when watching for a hang-up read it
        try:
            while True:  # keep-alive, as real providers are: a pool reuses the connection
                head = first + await reader.readuntil(b"\r\n\r\n")
                request_line, _, header_block = head.decode("latin-1").partition("\r\n")
                headers = dict(
                    line.lower().split(": ", 1) for line in header_block.split("\r\n") if ": " in line
                )
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                path = request_line.split(" ")[1]
                if path == "/hangups":
                    payload = json.dumps(self.hangups).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload))
                    await writer.drain()
                    continue
                after = await self._answer(json.loads(body), reader, writer)
                if after is None:
                    return
                first = after
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, body: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
        """Stream one answer; None when the connection is over, else what was read of the next
        request while watching for a hang-up."""
        params = dict(_PARAM.findall(body["messages"][-1]["content"]))
        chunks = int(params.get("chunks", "20"))
        interval = float(params.get("interval", "0"))
        request_id = params.get("id", "")
        size = int(params.get("size", "0"))
        pad = ("\\u0001" * (size // 4) + "x" * (size - size // 4)) if params.get("nasty") == "1" else "x" * size
        model = body.get("model", "fake")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")

        def send(payload: dict | str) -> None:
            data = b"data: " + (payload if isinstance(payload, str) else json.dumps(payload)).encode() + b"\n\n"
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))

        # The client hanging up shows as EOF on the reading side: watch for it while writing.
        hangup = asyncio.ensure_future(reader.read(1))
        start = time.monotonic()
        # Pre-encoded halves of a chunk: only the timestamp between them changes.
        head = json.dumps({"id": "c", "object": "chat.completion.chunk", "model": model})[:-1]
        base = head + ',"choices":[{"index":0,"delta":{"content":"'
        try:
            for i in range(chunks):
                if interval:
                    delay = start + i * interval - time.monotonic()
                    if delay > 0:
                        done, _ = await asyncio.wait([hangup], timeout=delay)
                        if done:
                            break
                elif hangup.done():
                    break
                send(f'{base}{time.monotonic():.6f} {pad}"}},"finish_reason":null}}]}}')
                if interval or i % 16 == 15:
                    await writer.drain()
            if hangup.done() and hangup.result() == b"":
                self.hangups[request_id] = time.monotonic()
                return None
            send({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            send({"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": chunks + 5}})
            send("[DONE]")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            if not hangup.done():
                hangup.cancel()  # (a read cancelled before it returned consumed nothing)
                return b""
            return hangup.result() or None  # the next request had begun, or the client left
        except ConnectionError:
            self.hangups[request_id] = time.monotonic()
            return None
        finally:
            if not hangup.done():
                hangup.cancel()
            elif hangup.result() == b"" and request_id not in self.hangups:
                self.hangups[request_id] = time.monotonic()


async def _serve() -> None:
    fake = await FakeProvider().start()
    print(fake.port, flush=True)  # the benchmark reads the port from the first line
    try:
        await asyncio.Event().wait()  # until the benchmark terminates this process
    finally:
        await fake.stop()


if __name__ == "__main__":
    try:
        asyncio.run(_serve())
    except KeyboardInterrupt:
        pass
