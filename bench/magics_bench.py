"""Benchmark of the %%llm magic: iopub traffic, %load_ext time and the cell's own overhead, in real
kernels started through a real `jupyter server` with the extension, answering from the tests'
fake provider on 127.0.0.1; and, in the same run, CellMage 0.9.7 in a virtual environment of its
own (installed once into the temp directory) against the same fake. Prints one table (median and
min-max over repeats).

    python bench/magics_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from jupyter_client import BlockingKernelClient, KernelManager
from jupyter_client.kernelspec import KernelSpecManager

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
        return run_cell(self.client, code)

    def stdout(self, messages: list[dict]) -> str:
        return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")

    def close(self) -> None:
        self.client.stop_channels()
        _api(self.port, "DELETE", f"api/kernels/{self.id}")


def run_cell(client: BlockingKernelClient, code: str) -> tuple[list[dict], int]:
    """Execute; return this cell's iopub messages and their size on the wire, in bytes."""
    msg_id = client.execute(code)
    messages, size = [], 0
    while True:
        msg = client.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        parts = {k: msg[k] for k in ("header", "parent_header", "metadata", "content")}
        size += sum(len(f) for f in client.session.serialize(parts | {"msg_type": msg["msg_type"]}))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages, size


def measure_cellmage(fake: FakeUpstream, repeats: int) -> dict[str, list[float]] | str:
    """The same figures for CellMage 0.9.7, in a virtual environment of its own; or why not."""
    venv = Path(tempfile.gettempdir()) / "cellmage-bench-venv-0.9.7"
    python = venv / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            subprocess.run(
                # its %%llm magic needs langchain-core to register at all
                [str(python), "-m", "pip", "install", "-q", "cellmage[langchain]==0.9.7", "ipykernel"],
                check=True, timeout=600, capture_output=True,
            )
        except (subprocess.SubprocessError, OSError) as e:
            return f"not installable here ({type(e).__name__})"
    figures: dict[str, list[float]] = {"kb": [], "messages": [], "load_ext": []}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", tmp, "--name", "cellmage097"],
                       check=True, capture_output=True, timeout=60)
        specs = KernelSpecManager(kernel_dirs=[str(Path(tmp) / "share" / "jupyter" / "kernels")])
        env = {**os.environ, "CELLMAGE_API_BASE": fake.url, "CELLMAGE_API_KEY": "sk-bench-not-a-key",
               "CELLMAGE_BASE_DIR": tmp, "CELLMAGE_DEFAULT_MODEL": "fake"}
        for _ in range(repeats):
            manager = KernelManager(kernel_name="cellmage097", kernel_spec_manager=specs)
            manager.start_kernel(env=env, cwd=tmp)
            client = manager.client()
            client.start_channels()
            try:
                client.wait_for_ready(timeout=60)
                messages, _ = run_cell(client, (
                    "import time as _t; _s = _t.perf_counter(); get_ipython().run_line_magic('load_ext', 'cellmage'); "
                    "print('LOAD', (_t.perf_counter() - _s) * 1000)"
                ))
                out = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
                figures["load_ext"].append(float(out.rsplit("LOAD", 1)[1].split()[0]))
                fake.script(Script(chunks=["abc "] * 2000, interval=0.002))
                # 0.9.7 streams by default and does not know --stream
                messages, size = run_cell(client, "%%llm\nwrite")
                figures["kb"].append(size / 1024)
                figures["messages"].append(len(messages))
            finally:
                client.stop_channels()
                manager.shutdown_kernel(now=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-cellmage", action="store_true", help="skip CellMage 0.9.7 (its own venv)")
    args = parser.parse_args()
    repeats = 2 if args.quick else 3

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
        cellmage = "skipped" if args.no_cellmage else measure_cellmage(fake, repeats)
    finally:
        fake.stop()

    ratio_bytes = statistics.median(traffic[4000][0]) / statistics.median(traffic[2000][0])
    if isinstance(cellmage, str):
        theirs = {"kb": f"CellMage 0.9.7: {cellmage}", "messages": "", "load_ext": ""}
    else:
        theirs = {
            "kb": f"CellMage 0.9.7 here: {summary(cellmage['kb'], 'KB', 0)}",
            "messages": f"CellMage 0.9.7 here: {summary(cellmage['messages'], '', 0)}",
            "load_ext": f"CellMage 0.9.7 here: {summary(cellmage['load_ext'], 'ms', 0)}",
        }
    rows = [
        ("iopub KB for a 2,000-chunk, 8 KB answer over ~4 s", summary(traffic[2000][0], "KB"), f"≤ 24 KB; {theirs['kb']}"),
        ("iopub messages for the same", summary(traffic[2000][1], "", 0), f"≤ 60; {theirs['messages']}"),
        ("iopub KB when the answer doubles (4,000 chunks, ~8 s)", summary(traffic[4000][0], "KB"), "—"),
        ("doubled ÷ single", f"{ratio_bytes:.2f}×", "≤ 2.2×"),
        ("%load_ext cellmage_server in a fresh kernel", summary(load_ext, "ms"), f"≤ 150 ms; {theirs['load_ext']}"),
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
