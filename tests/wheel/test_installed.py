"""The wheel installed in a fresh virtualenv with no Node on PATH (tests/wheel/venvs.sh): both
halves of the extension are there and enabled, and an answer streams through `jupyter server`
run from the installed package. Once with the newest JupyterLab, once with the oldest supported.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from httpx_sse import EventSource

from cellmage_server import __version__

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / "build" / "wheel"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(params=["newest", "oldest"])
def venv(request: pytest.FixtureRequest) -> Path:
    path = VENVS / request.param
    if not (path / "bin" / "jupyter-server").exists():
        # Never skip silently: this suite runs only where the wheel is installed.
        pytest.fail(f"no {path}: run bash tests/wheel/build.sh && bash tests/wheel/venvs.sh first")
    return path


def _env(venv: Path, **extra: str) -> dict[str, str]:
    """The environment of a user who installed the wheel: the venv alone on PATH, no Node."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH")}
    env.update(PATH=str(venv / "bin"), VIRTUAL_ENV=str(venv), LITELLM_LOCAL_MODEL_COST_MAP="True", **extra)
    return env


def _run(venv: Path, cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=_env(venv), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return ANSI.sub("", done.stdout + done.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_node_is_not_on_the_path(venv: Path, tmp_path: Path):
    out = _run(venv, tmp_path, "python", "-c", "import shutil; print(shutil.which('node'), shutil.which('npm'))")

    assert out.strip() == "None None"


def test_the_package_is_the_installed_wheel(venv: Path, tmp_path: Path):
    out = _run(venv, tmp_path, "python", "-c", "import cellmage_server; print(cellmage_server.__file__)")

    assert Path(out.strip()).is_relative_to(venv), out
    assert not Path(out.strip()).is_relative_to(ROOT / "cellmage_server")


def test_the_server_extension_is_enabled_and_valid(venv: Path, tmp_path: Path):
    out = _run(venv, tmp_path, "jupyter", "server", "extension", "list")

    assert re.search(r"cellmage_server\s+enabled", out), out
    assert f"cellmage_server {__version__} OK" in out, out


def test_the_lab_extension_is_installed_prebuilt_and_enabled(venv: Path, tmp_path: Path):
    out = _run(venv, tmp_path, "jupyter", "labextension", "list")

    listed = rf"cellmage-server v{re.escape(__version__)}\s+enabled\s+OK\s+\(python, cellmage-server\)"
    assert re.search(listed, out), out
    assert str(venv / "share" / "jupyter" / "labextensions") in out, out


@dataclass
class Server:
    url: str
    token: str
    fake: str  # the fake provider's control URL
    log: Path


@pytest.fixture
def server(venv: Path, tmp_path: Path) -> Iterator[Server]:
    """`jupyter server` from the venv, configured to a fake provider; stopped whatever happened."""
    port, fake_port, token = _free_port(), _free_port(), secrets.token_hex(16)
    log = tmp_path / "server.log"
    env = _env(
        venv, CELLMAGE_WHEEL_PORT=str(port), CELLMAGE_WHEEL_FAKE_PORT=str(fake_port), CELLMAGE_WHEEL_TOKEN=token
    )
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(venv / "bin" / "jupyter"), "server", "--config", str(ROOT / "tests" / "wheel" / "server_config.py")],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}api/status", headers={"Authorization": f"token {token}"}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield Server(url, token, f"http://127.0.0.1:{fake_port}/_fake", log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_an_answer_streams_through_jupyter_server(server: Server, venv: Path):
    headers = {"Authorization": f"token {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        status = client.get("cellmage/api/status").json()
        with client.stream("POST", "cellmage/api/chat", json={"prompt": "Say hello."}) as response:
            assert response.status_code == 200, response.read()
            events = [(e.event, json.loads(e.data)) for e in EventSource(response).iter_sse()]
        received = client.get(f"{server.fake}/received").json()["received"]

    assert status["version"] == __version__
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done", names
    assert "".join(data["text"] for name, data in events if name == "delta") == "Hello, world"
    assert dict(events)["usage"]["total_tokens"] == 10
    assert "error" not in names, events
    assert [r["body"]["messages"][-1]["content"].strip() for r in received] == ["Say hello."]
    # ... served by the installed package
    log = server.log.read_text()
    assert "cellmage_server | extension was successfully loaded" in log, log
    loaded_from = Path(re.search(r"cellmage-wheel: cellmage_server from (\S+)", log).group(1))
    assert loaded_from.is_relative_to(venv), log
    # (JupyterLab 4.2.0-4.2.6 log a traceback of their own: their extension manager predates httpx 0.28.)
    records = re.split(r"\n(?=\[[A-Z] )", log)
    assert [r for r in records if "Traceback" in r and "cellmage" in r] == [], log
