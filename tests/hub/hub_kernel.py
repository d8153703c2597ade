"""A kernel in a user's server, reached as JupyterLab reaches it: through the hub's proxy, with the
user's token, over the kernel's websocket (JSON messages)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import websocket


@dataclass
class Run:
    messages: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] == kind]

    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stdout")

    def answers(self) -> list[str]:
        """The answers shown (display_data, in order: the last is the stored answer; the updates
        are the live display's and its waiting line's), as tests/kernel.py reads them."""
        mark = "application/vnd.cellmage.answer+json"
        return [m["content"]["data"][mark]["markdown"] for m in self.of_type("display_data") if mark in m["content"]["data"]]

    def errors(self) -> list[str]:
        return [m["content"]["evalue"] for m in self.of_type("error")]


class HubKernel:
    def __init__(self, server: str, token: str) -> None:
        self.server = server  # http://127.0.0.1:<hub>/user/<name>/
        self.headers = {"Authorization": f"token {token}"}
        self.id = ""
        self.session = uuid.uuid4().hex
        self.ws: websocket.WebSocket | None = None

    def start(self, notebook: str = "team.ipynb") -> HubKernel:
        body = {"path": notebook, "name": notebook, "type": "notebook", "kernel": {"name": "python3"}}
        response = httpx.post(self.server + "api/sessions", json=body, headers=self.headers, timeout=60, trust_env=False)
        response.raise_for_status()
        self.id = response.json()["kernel"]["id"]
        url = self.server.replace("http://", "ws://") + f"api/kernels/{self.id}/channels?session_id={self.session}"
        self.ws = websocket.create_connection(url, header=[f"{k}: {v}" for k, v in self.headers.items()], timeout=60)
        self.run("1", timeout=60)  # answered once the kernel is ready
        return self

    def send(self, code: str) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id, "msg_type": "execute_request", "session": self.session, "username": "",
            "version": "5.3", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        assert self.ws is not None
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content,
                                 "channel": "shell", "buffers": []}))
        return msg_id

    def collect(self, msg_id: str, timeout: float = 60) -> Run:
        """This request's iopub messages until the kernel is idle again."""
        assert self.ws is not None
        run = Run()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(self.ws.recv())
            if message.get("channel") != "iopub" or message["parent_header"].get("msg_id") != msg_id:
                continue
            run.messages.append({"msg_type": message["header"]["msg_type"], "content": message["content"]})
            if message["header"]["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                return run
        raise TimeoutError(f"the kernel did not finish in {timeout} s; got {run.messages}")

    def run(self, code: str, timeout: float = 60) -> Run:
        return self.collect(self.send(code), timeout)

    def interrupt(self) -> None:
        httpx.post(self.server + f"api/kernels/{self.id}/interrupt", headers=self.headers, timeout=30,
                   trust_env=False).raise_for_status()

    def stop(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.id:
            httpx.delete(self.server + f"api/kernels/{self.id}", headers=self.headers, timeout=30, trust_env=False)
