"""What the tests of CellMage's tutorials share: a real kernel opened for a notebook through the
Jupyter server under test, with the extension loaded, and the provider requests' messages."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from .fake_upstream import FakeUpstream
from .kernel import CellRun, Kernel

NOTEBOOK = "study/notes.ipynb"


async def notebook_kernel(api: Any, serverapp: Any, notebook: str = NOTEBOOK) -> Kernel:
    """A kernel for ``notebook`` as JupyterLab starts one: its folder exists, the session is named
    after the file (so the kernel's JPY_SESSION_NAME is the notebook's path under the root)."""
    folder = Path(serverapp.root_dir, notebook).parent
    folder.mkdir(parents=True, exist_ok=True)
    kernel = await Kernel(api, serverapp).start(notebook=notebook, name=PurePosixPath(notebook).name)
    run = await kernel.run("%load_ext cellmage_server")
    assert not run.errors() and not run.stderr(), run.stderr()
    return kernel


async def quiet(kernel: Kernel, code: str, cell_id: str | None = None) -> CellRun:
    """Run a cell that must succeed without a word on stderr."""
    run = await kernel.run(code, cell_id=cell_id)
    assert run.reply["status"] == "ok" and not run.errors() and not run.stderr(), (code, run.stderr(), run.errors())
    return run


def messages(fake: FakeUpstream, index: int = -1) -> list[tuple[str, str]]:
    """(role, content) of the messages a provider request carried."""
    return [(m["role"], m["content"].strip()) for m in fake.received[index].body["messages"]]


def prompts(fake: FakeUpstream, index: int = -1) -> list[str]:
    return [content for role, content in messages(fake, index) if role == "user"]


def saved_id(stdout: str) -> str:
    """The id a `--save` printed."""
    found = re.search(r"as ([A-Za-z0-9_-]+) \(", stdout)
    assert found, stdout
    return found.group(1)
