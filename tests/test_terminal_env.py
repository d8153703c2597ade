"""Terminals started by the server hold no provider key either: a real terminal, opened through
the server's REST API and driven over its websocket as JupyterLab does, prints the environment
its shell started with."""

from __future__ import annotations

import asyncio
import json

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from .conftest import KEY_ENV, SECRET

# The shell prints its own starting environment (/proc/$$/environ), then a line the echo of the
# command cannot contain ("42-end" only once the shell has computed it).
DUMP = "tr '\\0' '\\n' < /proc/$$/environ; echo $((6*7))-end\r"


async def _environment_of_a_new_terminal(api, jp_http_port: int, jp_base_url: str) -> str:
    async with api.client() as c:
        started = await c.post(api.base + "api/terminals")
        assert started.status_code == 200, started.text
        name = started.json()["name"]
        try:
            url = f"ws://127.0.0.1:{jp_http_port}{jp_base_url}terminals/websocket/{name}"
            ws = await websocket_connect(HTTPRequest(url, headers=api.headers))
            try:
                ws.write_message(json.dumps(["stdin", DUMP]))
                return await asyncio.wait_for(_stdout_until(ws, "42-end"), timeout=30)
            finally:
                ws.close()
        finally:
            await c.delete(api.base + f"api/terminals/{name}")


async def _stdout_until(ws, marker: str) -> str:
    out = ""
    while marker not in out:
        message = await ws.read_message()
        assert message is not None, f"the terminal closed; it printed {out!r}"
        kind, *payload = json.loads(message)
        if kind == "stdout":
            out += payload[0]
    return out


async def test_a_terminal_gets_no_key_and_no_config_path(api, jp_http_port, jp_base_url):
    printed = await _environment_of_a_new_terminal(api, jp_http_port, jp_base_url)
    names = {line.split("=", 1)[0].strip() for line in printed.splitlines() if "=" in line}

    assert "CELLMAGE_SERVER_URL" in names  # the dump is the shell's environment, as the server left it
    assert KEY_ENV not in names and "CELLMAGE_CONFIG" not in names
    assert SECRET not in printed
