"""Benchmark of the OpenAI-compatible endpoint: the openai SDK through `cellmage/v1` against the
same SDK calling the fake provider directly, and the endpoint's relay CPU against the chat
endpoint's, all in one run (real `jupyter server`, fake provider in its own process, 127.0.0.1).
Prints one table of medians (min–max) over repeats.

    python bench/openai_bench.py            # about two minutes
    python bench/openai_bench.py --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relay_bench import TOKEN, Process, fake_provider, jupyter_server, print_table, server_toml, summary  # noqa: E402
from sse_client import StreamStats, stream  # noqa: E402

V1 = "/cellmage/v1/chat/completions"
CHAT = "/cellmage/api/chat"


def sdk(base_url: str, key: str = TOKEN) -> openai.AsyncOpenAI:
    # Jupyter's token as the key by default: Jupyter credentials open the endpoint as the scoped key does.
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    return openai.AsyncOpenAI(
        base_url=base_url, api_key=key, max_retries=0,
        http_client=httpx.AsyncClient(trust_env=False, timeout=120, limits=limits),
    )


async def sdk_answer(client: openai.AsyncOpenAI, spec: str) -> tuple[float, int]:
    """(seconds to the first text, text chunks) of one streamed answer read with the SDK."""
    sent = time.monotonic()
    first, chunks = 0.0, 0
    response = await client.chat.completions.create(
        model="bench", messages=[{"role": "user", "content": spec}], stream=True
    )
    async for chunk in response:
        if chunk.choices and chunk.choices[0].delta.content:
            if not chunks:
                first = time.monotonic() - sent
            chunks += len(chunk.choices[0].delta.content.split())
    return first, chunks


async def ttft(via: openai.AsyncOpenAI, direct: openai.AsyncOpenAI, rounds: int) -> tuple[list[float], list[float]]:
    """Time to first token with the SDK, through the endpoint and direct, interleaved (ms)."""
    through, straight = [], []
    for i in range(rounds + 5):
        a, _ = await sdk_answer(via, "chunks=3 interval=0")
        b, _ = await sdk_answer(direct, "chunks=3 interval=0")
        if i >= 5:  # warm-up rounds are not counted
            through.append(a * 1000)
            straight.append(b * 1000)
    return through, straight


async def lean_v1(port: int, spec: str) -> StreamStats:
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": spec}]}
    return await stream(port, V1, body, token=TOKEN)


async def lean_chat(port: int, spec: str) -> StreamStats:
    return await stream(port, CHAT, {"prompt": spec}, token=TOKEN)


async def cpu_per_1000(
    proc: Process, answer: Callable[[str], Awaitable[int]], repeats: int, interval: float, streams: int = 10, chunks: int = 1000
) -> tuple[list[float], list[float]]:
    """(server CPU ms, this client's CPU ms) per 1,000 relayed chunks: `streams` concurrent answers
    of `chunks` chunks, `interval` s apart."""
    server, client = [], []
    await answer("chunks=50 interval=0")  # warm
    for _ in range(repeats):
        before, mine = proc.cpu_seconds(), time.process_time()
        got = await asyncio.gather(*(answer(f"chunks={chunks} interval={interval}") for _ in range(streams)))
        used, client_used = proc.cpu_seconds() - before, time.process_time() - mine
        relayed = sum(got)
        assert relayed == streams * chunks, f"{relayed} of {streams * chunks} chunks arrived"
        server.append(used * 1000 / (relayed / 1000))
        client.append(client_used * 1000 / (relayed / 1000))
    return server, client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    rounds = 20 if args.quick else 50

    with fake_provider() as fake_port, jupyter_server(server_toml(fake_port, "lean")) as (proc, port):
        via = sdk(f"http://127.0.0.1:{port}/cellmage/v1")
        direct = sdk(f"http://127.0.0.1:{fake_port}/v1")

        async def via_sdk(spec: str) -> int:
            return (await sdk_answer(via, spec))[1]

        async def direct_sdk(spec: str) -> int:
            return (await sdk_answer(direct, spec))[1]

        async def v1_lean(spec: str) -> int:
            stats = await lean_v1(port, spec)
            assert not stats.error, stats.error
            return stats.chunks

        async def chat_lean(spec: str) -> int:
            stats = await lean_chat(port, spec)
            assert not stats.error, stats.error
            return stats.chunks

        async def lean_ttft() -> tuple[list[float], list[float], list[float]]:
            """The same with the lean client: cellmage/v1, the chat endpoint, direct (ms)."""
            v1, chat, straight = [], [], []
            body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "chunks=3 interval=0"}]}
            for i in range(rounds + 5):
                a = await lean_v1(port, "chunks=3 interval=0")
                b = await lean_chat(port, "chunks=3 interval=0")
                c = await stream(fake_port, "/v1/chat/completions", body)
                if i >= 5:
                    for into, s in ((v1, a), (chat, b), (straight, c)):
                        into.append((s.first_text - s.sent) * 1000)
            return v1, chat, straight

        async def run() -> dict[str, list[float]]:
            out: dict[str, list[float]] = {}
            out["ttft_via"], out["ttft_direct"] = await ttft(via, direct, rounds)
            out["lean_v1"], out["lean_chat"], out["lean_direct"] = await lean_ttft()
            print("measuring: CPU per 1,000 paced chunks...", file=sys.stderr)
            out["v1_sdk_server"], out["v1_sdk_client"] = await cpu_per_1000(proc, via_sdk, repeats, 0.002)
            _, out["direct_sdk_client"] = await cpu_per_1000(proc, direct_sdk, repeats, 0.002)
            # The relay ratio: v1 and chat endpoint, same lean client, alternating repeats.
            out["v1_lean"], out["chat_lean"] = [], []
            for _ in range(repeats):
                out["v1_lean"] += (await cpu_per_1000(proc, v1_lean, 1, 0.002))[0]
                out["chat_lean"] += (await cpu_per_1000(proc, chat_lean, 1, 0.002))[0]
            out["v1_burst"], _ = await cpu_per_1000(proc, v1_lean, repeats, 0)
            out["chat_burst"], _ = await cpu_per_1000(proc, chat_lean, repeats, 0)
            return out

        print("measuring: time to first token with the openai SDK...", file=sys.stderr)
        m = asyncio.run(run())

    med = statistics.median
    ratio = med(m["v1_lean"]) / med(m["chat_lean"])
    burst_ratio = med(m["v1_burst"]) / med(m["chat_burst"])
    rows = [
        ("time to first token, openai SDK through cellmage/v1 (warm)", summary(m["ttft_via"], "ms", 2), "—"),
        ("same, the SDK direct to the provider", summary(m["ttft_direct"], "ms", 2), "—"),
        ("added time to first token (p50 through − p50 direct)", f"{med(m['ttft_via']) - med(m['ttft_direct']):.2f} ms", "≤ 3 ms"),
        ("time to first token, lean client: cellmage/v1", summary(m["lean_v1"], "ms", 2), "—"),
        ("same, chat endpoint cellmage/api/chat", summary(m["lean_chat"], "ms", 2), "—"),
        ("same, direct to the provider", summary(m["lean_direct"], "ms", 2), "—"),
        (
            "added time to first token, lean client: cellmage/v1 | chat endpoint",
            f"{med(m['lean_v1']) - med(m['lean_direct']):.2f} ms | {med(m['lean_chat']) - med(m['lean_direct']):.2f} ms",
            "≤ 3 ms",
        ),
        ("server CPU per 1,000 paced chunks, cellmage/v1, SDK client", summary(m["v1_sdk_server"], "ms"), "reported"),
        ("client (SDK) CPU per 1,000 paced chunks, through cellmage/v1", summary(m["v1_sdk_client"], "ms"), "reported"),
        ("same, the SDK direct to the provider", summary(m["direct_sdk_client"], "ms"), "reported"),
        ("server CPU per 1,000 paced chunks, cellmage/v1, lean client", summary(m["v1_lean"], "ms"), "reported"),
        ("same, chat endpoint cellmage/api/chat (lean client)", summary(m["chat_lean"], "ms"), "reported"),
        ("cellmage/v1 ÷ chat endpoint, paced (same run)", f"{ratio:.2f}×", "≤ 1.3×"),
        ("server CPU per 1,000 chunks back to back, cellmage/v1", summary(m["v1_burst"], "ms"), "reported"),
        ("same, chat endpoint", summary(m["chat_burst"], "ms"), "reported"),
        ("cellmage/v1 ÷ chat endpoint, back to back", f"{burst_ratio:.2f}×", "reported"),
    ]
    print_table(rows)


if __name__ == "__main__":
    main()
