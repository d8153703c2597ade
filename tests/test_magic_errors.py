"""The magic's error output for a Jupyter server without the extension and for a lost network:
one line (no traceback) that says what happened and what to do, and any text that came is kept.
A real kernel, started through the server, asks."""

from __future__ import annotations

import re
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from .fake_upstream import FakeUpstream
from .kernel import Kernel


@pytest.fixture
def resetting_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts each connection and resets it at once: the network going
    away between the kernel and its server."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
            conn.close()

    thread = threading.Thread(target=serve, name="resetting-port", daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


async def _ask(kernel: Kernel, server_url: str) -> tuple[str, list[str]]:
    """(the cell's one error line, the answers it shows) after `%%llm` asks the server at that URL."""
    await kernel.run(f"import os; os.environ['CELLMAGE_SERVER_URL'] = {server_url!r}")
    loaded = await kernel.run("%load_ext cellmage_server")
    assert not loaded.errors() and not loaded.stderr()

    run = await kernel.run("%%llm --stream\nx")

    assert run.reply["status"] == "error"  # the cell fails, so Run All stops there
    [error] = run.errors()
    assert len(error["traceback"]) == 1, error["traceback"]  # one line, not a traceback
    return error["traceback"][0], run.markdown()


async def test_a_server_without_the_extension_says_to_install_and_enable_it(kernel, api):
    # A path of this Jupyter server that no extension serves answers as a server without
    # cellmage-server answers cellmage/api/chat: Jupyter's own 404.
    line, answers = await _ask(kernel, api.base + "no-cellmage-here/")

    assert line.startswith("CellMage: ") and "HTTP" not in line
    assert "no cellmage endpoint: is cellmage-server installed and enabled there?" in line
    assert [a.replace("\\", "") for a in answers] == [line.removeprefix("CellMage: ")]  # and shown as a problem


async def test_a_network_lost_before_the_answer_says_the_server_cannot_be_reached(kernel, resetting_port):
    url = f"http://127.0.0.1:{resetting_port}/"

    line, answers = await _ask(kernel, url)

    assert line.startswith(f"CellMage: cannot reach the Jupyter server at {url}"), line
    assert "Is it still running?" in line
    assert len(answers) == 1 and "cannot reach the Jupyter server" in answers[0].replace("\\", "")


async def test_a_network_lost_mid_answer_keeps_the_text_and_says_to_run_the_cell_again(kernel, fake_upstream: FakeUpstream):
    # The fake's `drop` endpoint streams some text, then breaks the connection
    line, answers = await _ask(kernel, f"http://127.0.0.1:{fake_upstream.port}/drop/")

    said = "The connection to the Jupyter server closed before the answer finished."
    assert line == f"CellMage: {said} Check that the Jupyter server is running, then run the cell again."
    assert answers[-1].startswith("looks complete.")
    assert re.sub(r"\\(.)", r"\1", answers[-1]).endswith(f"**{said}** Check that the Jupyter server is running, then run the cell again.")
