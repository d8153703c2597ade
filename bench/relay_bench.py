"""Benchmark of the relay: real Jupyter servers with the extension, a fake provider in its own
process, and a lean client, all on 127.0.0.1. Prints one table; every figure is measured in this
run, side by side, repeated, as median and min-max.

    python bench/relay_bench.py            # the full run (about six minutes)
    python bench/relay_bench.py --quick    # fewer repeats and levels, to try it out
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sse_client import StreamStats, stream  # noqa: E402

TOKEN = "bench-token"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
            with urllib.request.urlopen(request, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {deadline_s} s")


class Process:
    """A child process, stopped (terminate, then kill) when the benchmark leaves it."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, stdout: int | None = None) -> None:
        self.proc = subprocess.Popen(args, env=env, stdout=stdout, stderr=subprocess.DEVNULL, text=True)
        self.runtime_dir = ""  # a Jupyter server's: where its kernels' connection files are

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def fake_provider():
    proc = Process([sys.executable, str(Path(__file__).parent / "fake_provider.py")], stdout=subprocess.PIPE)
    try:
        port = int(proc.proc.stdout.readline())
        yield port
    finally:
        proc.stop()


def server_toml(fake_port: int, path: str) -> str:
    provider = 'provider = "litellm"\n' if path == "litellm" else ""
    return f"""
default_model = "bench"
[models.bench]
model = "openai/bench"
api_base = "http://127.0.0.1:{fake_port}/v1"
api_key = "sk-bench-not-a-key"
{provider}
[limits]
max_streams_per_user = 100000
max_tokens = 100000
[timeouts]
first_token = 60
chunk_gap = 60
total = 600
"""


def settle(proc: Process, deadline_s: float = 40, after_s: float = 11) -> None:
    """Wait until a fresh server's start-up work is over (other extensions scan packages in
    threads for seconds; the extension freezes its start-up heap 10 s after start): at least
    ``after_s`` seconds, then until a second passes with under 2% of a core used."""
    start = time.monotonic()
    time.sleep(after_s)
    while time.monotonic() - start < deadline_s:
        before = proc.cpu_seconds()
        time.sleep(1.0)
        if proc.cpu_seconds() - before < 0.02:
            return


@contextmanager
def jupyter_server(toml: str | None, *, extension: bool = True, wait: bool = True, settled: bool = False):
    """A `jupyter server` process with (or without) the extension; yields (process, port);
    ``settled``: once its start-up work is over (see settle)."""
    with tempfile.TemporaryDirectory(prefix="cellmage-bench-") as tmp:
        port = _free_port()
        config = Path(tmp) / "jupyter_bench_config.py"
        config.write_text(
            f"c.ServerApp.port = {port}\nc.ServerApp.port_retries = 0\nc.ServerApp.open_browser = False\n"
            f"c.ServerApp.allow_root = True\nc.ServerApp.root_dir = {tmp!r}\nc.IdentityProvider.token = {TOKEN!r}\n"
            f"c.ServerApp.jpserver_extensions = {{'cellmage_server': {extension}}}\n"
            "c.Application.log_level = 'WARN'\n"
        )
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "JUPYTER_RUNTIME_DIR": tmp}
        if toml is not None:
            # The run's conversations and ledger stay in its own directory.
            toml = f'history_db = "{Path(tmp) / "conversations.sqlite3"}"\n' + toml
            (Path(tmp) / "cellmage.toml").write_text(toml)
            env["CELLMAGE_CONFIG"] = str(Path(tmp) / "cellmage.toml")
        proc = Process([sys.executable, "-m", "jupyter", "server", f"--config={config}"], env=env)
        proc.runtime_dir = tmp  # (its kernels' connection files are there)
        try:
            if wait:
                _wait_http(f"http://127.0.0.1:{port}/api/status")
            if settled:
                settle(proc)
            yield proc, port
        finally:
            proc.stop()


CHAT = "/cellmage/api/chat"


async def via_server(port: int, spec: str, **kwargs) -> StreamStats:
    return await stream(port, CHAT, {"prompt": spec}, token=TOKEN, **kwargs)


async def direct(fake_port: int, spec: str) -> StreamStats:
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": spec}]}
    return await stream(fake_port, "/v1/chat/completions", body)


def summary(values: list[float], unit: str, digits: int = 1) -> str:
    if not values:
        return "n/a"
    fmt = f"{{:.{digits}f}}"
    return f"{fmt.format(statistics.median(values))} {unit} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def print_table(rows: list[tuple[str, str, str]]) -> None:
    """The benchmarks' one output: figure, measured value, goal."""
    header = "measured: median (min–max)"
    width = max(len(r[0]) for r in rows)
    value_width = max(len(header), *(len(r[1]) for r in rows))
    print(f"\n{'figure':<{width}}  {header:<{value_width}}  goal")
    print(f"{'-' * width}  {'-' * value_width}  ----")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {goal}")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


# --- figures ------------------------------------------------------------------------------------


async def cpu_per_1000_chunks(
    proc: Process, port: int, repeats: int, interval: float, streams: int = 10, chunks: int = 1000
) -> list[float]:
    """Server CPU per 1,000 relayed chunks: `streams` concurrent answers of `chunks` chunks,
    `interval` s apart (paced: each chunk arrives on its own; 0: back to back, as fast as sent)."""
    results = []
    await via_server(port, "chunks=50 interval=0")  # warm
    for _ in range(repeats):
        before = proc.cpu_seconds()
        spec = f"chunks={chunks} interval={interval}"
        stats = await asyncio.gather(*(via_server(port, spec) for _ in range(streams)))
        used = proc.cpu_seconds() - before
        relayed = sum(s.chunks for s in stats)
        assert not any(s.error for s in stats), [s.error for s in stats if s.error][:3]
        results.append(used * 1000 / (relayed / 1000))
    return results


async def direct_cpu_per_1000_chunks(fake_port: int, repeats: int, interval: float, streams: int = 10, chunks: int = 1000) -> list[float]:
    """This client's own CPU per 1,000 chunks read straight from the provider: the same work
    (read a stream, parse its chunks) with no server between, the floor the server is compared with."""
    results = []
    for _ in range(repeats):
        before = time.process_time()
        stats = await asyncio.gather(*(direct(fake_port, f"chunks={chunks} interval={interval}") for _ in range(streams)))
        used = time.process_time() - before
        results.append(used * 1000 / (sum(s.chunks for s in stats) / 1000))
    return results


def gaps(stats: list[StreamStats]) -> list[float]:
    """The times between consecutive frames of text each client got (ms)."""
    return [(b - a) * 1000 for s in stats for a, b in zip(s.arrivals, s.arrivals[1:])]


async def paced_gaps(port: int, fake_port: int, n: int, repeats: int) -> tuple[list[float], list[float], int]:
    """p99 of the gaps between deltas at ``n`` concurrent paced answers (200 chunks 20 ms apart),
    through the server and straight from the provider, one repeat after the other; and errors."""
    through, straight, errors = [], [], 0
    for _ in range(repeats):
        for via, into in ((True, through), (False, straight)):

            async def one(i: int, via: bool = via) -> StreamStats:
                await asyncio.sleep(0.5 * i / n)  # users do not all press the button in the same millisecond
                spec = "chunks=200 interval=0.02"
                return await (via_server(port, spec, timeout=60) if via else direct(fake_port, spec))

            stats = await asyncio.gather(*(one(i) for i in range(n)))
            errors += sum(1 for s in stats if s.error or s.chunks != 200)
            into.append(p99(gaps(stats)))
    return through, straight, errors


async def sdk_added_ttft(port: int, fake_port: int, rounds: int, key: str = TOKEN) -> tuple[list[float], list[float]]:
    """Time to first token with the openai SDK through cellmage/v1 (with ``key``: the Jupyter token,
    or the scoped key a kernel holds) and straight to the provider (ms)."""
    from openai_bench import sdk, ttft

    via = sdk(f"http://127.0.0.1:{port}/cellmage/v1", key)
    return await ttft(via, sdk(f"http://127.0.0.1:{fake_port}/v1"), rounds)


def kernel_key(proc: Process, port: int) -> str:
    """The ``OPENAI_API_KEY`` a kernel of this server holds (the scoped key): a kernel started
    through the REST API is asked for it, then shut down."""
    from jupyter_client import BlockingKernelClient

    def api(method: str, path: str, body: dict | None = None) -> dict | None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body is not None else None,
            method=method, headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return json.loads(raw) if raw else None

    kernel = api("POST", "/api/kernels", {"name": "python3"})
    assert kernel is not None
    out: list[dict] = []
    try:
        connection_file = Path(proc.runtime_dir) / f"kernel-{kernel['id']}.json"
        deadline = time.monotonic() + 30
        while not connection_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        client = BlockingKernelClient(connection_file=str(connection_file))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive('import os; print(os.environ["OPENAI_API_KEY"], end="")', timeout=60, output_hook=out.append)
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            client.stop_channels()
    finally:
        api("DELETE", f"/api/kernels/{kernel['id']}")
    return "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream")


async def added_ttft(port: int, fake_port: int, rounds: int) -> tuple[list[float], list[float]]:
    """Time to first token through the server and directly from the provider, interleaved (ms)."""
    via, straight = [], []
    for i in range(rounds + 5):
        a = await via_server(port, "chunks=3 interval=0")
        b = await direct(fake_port, "chunks=3 interval=0")
        if i >= 5:  # warm-up rounds are not counted
            via.append((a.first_text - a.sent) * 1000)
            straight.append((b.first_text - b.sent) * 1000)
    return via, straight


def _notebook_of_20_cells() -> dict:
    """A notebook as an analysis looks: 20 code cells of pandas-style code with text outputs (one
    a traceback), and the cell that asks."""
    cells = []
    for i in range(20):
        source = (
            f"# step {i}: load, clean and summarise\nimport pandas as pd\n"
            f"frame_{i} = pd.read_csv('data/part_{i}.csv', parse_dates=['when'])\n"
            f"frame_{i} = frame_{i}.dropna(subset=['value']).query('value > 0')\n"
            f"summary_{i} = frame_{i}.groupby('region')['value'].agg(['mean', 'std', 'count'])\nsummary_{i}"
        )
        table = "\n".join(f"region_{r}  {r * 1.5 + i:.3f}  {r * 0.2:.3f}  {100 + r}" for r in range(12))
        outputs = [{"output_type": "execute_result", "execution_count": i + 1, "metadata": {},
                    "data": {"text/plain": "          mean     std  count\nregion\n" + table}}]
        if i == 19:
            outputs = [{"output_type": "error", "ename": "KeyError", "evalue": "'value'",
                        "traceback": ["KeyError Traceback (most recent call last)", "Cell In[20], line 3",
                                      "KeyError: 'value'"]}]
        cells.append({"cell_type": "code", "id": f"cell-{i:02d}", "metadata": {}, "execution_count": i + 1,
                      "source": source, "outputs": outputs})
    cells.append({"cell_type": "code", "id": "ask", "metadata": {}, "execution_count": None, "source": "", "outputs": []})
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


async def context_added_ttft(port: int, rounds: int) -> tuple[list[float], list[float], str | None]:
    """Time to first token for the same ask with and without ``--cells 20`` (the server reads the
    20 cells from the saved notebook), interleaved (ms). The third value says why there is none."""
    body = json.dumps({"type": "notebook", "content": _notebook_of_20_cells()}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/contents/analysis.ipynb", data=body, method="PUT",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass
    ask = {"prompt": "chunks=3 interval=0", "conversation": "analysis.ipynb", "cell_id": "ask"}
    plain, with_cells = [], []
    for i in range(rounds + 5):
        a = await stream(port, CHAT, ask, token=TOKEN)
        b = await stream(port, CHAT, {**ask, "context": {"cells": 20}}, token=TOKEN)
        if a.error or b.error:
            return [], [], f"not measured: {a.error or b.error} (a server without context)"
        if i >= 5:
            plain.append((a.first_text - a.sent) * 1000)
            with_cells.append((b.first_text - b.sent) * 1000)
    return plain, with_cells, None


async def disconnect_latency(port: int, fake_port: int, rounds: int) -> list[float]:
    """Client hangs up mid-answer -> the provider sees its connection closed (ms)."""
    ids, closed = [], {}
    for _ in range(rounds):
        rid = uuid.uuid4().hex
        stats = await via_server(port, f"chunks=2000 interval=0.005 id={rid}", stop_after=5)
        ids.append(rid)
        closed[rid] = stats.closed_at
    await asyncio.sleep(0.5)
    with urllib.request.urlopen(f"http://127.0.0.1:{fake_port}/hangups", timeout=5) as r:
        hangups = json.load(r)
    missing = [rid for rid in ids if rid not in hangups]
    if missing:
        raise RuntimeError(f"{len(missing)} of {rounds} upstream requests were never closed")
    return [(hangups[rid] - closed[rid]) * 1000 for rid in ids]


async def paced_capacity(port: int, levels: list[int], repeats: int) -> list[tuple[int, float, int]]:
    """(streams, median over repeats of the p99 added delay in ms, errors) for concurrent answers
    of 200 chunks 20 ms apart; the added delay of a chunk is its arrival minus the fake's send."""
    rows = []
    for n in levels:

        async def one(i: int, n: int = n) -> StreamStats:
            await asyncio.sleep(0.5 * i / n)  # users do not all press the button in the same millisecond
            return await via_server(port, "chunks=200 interval=0.02", timeout=60)

        p99s, errors = [], 0
        for _ in range(repeats):
            stats = await asyncio.gather(*(one(i) for i in range(n)))
            delays = [d for s in stats for d in s.delays]
            errors += sum(1 for s in stats if s.error or s.chunks != 200)
            p99s.append(p99(delays) * 1000 if delays else float("inf"))
        rows.append((n, statistics.median(p99s), errors))
        if errors or statistics.median(p99s) > 200:
            break  # past the knee: higher levels only take longer to fail
    return rows


def held(rows: list[tuple[int, float, int]]) -> int:
    """The most streams held with p99 ≤ 50 ms and no error, at that level and every level below."""
    best = 0
    for n, p, e in rows:
        if p > 50 or e:
            break
        best = n
    return best


def first_request_ttft(fake_port: int, rounds: int) -> list[float]:
    """A fresh server, the moment it answers: time to first token of its first answer (ms)."""
    results = []
    for _ in range(rounds):
        with jupyter_server(server_toml(fake_port, "lean")) as (_, port):
            stats = asyncio.run(via_server(port, "chunks=3 interval=0"))
            results.append((stats.first_text - stats.sent) * 1000)
    return results


def rss_added(fake_port: int, rounds: int) -> list[float]:
    """RSS of a warmed server with the extension (OpenAI-compatible models only) minus one without."""
    results = []
    for _ in range(rounds):
        with jupyter_server(server_toml(fake_port, "lean")) as (with_ext, port), jupyter_server(
            None, extension=False
        ) as (without, _):

            async def warm() -> None:
                for _ in range(20):
                    await via_server(port, "chunks=50 interval=0")

            asyncio.run(warm())
            time.sleep(1.0)
            results.append(with_ext.rss_mb() - without.rss_mb())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and levels")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    rounds = 20 if args.quick else 50
    rows: list[tuple[str, str, str]] = []

    with fake_provider() as fake_port:
        print("measuring: CPU, time to first token, gaps, disconnect, capacity (lean path)...", file=sys.stderr)
        with jupyter_server(server_toml(fake_port, "lean"), settled=True) as (proc, port):
            lean_cpu = asyncio.run(cpu_per_1000_chunks(proc, port, repeats, 0.002))
            direct_cpu = asyncio.run(direct_cpu_per_1000_chunks(fake_port, repeats, 0.002))
            lean_burst = asyncio.run(cpu_per_1000_chunks(proc, port, repeats, 0))
            via, straight = asyncio.run(added_ttft(port, fake_port, rounds))
            sdk_via, sdk_straight = asyncio.run(sdk_added_ttft(port, fake_port, rounds))
            scoped_via, scoped_straight = asyncio.run(sdk_added_ttft(port, fake_port, rounds, kernel_key(proc, port)))
            no_context, with_context, context_missing = asyncio.run(context_added_ttft(port, rounds))
            gap_via, gap_direct, gap_errors = asyncio.run(paced_gaps(port, fake_port, 200, 1 if args.quick else 3))
            lean_cut = asyncio.run(disconnect_latency(port, fake_port, 5 if args.quick else 20))
            lean_cap = asyncio.run(
                paced_capacity(port, [100, 200] if args.quick else [100, 200, 300, 400, 500], 1 if args.quick else 3)
            )
        print("measuring: the same on the litellm path...", file=sys.stderr)
        with jupyter_server(server_toml(fake_port, "litellm"), settled=True) as (proc, port):
            asyncio.run(via_server(port, "chunks=3 interval=0", timeout=120))  # waits for the import
            litellm_cpu = asyncio.run(cpu_per_1000_chunks(proc, port, max(2, repeats // 2), 0.002))
            litellm_direct = asyncio.run(direct_cpu_per_1000_chunks(fake_port, max(2, repeats // 2), 0.002))
            litellm_burst = asyncio.run(cpu_per_1000_chunks(proc, port, max(2, repeats // 2), 0))
            litellm_cut = asyncio.run(disconnect_latency(port, fake_port, 5 if args.quick else 20))
            litellm_cap = asyncio.run(
                paced_capacity(port, [10, 20, 30] if args.quick else [10, 20, 30, 40, 60], 1 if args.quick else 3)
            )
        print("measuring: first answer of a fresh server, RSS...", file=sys.stderr)
        first = first_request_ttft(fake_port, 2 if args.quick else 3)
        rss = rss_added(fake_port, 1 if args.quick else 3)

    med = statistics.median
    ratio = med(litellm_cpu) / med(lean_cpu)
    burst_ratio = med(litellm_burst) / med(lean_burst)
    added = [v - s for v, s in zip(sorted(via), sorted(straight))]
    capacity, litellm_capacity = held(lean_cap), held(litellm_cap)

    rows += [
        ("server CPU per 1,000 relayed chunks, lean, paced (1 chunk per read)", summary(lean_cpu, "ms"), "reported"),
        ("same, a lean client reading the provider directly", summary(direct_cpu, "ms"), "reported"),
        ("server ÷ direct client, lean, paced (same run)", f"{med(lean_cpu) / med(direct_cpu):.2f}×", "reported"),
        ("server CPU per 1,000 relayed chunks, litellm path, paced", summary(litellm_cpu, "ms"), "reported"),
        ("server ÷ direct client, litellm, paced (same run)", f"{med(litellm_cpu) / med(litellm_direct):.2f}×", "reported"),
        ("litellm ÷ lean, paced (same run)", f"{ratio:.1f}×", "≥ 10×"),
        ("server CPU per 1,000 relayed chunks, lean, back to back", summary(lean_burst, "ms"), "≤ 50 ms"),
        ("same, litellm path", summary(litellm_burst, "ms"), "reported"),
        ("litellm ÷ lean, back to back (same run)", f"{burst_ratio:.1f}×", "≥ 10×"),
        (
            "p99 gap between deltas, 200 paced streams (20 ms apart), through the server",
            summary(gap_via, "ms") + (f", {gap_errors} errors" if gap_errors else ""),
            "≤ 70 ms",
        ),
        ("same, the 200 streams read directly from the provider", summary(gap_direct, "ms"), "reported"),
        ("time to first token through the server (warm)", summary(via, "ms", 2), "—"),
        ("same, direct from the provider", summary(straight, "ms", 2), "—"),
        (
            "added time to first token, lean client (p50 through − p50 direct)",
            f"{med(via) - med(straight):.2f} ms (pairs by rank {min(added):.2f}–{max(added):.2f})",
            "≤ 3 ms",
        ),
        (
            "added time to first token, openai SDK through cellmage/v1, the kernel's scoped key",
            f"{med(scoped_via) - med(scoped_straight):.2f} ms (through {med(scoped_via):.2f}, direct {med(scoped_straight):.2f})",
            "< 3 ms",
        ),
        (
            "same, the Jupyter token as the SDK's key",
            f"{med(sdk_via) - med(sdk_straight):.2f} ms (through {med(sdk_via):.2f}, direct {med(sdk_straight):.2f})",
            "< 3 ms",
        ),
        (
            "added time to first token, 20 cells of context (--cells 20) vs none",
            context_missing
            or f"{med(with_context) - med(no_context):.2f} ms (with {med(with_context):.2f}, without {med(no_context):.2f})",
            "a few ms",
        ),
        ("time to first token, first request of a fresh server", summary(first, "ms"), "≤ 300 ms"),
        ("RSS added by the extension (OpenAI-compatible models only)", summary(rss, "MB"), "≤ 40 MB"),
        (
            "paced streams (200 × 20 ms) held at p99 added delay ≤ 50 ms, 0 errors, lean",
            f"{capacity}  [" + ", ".join(f"{n}: p99 {p:.1f} ms, {e} err" for n, p, e in lean_cap) + "]",
            "≥ 200",
        ),
        (
            "same, litellm path",
            f"{litellm_capacity}  [" + ", ".join(f"{n}: p99 {p:.1f} ms, {e} err" for n, p, e in litellm_cap) + "]",
            "reported",
        ),
        ("client disconnect → provider connection closed, lean", summary(lean_cut, "ms"), "≤ 50 ms"),
        ("same, litellm path", summary(litellm_cut, "ms"), "≤ 50 ms"),
    ]
    print_table(rows)


if __name__ == "__main__":
    main()
