"""Stopping the Jupyter server mid-answer: the answer ends with ``error`` ``shutdown`` then
``done``, its text so far kept and stored as interrupted; new answers are refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from httpx_sse import EventSource

from cellmage_server.principal import owner_name
from cellmage_server.store.history import Store

from .fake_upstream import Script

SLOW = Script(chunks=[f"t{i} " for i in range(200)], interval=0.02)
NB = "stopping.ipynb"


def _cellmage_app(serverapp):
    (app,) = serverapp.extension_manager.extension_apps["cellmage_server"]
    return app


async def test_a_running_answer_ends_with_shutdown_then_done(api, fake_upstream, jp_serverapp):
    fake_upstream.script(SLOW)
    state = jp_serverapp.web_app.settings["cellmage"]
    events = []
    async with api.client() as c:
        body = {"prompt": "long", "conversation": NB, "cell_id": "c1"}
        async with c.stream("POST", api.url("chat"), json=body) as response:
            async for sse in EventSource(response).aiter_sse():
                events.append((sse.event, json.loads(sse.data)))
                if sse.event == "delta" and sum(1 for name, _ in events if name == "delta") == 2:
                    # When the server stops (the hook jupyter-server awaits before its loop stops)
                    stopping = asyncio.ensure_future(_cellmage_app(jp_serverapp).stop_extension())
            await stopping

    # Then the stream ended properly, with what had come
    names = [name for name, _ in events]
    assert names[-2:] == ["error", "done"]
    assert events[-2][1]["code"] == "shutdown" and "stopped" in events[-2][1]["message"]
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert text.startswith("t0 t1 ")
    # And the provider request was closed, the turn stored as interrupted with that text
    assert await fake_upstream.until(lambda: fake_upstream.received[0].closed_by_client is not None)
    assert len(state.streams) == 0
    # (the stop closed the server's database; read what it left there)
    store = Store(state.store.path)
    try:
        (turn,) = await store.turns(NB)
        assert turn.status == "interrupted" and turn.answer == text
        assert (await store.usage(owner_name()))["total"]["answers"] == 1
    finally:
        store.close()


async def test_after_the_stop_new_answers_are_refused(api, fake_upstream, jp_serverapp):
    await _cellmage_app(jp_serverapp).stop_extension()

    response = await api.post("chat", {"prompt": "x"})

    assert response.status_code == 503
    assert fake_upstream.received == []


async def test_a_real_server_stopped_by_sigterm_ends_its_answers_first(fake_upstream, tmp_path):
    """The same through jupyter-server's own stop: a `jupyter server` process gets SIGTERM."""
    port, token = _free_port(), "shutdown-test-token"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "jupyter_server_config.py").write_text(
        "c.ServerApp.jpserver_extensions = {'cellmage_server': True}\n"
    )
    db = tmp_path / "history.sqlite3"
    config = tmp_path / "cellmage.toml"
    config.write_text(
        f'history_db = "{db}"\n[models.fast]\nmodel = "openai/fake"\napi_base = "{fake_upstream.url}"\napi_key = "unused"\n'
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "CELLMAGE_CONFIG": str(config),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1", "--no-browser",
         "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--ServerApp.port_retries=0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        fake_upstream.script(SLOW)
        base = f"http://127.0.0.1:{port}/"
        headers = {"Authorization": f"token {token}"}
        async with httpx.AsyncClient(trust_env=False, headers=headers, timeout=30) as c:
            for _ in range(300):  # bounded: the server is up within seconds
                try:
                    if (await c.get(base + "cellmage/api/status")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            body = {"prompt": "long", "conversation": NB, "cell_id": "c1"}
            events = []
            async with c.stream("POST", base + "cellmage/api/chat", json=body) as response:
                async for sse in EventSource(response).aiter_sse():
                    events.append((sse.event, json.loads(sse.data)))
                    if sse.event == "delta" and len(events) == 3:
                        server.send_signal(signal.SIGTERM)  # as a service manager stops it
        assert server.wait(30) is not None
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)

    names = [name for name, _ in events]
    assert names[-2:] == ["error", "done"], names
    assert events[-2][1]["code"] == "shutdown"
    text = "".join(data["text"] for name, data in events if name == "delta")
    with sqlite3.connect(db) as stored:
        assert stored.execute("SELECT status, answer FROM turns").fetchall() == [("interrupted", text)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
