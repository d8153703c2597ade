"""Benchmark of the %%llm magic: iopub traffic, %load_ext time and the cell's own overhead, in real
kernels started through a real `jupyter server` with the extension, answering from the tests'
fake provider on 127.0.0.1. Prints one table (median and min-max over repeats).

    python bench/magics_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import urllib.request
from pathlib import Path

from jupyter_client import BlockingKernelClient

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from relay_bench import TOKEN, jupyter_server, print_table, summary  # noqa: E402

from tests.fake_upstream import FakeUpstream, Script  # noqa: E402


def _api(port: int, method: str, path: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/{path}", method=method, data=b"{}" if method == "POST" else None,
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body else {}


class Kernel:
    """A kernel started through the server's REST API, driven over its own ZMQ channels."""

    def __init__(self, port: int, runtime_dir: str) -> None:
        self.port = port
        self.id = _api(port, "POST", "api/kernels")["id"]
        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(Path(runtime_dir) / f"kernel-{self.id}.json"))
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str) -> tuple[list[dict], int]:
        """Execute; return this cell's iopub messages and their size on the wire, in bytes."""
        msg_id = self.client.execute(code)
        messages, size = [], 0
        while True:
            msg = self.client.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            parts = {k: msg[k] for k in ("header", "parent_header", "metadata", "content")}
            size += sum(len(f) for f in self.client.session.serialize(parts | {"msg_type": msg["msg_type"]}))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return messages, size

    def stdout(self, messages: list[dict]) -> str:
        return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")

    def close(self) -> None:
        self.client.stop_channels()
        _api(self.port, "DELETE", f"api/kernels/{self.id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    repeats = 2 if parser.parse_args().quick else 3

    fake = FakeUpstream().start()
    toml = f'[models.fake]\nmodel = "openai/fake"\napi_base = "{fake.url}"\napi_key = "sk-bench-not-a-key"\n'
    traffic = {2000: ([], []), 4000: ([], [])}  # chunks -> (bytes, messages)
    load_ext, overhead = [], []
    try:
        with jupyter_server(toml) as (proc, port):
            runtime_dir = _runtime_dir(proc)
            for _ in range(repeats):
                kernel = Kernel(port, runtime_dir)
                try:
                    # %load_ext in a fresh kernel, timed inside it
                    messages, _ = kernel.run(
                        "import time as _t; _s = _t.perf_counter(); get_ipython().run_line_magic('load_ext', 'cellmage_server'); "
                        "print((_t.perf_counter() - _s) * 1000)"
                    )
                    load_ext.append(float(kernel.stdout(messages)))
                    for chunks in (2000, 4000):
                        # 4-character chunks 2 ms apart: 8 KB over ~4 s (and twice that)
                        fake.script(Script(chunks=["abc "] * chunks, interval=0.002))
                        messages, size = kernel.run("%%llm --stream\nwrite")
                        traffic[chunks][0].append(size / 1024)
                        traffic[chunks][1].append(len(messages))
                    # The cell's own overhead: its wall time minus the provider's streaming time
                    fake.script(Script(chunks=["abc "] * 500, interval=0.002))
                    messages, _ = kernel.run(
                        "_s = _t.perf_counter(); get_ipython().run_cell_magic('llm', '--stream', 'write'); "
                        "print('\\nWALL', _t.perf_counter() - _s)"
                    )
                    wall = float(kernel.stdout(messages).rsplit("WALL", 1)[1])
                    record = fake.received[-1]
                    overhead.append((wall - (record.finished - record.started)) * 1000)
                finally:
                    kernel.close()
    finally:
        fake.stop()

    ratio_bytes = statistics.median(traffic[4000][0]) / statistics.median(traffic[2000][0])
    rows = [
        ("iopub KB for a 2,000-chunk, 8 KB answer over ~4 s", summary(traffic[2000][0], "KB"), "≤ 24 KB (CellMage 0.9.7: 8.29 MB)"),
        ("iopub messages for the same", summary(traffic[2000][1], "", 0), "≤ 60 (CellMage 0.9.7: 4,004)"),
        ("iopub KB when the answer doubles (4,000 chunks, ~8 s)", summary(traffic[4000][0], "KB"), "—"),
        ("doubled ÷ single", f"{ratio_bytes:.2f}×", "≤ 2.2×"),
        ("%load_ext cellmage_server in a fresh kernel", summary(load_ext, "ms"), "≤ 150 ms (CellMage 0.9.7: 2.3 s)"),
        ("cell wall time − provider's streaming time", summary(overhead, "ms"), "≤ 50 ms"),
    ]
    print_table(rows)


def _runtime_dir(proc) -> str:
    for arg in proc.proc.args:
        if arg.startswith("--config="):
            return str(Path(arg.split("=", 1)[1]).parent)
    raise RuntimeError("no config argument")


if __name__ == "__main__":
    main()
