"""With real-time collaboration (jupyter-collaboration), the server writes an answer's last output
into the live shared notebook itself (cellmage_server.collab): collaborators' pages get it over
their room's websocket, and the file gets it when the room saves. Skipped where collaboration is
not installed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytest.importorskip("jupyter_server_ydoc")
pycrdt = pytest.importorskip("pycrdt")

from jupyter_ydoc import YNotebook  # noqa: E402
from tornado.httpclient import HTTPRequest  # noqa: E402
from tornado.websocket import WebSocketClientConnection, websocket_connect  # noqa: E402

from cellmage_server.answer.ending import ANSWER_MIME  # noqa: E402
from cellmage_server.collab import SharedNotebooks  # noqa: E402

from .helpers import until  # noqa: E402

NB = "shared.ipynb"
ANSWER_ID = "a1" * 16
SAVE_DELAY = 0.5


@pytest.fixture
def disable_rtc() -> bool:
    return False


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path, disable_rtc: bool) -> dict[str, Any]:
    """This repo's server (cellmage on, auth on) plus jupyter-server-ydoc, its stores in tmp_path."""
    config = dict(jp_server_config)
    config["ServerApp"] = {
        **jp_server_config["ServerApp"],
        "jpserver_extensions": {
            **jp_server_config["ServerApp"]["jpserver_extensions"],
            "jupyter_server_ydoc": True,
            "jupyter_server_fileid": True,
        },
    }
    config["YDocExtension"] = {
        "document_save_delay": SAVE_DELAY,
        "disable_rtc": disable_rtc,
        "session_store_path": str(tmp_path / "collaboration_sessions.json"),
    }
    config["SQLiteYStore"] = {"db_path": str(tmp_path / "ystore.db")}  # else .jupyter_ystore.db in the cwd
    config["BaseFileIdManager"] = {"db_path": str(tmp_path / "fileid.db")}
    return config


def answering(answer_id: str) -> dict[str, Any]:
    """The live placeholder output the lab plugin writes while an answer streams."""
    return {
        "output_type": "display_data",
        "data": {"text/html": "<p>answering</p>", ANSWER_MIME: {"markdown": "", "answer": {"id": answer_id, "live": True}}},
        "metadata": {},
    }


def final(answer_id: str) -> dict[str, Any]:
    """The last output the server writes: the text so far and the incomplete marker."""
    return {
        "output_type": "display_data",
        "data": {
            "text/html": "<p>partial text</p><p><em>incomplete</em></p>",
            ANSWER_MIME: {"markdown": "partial text\n\n*incomplete*", "answer": {"id": answer_id}},
        },
        "metadata": {"cellmage": {"stopped": True, "elapsed_ms": 1234}},
    }


@pytest.fixture
def notebook_file(jp_root_dir: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%%llm\nexplain", id="asked", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="before\n"),
            nbformat.from_dict(answering(ANSWER_ID)),
        ]),
        nbformat.v4.new_markdown_cell("notes", id="other"),
        nbformat.v4.new_code_cell("x = 1", id="third"),
    ]
    path = jp_root_dir / NB
    nbformat.write(nb, path)
    return path


class TornadoChannel:
    """A pycrdt ``Channel`` over tornado's websocket client (what a page's provider does)."""

    def __init__(self, connection: WebSocketClientConnection, path: str) -> None:
        self._connection = connection
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> TornadoChannel:
        return self

    async def __anext__(self) -> bytes:
        message = await self._connection.read_message()
        if message is None:
            raise StopAsyncIteration
        return message if isinstance(message, bytes) else message.encode()

    async def send(self, message: bytes) -> None:
        await self._connection.write_message(message, binary=True)

    async def recv(self) -> bytes:
        return await self.__anext__()


@pytest.fixture
def collaborator(jp_fetch: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]) -> Callable[[str], Any]:
    """Opens a notebook as a page does: a session, then the room's websocket, synced."""

    @asynccontextmanager
    async def _open(path: str) -> AsyncIterator[YNotebook]:
        response = await jp_fetch(
            "api/collaboration/session", path, method="PUT", body=json.dumps({"format": "json", "type": "notebook"})
        )
        session = json.loads(response.body)
        room = f"{session['format']}:{session['type']}:{session['fileId']}"
        url = f"ws://127.0.0.1:{jp_http_port}{jp_base_url}api/collaboration/room/{room}?sessionId={session['sessionId']}"
        connection = await websocket_connect(HTTPRequest(url, headers=jp_auth_header))
        notebook = YNotebook()
        try:
            async with pycrdt.Provider(notebook.ydoc, TornadoChannel(connection, room)) as provider:
                await asyncio.wait_for(provider.synced.wait(), 10)
                await until(lambda: notebook.cell_number > 0)
                yield notebook
        finally:
            connection.close()

    return _open


def cell(notebook: dict[str, Any], cell_id: str) -> dict[str, Any]:
    (found,) = [c for c in notebook["cells"] if c.get("id") == cell_id]
    return found


def on_disk(path: Path) -> dict[str, Any] | None:
    """The file as nbformat reads it (multiline strings rejoined), or None while the server is
    writing it (jupyter-server's "atomic" writing rewrites the file in place: it can be empty)."""
    try:
        return nbformat.reads(path.read_text(), as_version=4)
    except nbformat.reader.NotJSONError:
        return None


def ystore_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db)) as connection:
        return connection.execute("SELECT count(*) FROM yupdates").fetchone()[0]


def saved_answer(path: Path, answer_id: str) -> dict[str, Any] | None:
    """The file once the answer's final output is in it."""
    nb = on_disk(path)
    return nb if nb is not None and cell(nb, "asked")["outputs"][1]["data"] == final(answer_id)["data"] else None


async def test_a_write_reaches_collaborators_and_the_file(
    jp_serverapp: Any, notebook_file: Path, collaborator: Any, tmp_path: Path
) -> None:
    shared = SharedNotebooks(jp_serverapp)
    assert shared.available
    async with collaborator(NB) as other:
        async with collaborator(NB) as asker:
            assert cell(asker.get(), "asked")["outputs"][1] == answering(ANSWER_ID)
        # The asking page went away mid-answer; another collaborator edits cells meanwhile
        other.set_cell(1, source="notes, edited")
        other.set_cell(0, source="%%llm\nexplain more")
        written = time.monotonic()
        assert await shared.replace_output(NB, "asked", ANSWER_ID, final(ANSWER_ID))

        # The collaborator's copy gets the output, in place; the cell's other output is kept
        await until(lambda: cell(other.get(), "asked")["outputs"][1] == final(ANSWER_ID))
        outputs = cell(other.get(), "asked")["outputs"]
        assert len(outputs) == 2 and outputs[0]["text"] == "before\n"
        # ... as a Map, as pages create outputs (JupyterLab reads an output with toJSON)
        assert isinstance(other.ycells[0]["outputs"][1], pycrdt.Map)

        # The file has it once the room saved (document_save_delay after the change), with the edits
        def saved() -> dict[str, Any] | None:
            nb = saved_answer(notebook_file, ANSWER_ID)
            edits = nb is not None and [cell(nb, "other")["source"], cell(nb, "asked")["source"]]
            return nb if edits == ["notes, edited", "%%llm\nexplain more"] else None

        saved = await until(saved)
        assert time.monotonic() - written < SAVE_DELAY + 5
        assert cell(saved, "asked")["outputs"][1]["metadata"] == final(ANSWER_ID)["metadata"]
        assert cell(saved, "asked")["outputs"][0]["text"] == "before\n"
        assert cell(saved, "third")["source"] == "x = 1"
        nbformat.validate(saved)
        # Each change is a row of the ystore, where SQLiteYStore.db_path says
        assert await until(lambda: ystore_rows(tmp_path / "ystore.db") >= 4)

        # The final output keeps the answer's id: writing it again replaces it again
        assert await shared.replace_output(NB, "asked", ANSWER_ID, final(ANSWER_ID))
        assert not await shared.replace_output(NB, "asked", "0" * 32, final("0" * 32))
        assert not await shared.replace_output(NB, "no-such-cell", ANSWER_ID, final(ANSWER_ID))
        assert not await shared.replace_output(NB, "other", ANSWER_ID, final(ANSWER_ID))  # a markdown cell


async def test_after_the_last_page_closed_the_room_still_takes_the_write(
    jp_serverapp: Any, notebook_file: Path, collaborator: Any
) -> None:
    """For document_cleanup_delay (60 s by default) after the last page left, the room lives on."""
    shared = SharedNotebooks(jp_serverapp)
    async with collaborator(NB):
        pass
    assert await shared.replace_output(NB, "asked", ANSWER_ID, final(ANSWER_ID))
    await until(lambda: saved_answer(notebook_file, ANSWER_ID))


async def test_a_notebook_nobody_opened_is_not_written(jp_serverapp: Any, notebook_file: Path) -> None:
    shared = SharedNotebooks(jp_serverapp)
    assert shared.available
    before = notebook_file.read_text()
    assert not await shared.replace_output(NB, "asked", ANSWER_ID, final(ANSWER_ID))
    assert not await shared.replace_output("missing.ipynb", "asked", ANSWER_ID, final(ANSWER_ID))
    assert notebook_file.read_text() == before


async def test_a_placeholder_whose_data_is_a_json_string_is_found(jp_serverapp: Any, jp_root_dir: Path, collaborator: Any) -> None:
    nb = nbformat.v4.new_notebook()
    placeholder = answering("a2" * 16)
    placeholder["data"][ANSWER_MIME] = json.dumps(placeholder["data"][ANSWER_MIME])
    nb.cells = [nbformat.v4.new_code_cell("%%llm\nq", id="c", outputs=[nbformat.from_dict(placeholder)])]
    nbformat.write(nb, jp_root_dir / "strings.ipynb")
    shared = SharedNotebooks(jp_serverapp)
    async with collaborator("strings.ipynb") as page:
        assert await shared.replace_output("strings.ipynb", "c", "a2" * 16, final("a2" * 16))
        await until(lambda: cell(page.get(), "c")["outputs"] == [final("a2" * 16)])


async def test_a_kernels_answer_replaces_its_placeholder_and_its_text_fallback(
    jp_serverapp: Any, jp_root_dir: Path, collaborator: Any
) -> None:
    """The magic's placeholder is followed by its stdout copy of the answer: both give way to the
    stored answer (as the kernel's clear_output would have), and what came before stays."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%%llm --stream\nq", id="k", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
        nbformat.from_dict(answering("a3" * 16)),
        nbformat.v4.new_output("stream", name="stdout", text="partial text"),
    ])]
    nbformat.write(nb, jp_root_dir / "kernel.ipynb")
    shared = SharedNotebooks(jp_serverapp)
    async with collaborator("kernel.ipynb") as page:
        assert await shared.replace_output("kernel.ipynb", "k", "a3" * 16, final("a3" * 16))
        await until(lambda: len(cell(page.get(), "k")["outputs"]) == 2)
        outputs = cell(page.get(), "k")["outputs"]
        assert outputs[0]["text"] == "a warning\n" and outputs[1] == final("a3" * 16)


@pytest.mark.parametrize("disable_rtc", [True])
async def test_disable_rtc_means_no_shared_writes(jp_serverapp: Any, notebook_file: Path, disable_rtc: bool) -> None:
    assert jp_serverapp.web_app.settings["page_config_data"]["disableRTC"] is True
    shared = SharedNotebooks(jp_serverapp)
    assert not shared.available
    assert not await shared.replace_output(NB, "asked", ANSWER_ID, final(ANSWER_ID))


async def test_a_placeholder_whose_id_has_another_shape_is_never_taken_for_an_answer(
    jp_serverapp: Any, jp_root_dir: Path, collaborator: Any
) -> None:
    # Given a notebook from elsewhere whose placeholder ids are not answer ids (one with a valid id
    # appended, one that equals the id asked for but in upper case)
    nb = nbformat.v4.new_notebook()
    bad = [answering("../../../api/kernels?"), answering(("a4" * 16).upper()), answering(["a4" * 16])]
    nb.cells = [nbformat.v4.new_code_cell("%%llm\nq", id="c", outputs=[nbformat.from_dict(o) for o in bad])]
    nbformat.write(nb, jp_root_dir / "hostile.ipynb")
    shared = SharedNotebooks(jp_serverapp)
    async with collaborator("hostile.ipynb") as page:
        before = cell(page.get(), "c")["outputs"]
        # When the server writes answers by id into it, nothing of another shape is replaced
        for answer_id in ("../../../api/kernels?", ("a4" * 16).upper(), "a4" * 16):
            assert not await shared.replace_output("hostile.ipynb", "c", answer_id, final("a4" * 16))
        await asyncio.sleep(0.3)
        assert cell(page.get(), "c")["outputs"] == before


async def test_context_cells_come_from_the_shared_notebook_as_its_pages_see_it(
    api: Any, fake_upstream: Any, jp_serverapp: Any, notebook_file: Path, collaborator: Any
) -> None:
    shared = SharedNotebooks(jp_serverapp)
    # Given a collaborator's edit the file does not have yet
    async with collaborator(NB) as page:
        page.set_cell(2, source="y = 'edited, not saved yet'")
        for _ in range(200):  # until the edit reached the server's room
            live = await shared.read(NB)
            if live and "edited" in json.dumps(live["cells"]):
                break
            await asyncio.sleep(0.02)
        assert "edited" not in notebook_file.read_text()
        # When a kernel asks with --cells (the server reads the notebook)
        result = await api.stream({"prompt": "why?", "conversation": NB, "cell_id": "later", "context": {"cells": 1}})
    # Then the provider got the shared notebook's cell, edits and all
    sent = fake_upstream.received[-1].body["messages"][-1]["content"]
    assert "y = 'edited, not saved yet'" in sent and "(as last saved)" not in sent
    assert result.events[0].data["context"][0]["n"] == 1
