"""Benchmark of an answer's cost under real-time collaboration (jupyter-collaboration): how many
bytes of collaboration updates one toolbar answer makes a watching collaborator receive and the
server's update store (the ystore) keep, per byte of answer, at two pacings of the same answer.

- A real JupyterLab with collaboration on (ui-tests/jupyter_server_test_config.py with
  CELLMAGE_UI_COLLAB=1; its fake OpenAI-compatible provider, tests/fake_upstream.py, streams the
  answer), its ystore (SQLiteYStore) in a temporary file.
- The ASKER: the lab plugin in Chromium (bench/collab/asker.js, Playwright), which opens a notebook
  of one code cell (a prompt) and runs `cellmage:run-cell` on it.
- The WATCHER: a Python collaborator in the same room (bench/collab_watch.py: a session, the room's
  websocket, synced with pycrdt), which counts the raw bytes of every websocket message it gets.
- The answer: ~6 KB of realistic Markdown (headings, paragraphs, lists, a table, fenced code in
  three languages, a few non-ASCII characters), in word-sized chunks, streamed as fast as the fake
  sends, and at ~300 bytes/s (~20 s).

Figures, per pacing (median and min-max over repeats; ``--quick``: one repeat):

- answer bytes: UTF-8 bytes of the text the provider streamed (the chunks joined);
- watcher bytes: every websocket message the watcher received from the moment the asker runs the
  command until the stored answer reached it, plus SETTLE seconds (the flag and the save that
  follow); also broken down into the placeholder's message, the stored answer's message, and
  what came while the answer streamed (between the two);
- ystore: the database file's size (with its -wal/-journal, if any) before the command and
  SETTLE seconds after the stored answer reached the watcher, and the bytes of the rows added
  (path, update, metadata, 8-byte timestamp);
- the asker page's own upload: payload bytes of the frames it sent on the notebook's collaboration
  websocket over the same window (DevTools' Network.webSocketFrameSent, via Playwright).

    python bench/collab_bench.py [--quick]

Needs what `bash .ci/run` installs (jupyter-collaboration, ui-tests' node_modules, Chromium). Runs its
own JupyterLab on port 8897 and fake provider on 8898 (CELLMAGE_COLLAB_BENCH_PORT,
CELLMAGE_COLLAB_BENCH_FAKE_PORT), which must be free.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from collab_watch import Watcher  # noqa: E402
from relay_bench import print_table, summary  # noqa: E402

SETTLE = 2.5  # seconds after the stored answer reached the watcher (the server saves after 1 s)
SLOW_RATE = 300  # bytes per second
# The fake provider's pause between chunks overshoots (a timer's lateness, then writing and flushing
# the chunk): seen 1 ms a chunk on an idle machine, 4 ms while browser tests ran beside. The achieved
# pace is in the table.
FAKE_OVERSHOOT = 0.002  # seconds
ANSWER_SIZE = 6000  # bytes, at least
GOAL = 4  # bytes per answer byte


# --- the answer ---------------------------------------------------------------------------------


def markdown_answer(size: int = ANSWER_SIZE) -> str:
    """A deterministic Markdown answer of at least `size` bytes, as a model writes one."""
    topics = [
        "Loading the raw sensor exports",
        "Cleaning timestamps and time zones",
        "Handling missing readings",
        "Detecting outliers robustly",
        "Aggregating per station and per day",
        "Testing the pipeline",
    ]
    prose = [
        "The slowest step in your notebook is not the arithmetic but the repeated parsing: every call "
        "to `pd.read_csv` re-reads the same 40 files and infers their types again. Parse once, store "
        "the result as Parquet, and later cells load it in a fraction of a second.",
        "Keep the raw data untouched and derive everything else from it. When a step turns out to be "
        "wrong — a time zone, a unit, a sensor mounted upside down — you fix the step and run it "
        "again, instead of trying to undo an edit in place.",
        "Prefer the median and the median absolute deviation over the mean when you look for spikes: "
        "a single broken sensor reporting 9999 moves the mean a lot and the median not at all. A point "
        "is suspicious when |x − median| > 3.5 · MAD, which is the rule the cell below applies.",
        "Vectorised operations beat explicit loops by two orders of magnitude here. The loop over "
        "`df.iterrows()` does one Python call per row; the same logic as a boolean mask runs in C "
        "over the whole column, so 2.4 million rows take two seconds instead of four minutes.",
    ]
    items = [
        "**Schema first**: declare the column types in `dtype=` so a stray string does not turn a column into `object`.",
        "**Time zones**: store UTC, convert only for display with `tz_convert(\"Europe/Zürich\")`.",
        "**Gaps**: forward-fill at most 5 minutes; longer gaps stay `NaN` and are reported.",
        "**Outliers**: flag, do not delete; keep a boolean `suspect` column next to the reading.",
        "**Idempotence**: running a step twice gives the same files, byte for byte.",
    ]
    code = {
        "python": [
            "import pandas as pd",
            "",
            "def robust_flags(df: pd.DataFrame, column: str, k: float = 3.5) -> pd.Series:",
            '    """True where a reading is far from its station\'s median."""',
            '    grouped = df.groupby("station_id", observed=True)[column]',
            '    median = grouped.transform("median")',
            "    mad = grouped.transform(lambda s: (s - s.median()).abs().median())",
            "    return (df[column] - median).abs() > k * mad",
        ],
        "javascript": [
            "const rows = await fetch('/api/daily').then(r => r.json());",
            "const byStation = Object.groupBy(rows, r => r.station_id);",
            "for (const [id, days] of Object.entries(byStation)) {",
            "  chart.addSeries(id, days.map(d => [d.day, d.pm25_median]));",
            "}",
        ],
        "bash": [
            "python -m pipeline.ingest --since 2024-01-01 raw/ interim/",
            "python -m pipeline.clean interim/ processed/ && pytest -q tests/",
        ],
    }
    languages = list(code)
    parts = ["Here is a walk through the pipeline, step by step, with the code for each part.\n"]
    i = 0
    while len("\n".join(parts).encode()) < size:
        topic = topics[i % len(topics)]
        parts.append(f"## {i + 1}. {topic}\n")
        parts.append(prose[i % len(prose)] + "\n")
        parts.append("\n".join(f"- {items[(i + j) % len(items)]}" for j in range(3)) + "\n")
        if i % 2 == 0:
            lang = languages[(i // 2) % len(languages)]
            parts.append(f"```{lang}\n" + "\n".join(code[lang]) + "\n```\n")
        else:
            parts.append(
                "| column | type | missing |\n|---|---|---|\n"
                "| `station_id` | category | 0 |\n| `ts` | datetime64[ns, UTC] | 0 |\n| `pm25` | float32 | 6.1 % |\n"
            )
        parts.append(prose[(i + 1) % len(prose)] + "\n")
        i += 1
    parts.append("### Summary\n\n1. Parse once, keep Parquet.\n2. Flag outliers with the MAD rule.\n3. Test every step.\n")
    return "\n".join(parts)


def chunked(text: str) -> list[str]:
    """Word-sized chunks (each with the whitespace before it), as a model streams tokens."""
    return re.findall(r"\s*\S+|\s+$", text)


# --- the processes ------------------------------------------------------------------------------


def free(port: int) -> bool:
    """Nothing listens on it (connections of a previous run in TIME-WAIT do not count: the server
    binds with SO_REUSEADDR too)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.1)


def http(method: str, url: str, data: Any = None) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return


# --- the ystore -----------------------------------------------------------------------------------


def ystore(db: Path) -> dict[str, int]:
    """The database's size on disk (with its -wal / -journal) and its rows."""
    files = sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-journal")) if p.exists())
    for attempt in range(50):
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
                rows, row_bytes = c.execute(
                    "SELECT count(*), coalesce(sum(length(path) + length(yupdate) + coalesce(length(metadata), 0) + 8), 0)"
                    " FROM yupdates"
                ).fetchone()
            return {"file": files, "rows": rows, "row_bytes": row_bytes}
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


# --- the asker ------------------------------------------------------------------------------------


class Asker:
    """bench/collab/asker.js: one JSON command a line in, one JSON event a line out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                sys.stderr.write(line.decode(errors="replace"))
                continue
            await self.events.put((time.monotonic(), event))
        await self.events.put((time.monotonic(), {"ev": "error", "message": "the asker exited"}))

    async def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, ev: str, timeout: float = 120) -> tuple[float, dict[str, Any]]:
        at, event = await asyncio.wait_for(self.events.get(), timeout)
        if event.get("ev") != ev:
            raise RuntimeError(f"the asker: expected {ev!r}, got {event}")
        return at, event


# --- one answer -------------------------------------------------------------------------------------


def notebook_content(prompt: str) -> dict[str, Any]:
    return {
        "cells": [{"cell_type": "code", "source": prompt, "metadata": {}, "outputs": [], "execution_count": None, "id": "asked"}],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


async def one_answer(
    base: str, fake: str, db: Path, asker: Asker, path: str, chunks: list[str], interval: float
) -> dict[str, Any]:
    """One answer into a new notebook; its figures."""
    await asyncio.to_thread(
        http, "PUT", f"{base}api/contents/{path}",
        {"type": "notebook", "format": "json", "content": notebook_content("Walk me through the sensor pipeline.")},
    )
    watcher = Watcher(base, path)
    await watcher.open()
    try:
        await asker.send(cmd="open", path=path, fileId=watcher.file_id)
        await asker.expect("opened")
        await asyncio.to_thread(http, "POST", f"{fake}reset")
        await asyncio.to_thread(http, "POST", f"{fake}script", [{"chunks": chunks, "interval": interval}])
        await asyncio.sleep(0.5)
        before = await asyncio.to_thread(ystore, db)

        await asker.send(cmd="ask")
        asking, _ = await asker.expect("asking")
        stored = await watcher.wait_for("stored", asking, 120)
        live = watcher.when("live", asking) or stored  # (one message could bring both)
        asked, _ = await asker.expect("asked", 30)
        await asyncio.sleep(SETTLE)
        end = stored.at + SETTLE
        after = await asyncio.to_thread(ystore, db)
        await asker.send(cmd="count")
        _, page = await asker.expect("count")

        window = watcher.since(asking, end)
        streaming = watcher.messages[live.index + 1 : stored.index]
        by_kind: dict[str, int] = {}
        for m in window:
            by_kind[m.kind] = by_kind.get(m.kind, 0) + m.size
        output = watcher.output() or {}
        meta = (output.get("metadata") or {}).get("cellmage", {})
        text = "".join(chunks)
        if meta.get("finish_reason") != "stop" or meta.get("error"):
            raise RuntimeError(f"{path}: the answer did not end well: {meta}")
        return {
            "answer_bytes": len(text.encode()),
            "streaming_s": stored.at - live.at,
            "watcher_bytes": sum(m.size for m in window),
            "watcher_messages": len(window),
            "messages": [(round(m.at - asking, 3), m.kind, m.size) for m in window],  # (s after the ask, kind, bytes)
            "by_kind": by_kind,
            "placeholder_bytes": live.size,
            "stored_bytes": stored.size,
            "streaming_bytes": sum(m.size for m in streaming),
            "streaming_messages": len(streaming),
            "ystore_before": before,
            "ystore_after": after,
            "page": page,
            "command_s": asked - asking,
        }
    finally:
        await asker.send(cmd="close")
        await asker.expect("closed")
        await watcher.close()


# --- the run --------------------------------------------------------------------------------------


async def run(repeats: int, port: int, fake_port: int, tmp: Path) -> dict[str, list[dict[str, Any]]]:
    base = f"http://127.0.0.1:{port}/"
    fake = f"http://127.0.0.1:{fake_port}/_fake/"
    root = tmp / "root"
    root.mkdir()
    db = tmp / "ystore.db"
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "CELLMAGE_UI_COLLAB": "1",
        "CELLMAGE_UI_PORT": str(port),
        "CELLMAGE_UI_FAKE_PORT": str(fake_port),
        "JUPYTERLAB_GALATA_ROOT_DIR": str(root),
    }
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(
        [
            "jupyter", "lab",
            "--config", str(ROOT / "ui-tests" / "jupyter_server_test_config.py"),
            f"--SQLiteYStore.db_path={db}",
            f"--BaseFileIdManager.db_path={tmp / 'fileid.db'}",
            f"--YDocExtension.session_store_path={tmp / 'collaboration_sessions.json'}",
        ],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    asker_proc = None
    try:
        await asyncio.to_thread(wait_http, f"{base}api/status")
        await asyncio.to_thread(wait_http, f"{fake}received")
        asker_proc = await asyncio.create_subprocess_exec(
            "node", str(BENCH / "collab" / "asker.js"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**env, "NODE_PATH": str(ROOT / "ui-tests" / "node_modules"), "CELLMAGE_COLLAB_URL": f"http://localhost:{port}"},
        )
        asker = Asker(asker_proc)
        await asker.expect("ready", 120)

        text = markdown_answer()
        chunks = chunked(text)
        assert "".join(chunks) == text
        slow_interval = max(0.0, len(text.encode()) / SLOW_RATE / len(chunks) - FAKE_OVERSHOOT)
        # Unmeasured: the page's first answer loads the renderer's code.
        await one_answer(base, fake, db, asker, "warm-up.ipynb", chunked(text[:400]), 0.0)
        results: dict[str, list[dict[str, Any]]] = {"fast": [], "paced": []}
        for r in range(repeats):
            for pacing, interval in (("fast", 0.0), ("paced", slow_interval)):
                result = await one_answer(base, fake, db, asker, f"{pacing}-{r}.ipynb", chunks, interval)
                result["chunks"] = len(chunks)
                result["interval_ms"] = interval * 1000
                results[pacing].append(result)
                print(
                    f"  {pacing} #{r + 1}: {result['answer_bytes']} B in {result['streaming_s']:.1f} s; watcher "
                    f"{result['watcher_bytes']} B ({result['watcher_messages']} messages); ystore file "
                    f"{result['ystore_before']['file']} → {result['ystore_after']['file']} B, rows "
                    f"+{result['ystore_after']['rows'] - result['ystore_before']['rows']}; page sent "
                    f"{result['page']['sent']} B",
                    flush=True,
                )
        await asker.send(cmd="quit")
        return results
    except BaseException:
        log.flush()
        sys.stderr.write("--- server log (tail) ---\n" + "".join((tmp / "server.log").read_text().splitlines(True)[-60:]))
        raise
    finally:
        if asker_proc is not None and asker_proc.returncode is None:
            try:
                await asyncio.wait_for(asker_proc.wait(), 10)
            except asyncio.TimeoutError:
                asker_proc.kill()
        stop(server)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    rows = []
    names = {"fast": "fast", "paced": f"~{SLOW_RATE} B/s"}
    for pacing, runs in results.items():
        name = names[pacing]
        answer = [r["answer_bytes"] for r in runs]

        def per_byte(values: list[float]) -> list[float]:
            return [v / a for v, a in zip(values, answer)]

        watcher = [r["watcher_bytes"] for r in runs]
        file_growth = [r["ystore_after"]["file"] - r["ystore_before"]["file"] for r in runs]
        row_growth = [r["ystore_after"]["row_bytes"] - r["ystore_before"]["row_bytes"] for r in runs]
        sent = [r["page"]["sent"] for r in runs]
        rows += [
            (f"[{name}] answer: UTF-8 bytes; streaming time (placeholder → stored answer)",
             f"{answer[0]:,} B; " + summary([r['streaming_s'] for r in runs], "s"), "—"),
            (f"[{name}] answer: achieved pace", summary([a / r["streaming_s"] for a, r in zip(answer, runs)], "B/s", 0), "—"),
            (f"[{name}] watcher: websocket bytes, ask → stored answer + {SETTLE} s", summary(watcher, "B", 0), "—"),
            (f"[{name}] watcher bytes ÷ answer byte", summary(per_byte(watcher), "×", 2), f"≤ {GOAL}×"),
            (f"[{name}]   of which the stored answer's message", summary(per_byte([r["stored_bytes"] for r in runs]), "×", 2), "—"),
            (f"[{name}]   of which while streaming (between placeholder and stored)",
             summary([r["streaming_bytes"] for r in runs], "B", 0) + f" in {statistics.median(r['streaming_messages'] for r in runs):.0f} msgs", "—"),
            (f"[{name}]   the placeholder's message", summary([r["placeholder_bytes"] for r in runs], "B", 0), "—"),
            (f"[{name}] ystore file: bytes before → after",
             f"{statistics.median(r['ystore_before']['file'] for r in runs):,.0f} → {statistics.median(r['ystore_after']['file'] for r in runs):,.0f} B", "—"),
            (f"[{name}] ystore file growth ÷ answer byte", summary(per_byte(file_growth), "×", 2), f"≤ {GOAL}×"),
            (f"[{name}] ystore rows added, their bytes ÷ answer byte",
             f"{statistics.median(r['ystore_after']['rows'] - r['ystore_before']['rows'] for r in runs):.0f} rows, "
             + summary(per_byte(row_growth), "×", 2), f"≤ {GOAL}×"),
            (f"[{name}] asker page's upload on the room websocket ÷ answer byte", summary(per_byte(sent), "×", 2), "—"),
            (f"[{name}] asker page's download on the room websocket ÷ answer byte", summary(per_byte([r["page"]["received"] for r in runs]), "×", 2), "—"),
        ]
    print_table(rows)
    for pacing, runs in results.items():
        kinds: dict[str, list[int]] = {}
        for r in runs:
            for k, v in r["by_kind"].items():
                kinds.setdefault(k, []).append(v)
        split = ", ".join(f"{k} {statistics.median(v):,.0f} B" for k, v in sorted(kinds.items()))
        print(
            f"({names[pacing]}: {runs[0]['chunks']} chunks, {runs[0]['interval_ms']:.1f} ms pause asked between them; "
            f"watcher bytes by message kind (median): {split})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat instead of three")
    parser.add_argument("--json", metavar="FILE", help="also write every run's figures to FILE")
    args = parser.parse_args()
    port = int(os.environ.get("CELLMAGE_COLLAB_BENCH_PORT", "8897"))
    fake_port = int(os.environ.get("CELLMAGE_COLLAB_BENCH_FAKE_PORT", "8898"))
    busy = [str(p) for p in (port, fake_port) if not free(p)]
    if busy:
        sys.exit(f"port(s) {', '.join(busy)} in use: free them or set CELLMAGE_COLLAB_BENCH_PORT / CELLMAGE_COLLAB_BENCH_FAKE_PORT")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cellmage-collab-bench-") as tmp:
        results = asyncio.run(run(1 if args.quick else 3, port, fake_port, Path(tmp)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    report(results)
    print(f"\n(whole run: {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
