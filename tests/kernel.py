"""A real IPython kernel started through the Jupyter server under test (so it gets the environment
the server extension provides), run cell by cell, its iopub messages collected."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CellRun:
    messages: list[dict[str, Any]] = field(default_factory=list)  # iopub, this cell's only
    reply: dict[str, Any] | None = None
    iopub_bytes: int = 0  # serialized size of those messages, as they crossed the wire

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] == msg_type]

    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stdout")

    def stderr(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stderr")

    def markdown(self) -> list[str]:
        """The answers shown: the safe Markdown the lab plugin renders (the output's text/html is
        the same answer for every other renderer)."""
        mark = "application/vnd.cellmage.answer+json"
        return [m["content"]["data"][mark]["markdown"] for m in self.of_type("display_data") if mark in m["content"]["data"]]

    def errors(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.of_type("error")]


class Kernel:
    def __init__(self, api: Any, serverapp: Any) -> None:
        self.api = api
        self.serverapp = serverapp
        self.id = ""
        self.client: Any = None

    async def start(self, notebook: str | None = None, name: str | None = None) -> Kernel:
        """Start a kernel; for ``notebook``, through a session, as JupyterLab does when it opens one
        (JupyterLab names the session after the file, ``name``: the notebook's folder must exist)."""
        async with self.api.client() as c:
            if notebook is None:
                started = await c.post(self.api.base + "api/kernels", json={"name": "python3"})
                started.raise_for_status()
                self.id = started.json()["id"]
            else:
                # As JupyterLab opens a notebook: its folder exists, the session's name is the file's
                # (the kernel's JPY_SESSION_NAME is then the notebook's full path).
                from pathlib import Path

                (Path(self.serverapp.root_dir) / notebook).parent.mkdir(parents=True, exist_ok=True)
                name = name or notebook.rsplit("/", 1)[-1]
                body = {"path": notebook, "name": name, "type": "notebook", "kernel": {"name": "python3"}}
                started = await c.post(self.api.base + "api/sessions", json=body)
                started.raise_for_status()
                self.id = started.json()["kernel"]["id"]
        manager = self.serverapp.kernel_manager.get_kernel(self.id)
        self.client = manager.client()
        self.client.session.debug = False
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=60)
        return self

    async def stop(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
        if self.id:
            async with self.api.client() as c:
                await c.delete(self.api.base + f"api/kernels/{self.id}")

    async def interrupt(self) -> None:
        async with self.api.client() as c:
            response = await c.post(self.api.base + f"api/kernels/{self.id}/interrupt")
            response.raise_for_status()

    async def run(self, code: str, timeout: float = 60, on_message: Any = None, cell_id: str | None = None) -> CellRun:
        """Execute ``code`` (as cell ``cell_id``, which JupyterLab puts in the request's metadata)
        and collect its iopub messages until the kernel is idle again."""
        run = CellRun()
        if cell_id is None:
            msg_id = self.client.execute(code)
        else:
            content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
            msg = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
            self.client.shell_channel.send(msg)
            msg_id = msg["header"]["msg_id"]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the cell did not finish in {timeout} s: {code[:60]!r}")
            try:
                msg = await self.client.get_iopub_msg(timeout=remaining)
            except Exception as e:  # queue.Empty on time-out
                raise TimeoutError(f"no iopub message in {timeout} s") from e
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            run.messages.append(msg)
            run.iopub_bytes += _wire_size(self.client.session, msg)
            if on_message is not None:
                await on_message(msg, run)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        run.reply = (await self.client.get_shell_msg(timeout=10))["content"]
        return run


def _wire_size(session: Any, msg: dict[str, Any]) -> int:
    """Bytes of a message as the kernel sent it (all frames: identities, signature, JSON parts)."""
    frames = session.serialize(
        {k: msg[k] for k in ("header", "parent_header", "metadata", "content")} | {"msg_id": msg["header"]["msg_id"], "msg_type": msg["msg_type"]}
    )
    return sum(len(f) for f in frames)
