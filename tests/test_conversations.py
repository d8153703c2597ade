"""Conversations on the server: history in notebook order, re-runs replacing one turn, the
budget, stopped turns, renames, the usage ledger per user, persistence and a broken database."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from urllib.parse import quote

import pytest
from httpx_sse import EventSource

from cellmage_server.store.history import LedgerEntry, Store, Turn

from .fake_upstream import Script
from .helpers import until

NB = "work/analysis.ipynb"


def conv(path: str = NB) -> str:
    return "conversations/" + quote(path, safe="")


async def ask(api, cell_id: str, prompt: str, conversation: str = NB, **extra):
    return await api.stream({"prompt": prompt, "conversation": conversation, "cell_id": cell_id, **extra})


def sent_messages(fake) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in fake.received[-1].body["messages"]]


async def test_each_turn_sees_the_earlier_ones(api, fake_upstream):
    fake_upstream.script(Script(chunks=["first answer"]), Script(chunks=["second answer"]))
    await ask(api, "c1", "one")

    result = await ask(api, "c2", "two")

    assert sent_messages(fake_upstream) == [("user", "one"), ("assistant", "first answer"), ("user", "two")]
    assert result.one("start")["history"] == {"turns": 1, "dropped": 0}
    turns = (await api.get(conv())).json()["turns"]
    assert [(t["cell_id"], t["prompt"], t["answer"], t["status"]) for t in turns] == [
        ("c1", "one", "first answer", "ok"),
        ("c2", "two", "second answer", "ok"),
    ]


async def test_rerunning_a_middle_cell_replaces_only_its_turn(api, fake_upstream):
    fake_upstream.script(*(Script(chunks=[f"answer {i}"]) for i in range(1, 5)))
    for cell, prompt in (("c1", "one"), ("c2", "two"), ("c3", "three")):
        await ask(api, cell, prompt)

    await ask(api, "c2", "two, again")

    # The re-run saw only the turns above it, not the later cell's
    assert sent_messages(fake_upstream) == [("user", "one"), ("assistant", "answer 1"), ("user", "two, again")]
    turns = (await api.get(conv())).json()["turns"]
    assert [(t["cell_id"], t["prompt"], t["answer"]) for t in turns] == [
        ("c1", "one", "answer 1"),
        ("c2", "two, again", "answer 4"),
        ("c3", "three", "answer 3"),
    ]


async def test_without_history_the_prompt_goes_alone_but_is_kept(api, fake_upstream):
    await ask(api, "c1", "one")

    await ask(api, "c2", "two", history=False)

    assert sent_messages(fake_upstream) == [("user", "two")]
    assert len((await api.get(conv())).json()["turns"]) == 2


async def test_a_stopped_answer_is_kept_as_such_and_left_out_of_history(api, fake_upstream):
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(100)], interval=0.05))
    async with api.client() as c:
        body = {"prompt": "long", "conversation": NB, "cell_id": "c1"}
        async with c.stream("POST", api.url("chat"), json=body) as response:
            async for sse in EventSource(response).aiter_sse():
                if sse.event == "start":
                    stream_id = json.loads(sse.data)["id"]
                elif sse.event == "delta":
                    await c.post(api.url(f"chat/{stream_id}/cancel"))  # stop it after some text
    turn = (await api.get(conv())).json()["turns"][0]
    assert turn["status"] == "cancelled" and turn["answer"].startswith("t0")

    await ask(api, "c2", "next")
    assert sent_messages(fake_upstream) == [("user", "next")]  # the stopped turn is not history

    await ask(api, "c1", "long, again")  # a re-run replaces it cleanly
    turns = (await api.get(conv())).json()["turns"]
    assert [(t["cell_id"], t["status"]) for t in turns] == [("c1", "ok"), ("c2", "ok")]


async def test_clear_and_delete_one_turn(api):
    for cell in ("c1", "c2", "c3"):
        await ask(api, cell, cell)

    async with api.client() as c:
        assert (await c.delete(api.url(conv() + "/turns/c2"))).status_code == 204
        assert [t["cell_id"] for t in (await c.get(api.url(conv()))).json()["turns"]] == ["c1", "c3"]
        assert (await c.delete(api.url(conv()))).status_code == 204
        assert (await c.get(api.url(conv()))).json()["turns"] == []


async def test_conversation_totals(api):
    await ask(api, "c1", "one")
    await ask(api, "c2", "two")

    totals = (await api.get(conv())).json()["totals"]

    assert totals == {"turns": 2, "prompt_tokens": 14, "completion_tokens": 6, "cost_usd": None}


async def test_a_renamed_notebook_keeps_its_conversation(api, jp_root_dir):
    (jp_root_dir / "work").mkdir()
    (jp_root_dir / NB).write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    await ask(api, "c1", "one")

    async with api.client() as c:
        moved = await c.patch(api.base + f"api/contents/{NB}", json={"path": "work/renamed.ipynb"})
        assert moved.status_code == 200
        for _ in range(50):  # the rename event is handled on the server's loop
            if (await c.get(api.url(conv("work/renamed.ipynb")))).json()["turns"]:
                break
            await asyncio.sleep(0.02)
        assert [t["prompt"] for t in (await c.get(api.url(conv("work/renamed.ipynb")))).json()["turns"]] == ["one"]
        assert (await c.get(api.url(conv()))).json()["turns"] == []


async def test_a_kernels_file_path_names_the_same_conversation(api, jp_root_dir):
    await ask(api, "c1", "one", conversation=str(jp_root_dir / NB))  # as a kernel knows its notebook

    assert [t["prompt"] for t in (await api.get(conv())).json()["turns"]] == ["one"]


async def test_concurrent_turns_are_all_kept_in_order_of_arrival(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    try:
        await asyncio.gather(
            *(store.save_turn("nb", Turn(f"c{i}", f"p{i}", f"a{i}", "m", None, "ok")) for i in range(30))
        )
        await asyncio.gather(*(store.record(LedgerEntry("u", "m", 1, 2, None, 5, "stop")) for _ in range(30)))
        turns = await store.turns("nb")
        assert sorted(t.cell_id for t in turns) == sorted(f"c{i}" for i in range(30))
        assert (await store.usage("u"))["total"]["answers"] == 30
    finally:
        store.close()


async def test_conversations_and_the_ledger_survive_a_restart(tmp_path):
    path = tmp_path / "db.sqlite3"
    first = Store(path)
    await first.save_turn("nb", Turn("c1", "one", "answer", "m", None, "ok"))
    await first.record(LedgerEntry("u", "m", 3, 4, 0.5, 10, "stop"))
    first.close()

    again = Store(path)
    try:
        assert [t.prompt for t in await again.turns("nb")] == ["one"]
        assert (await again.usage("u"))["total"]["cost_usd"] == 0.5
    finally:
        again.close()


async def test_a_corrupt_database_is_moved_aside_and_a_fresh_one_used(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"this is not a database" * 100)

    store = Store(path)
    try:
        await store.save_turn("nb", Turn("c1", "one", "a", "m", None, "ok"))
        assert [t.prompt for t in await store.turns("nb")] == ["one"]
    finally:
        store.close()

    aside = [p for p in tmp_path.iterdir() if ".broken-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert "moved to" in caplog.text and str(path) in caplog.text
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


class TestTheHistoryBudget:
    @pytest.fixture
    def cellmage_toml(self, cellmage_toml: str) -> str:
        return cellmage_toml.replace("[limits]", "[limits]\nhistory_chars = 40")

    async def test_the_oldest_turns_are_dropped_first_and_reported(self, api, fake_upstream):
        fake_upstream.script(*(Script(chunks=[f"answer {i}"]) for i in range(1, 5)))
        for cell in ("c1", "c2", "c3"):
            await ask(api, cell, f"prompt {cell}")  # each turn is 17 characters

        result = await ask(api, "c4", "last")

        assert result.one("start")["history"] == {"turns": 2, "dropped": 1}
        assert sent_messages(fake_upstream)[0] == ("user", "prompt c2")


EMPTY_NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


async def test_a_deleted_notebooks_conversation_does_not_reach_a_new_one_of_the_same_name(api, fake_upstream, jp_root_dir):
    # Given secret.ipynb with a conversation
    (jp_root_dir / "secret.ipynb").write_text(EMPTY_NOTEBOOK)
    await ask(api, "c1", "my password is hunter2", conversation="secret.ipynb")

    # When it is deleted (through Jupyter) and a new secret.ipynb asks its first question
    async with api.client() as c:
        assert (await c.delete(api.base + "api/contents/secret.ipynb")).status_code == 204

        async def forgotten() -> bool:
            return (await c.get(api.url(conv("secret.ipynb")))).json()["turns"] == []

        assert await until(forgotten, 2)
    (jp_root_dir / "secret.ipynb").write_text(EMPTY_NOTEBOOK)
    await ask(api, "c9", "hello", conversation="secret.ipynb")

    # Then the provider hears nothing of the old conversation
    assert sent_messages(fake_upstream) == [("user", "hello")]


async def test_renaming_onto_a_path_with_a_stale_conversation_keeps_the_moved_turns_only(api, fake_upstream, jp_root_dir):
    # Given a.ipynb with turns c1, c2, and a conversation left at b.ipynb (its file removed
    # behind Jupyter's back) with turns c1, c3
    (jp_root_dir / "a.ipynb").write_text(EMPTY_NOTEBOOK)
    fake_upstream.script(*(Script(chunks=[f"answer {i}"]) for i in range(4)))
    await ask(api, "c1", "a one", conversation="a.ipynb")
    await ask(api, "c2", "a two", conversation="a.ipynb")
    await ask(api, "c1", "b one", conversation="b.ipynb")
    await ask(api, "c3", "b three", conversation="b.ipynb")

    # When a.ipynb is renamed to b.ipynb
    async with api.client() as c:
        assert (await c.patch(api.base + "api/contents/a.ipynb", json={"path": "b.ipynb"})).status_code == 200

        async def moved() -> bool:
            return (await c.get(api.url(conv("a.ipynb")))).json()["turns"] == []

        assert await until(moved, 2)

    # Then b.ipynb has exactly a's turns, in a's order; nothing is left at a.ipynb
    turns = (await api.get(conv("b.ipynb"))).json()["turns"]
    assert [(t["cell_id"], t["prompt"]) for t in turns] == [("c1", "a one"), ("c2", "a two")]


@pytest.mark.parametrize("spelling", ["./norm.ipynb", "x/../norm.ipynb", "norm.ipynb/"])
async def test_one_notebook_has_one_id_however_it_is_spelled(api, spelling):
    await ask(api, "c1", "one", conversation=spelling)

    assert [t["prompt"] for t in (await api.get(conv("norm.ipynb"))).json()["turns"]] == ["one"]


@pytest.mark.parametrize("where", ["/etc/norm.ipynb", "../norm.ipynb", "x/../../norm.ipynb"])
async def test_a_path_outside_the_root_is_refused(api, fake_upstream, where):
    response = await api.post("chat", {"prompt": "x", "conversation": where})

    assert response.status_code == 400 and "root folder" in response.json()["message"]
    assert fake_upstream.received == []


async def test_conversation_routes_take_the_path_with_slashes_as_written(api):
    await ask(api, "c1", "one")  # NB is work/analysis.ipynb

    plain = await api.get(f"conversations/{NB}")
    encoded = await api.get(conv())
    assert plain.status_code == encoded.status_code == 200
    assert plain.json() == encoded.json() and plain.json()["id"] == NB

    async with api.client() as c:
        assert (await c.delete(api.url(f"conversations/{NB}/turns/c1"))).status_code == 204
    assert (await api.get(f"conversations/{NB}")).json()["turns"] == []


@pytest.mark.parametrize("cell", ["a%3Fb", "a%23b", "a%20b", "a" * 65, "..%5Cx"])
async def test_a_turn_is_named_only_by_a_cell_id_of_nbformats_shape(api, cell):
    await ask(api, "c1", "one")
    async with api.client() as c:
        refused = await c.delete(api.url(f"{conv()}/turns/{cell}"))
    assert refused.status_code == 400 and "not a notebook cell id" in refused.json()["message"]
    assert [t["cell_id"] for t in (await api.get(conv())).json()["turns"]] == ["c1"]
