"""CellMage's conversations you can keep (`%llm_config --save`, `--load`, `--list-sessions`,
`--auto-save`), cells in CellMage's syntax in a real kernel against a real server: named copies of
the notebook's conversation, each person's own, their names untrusted input."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .fake_upstream import FakeUpstream, Script
from .helpers import NamedUsers
from .tutorial_cells import NOTEBOOK, notebook_kernel, prompts, quiet, saved_id


@pytest.fixture
def kernel(api, jp_serverapp, jp_asyncio_loop):
    k = jp_asyncio_loop.run_until_complete(notebook_kernel(api, jp_serverapp))
    yield k
    jp_asyncio_loop.run_until_complete(k.stop())


async def test_save_clear_and_load_bring_a_conversation_back(kernel, api, fake_upstream: FakeUpstream):
    fake_upstream.script(Script(chunks=["An exception is ..."]), Script(chunks=["For example ..."]))
    await quiet(kernel, "%%llm\nWhat's the best way to handle exceptions in Python?", cell_id="c1")
    await quiet(kernel, "%%llm\nIn your previous response, can you give an example?", cell_id="c2")

    # Save under a name: the name and the time, as CellMage names it
    saved = (await quiet(kernel, '%llm_config --save "my_first_cellmage_session"')).stdout()
    session = saved_id(saved)
    assert re.fullmatch(r"my_first_cellmage_session_\d{8}_\d{6}", session)
    assert "saved 2 turn(s)" in saved
    listed = (await quiet(kernel, "%llm_config --list-sessions")).stdout()
    assert f"* {session} · 2 turn(s) · from {NOTEBOOK}" in listed

    # A fresh start forgets the turns: the next cell sees none
    await quiet(kernel, "%llm_config --clear-history")
    await quiet(kernel, "%%llm\nWhat are the key principles of good data visualization?", cell_id="c3")
    assert prompts(fake_upstream) == ["What are the key principles of good data visualization?"]

    # Loading by enough of the name to be unique makes the saved turns this notebook's conversation
    loaded = (await quiet(kernel, '%llm_config --load "my_first_cellmage"')).stdout()
    assert f"loaded {session}" in loaded and "2 turn(s)" in loaded
    turns = (await api.get(f"conversations/{NOTEBOOK}")).json()["turns"]
    assert [t["cell_id"] for t in turns] == ["c1", "c2"]  # c3's turn went with the load
    await quiet(kernel, "%%llm\nSummarize what we discussed.", cell_id="c4")
    assert prompts(fake_upstream) == [
        "What's the best way to handle exceptions in Python?",
        "In your previous response, can you give an example?",
        "Summarize what we discussed.",
    ]
    assert "2 turn(s)" in (await quiet(kernel, "%llm_config --list-sessions")).stdout()  # the copy is unchanged


async def test_save_without_a_name_names_it_after_the_first_words(kernel):
    await quiet(kernel, "%%llm\nExplain what large language models are in 3 simple sentences.", cell_id="c1")

    session = saved_id((await quiet(kernel, "%llm_config --save")).stdout())

    assert re.fullmatch(r"explain_what_large_language_models_\d{8}_\d{6}", session)


async def test_auto_save_keeps_one_copy_up_to_date_until_it_is_turned_off(kernel, api):
    on = (await quiet(kernel, "%llm_config --auto-save")).stdout()
    assert "auto-save is on" in on

    await quiet(kernel, "%%llm\nfirst", cell_id="c1")
    await quiet(kernel, "%%llm\nsecond", cell_id="c2")

    listed = (await api.get("sessions")).json()["sessions"]
    assert len(listed) == 1  # one copy, written over after each answer
    assert re.fullmatch(r"notes_\d{8}_\d{6}", listed[0]["id"]) and listed[0]["turns"] == 2
    status = (await quiet(kernel, "%llm_config --status")).stdout()
    assert f"auto-save: on (into {listed[0]['id']})" in status

    await quiet(kernel, "%llm_config --no-auto-save")
    await quiet(kernel, "%%llm\nthird", cell_id="c3")
    assert (await api.get("sessions")).json()["sessions"][0]["turns"] == 2


async def test_auto_save_writes_into_the_session_saved_last(kernel, api):
    await quiet(kernel, "%%llm\nfirst", cell_id="c1")
    session = saved_id((await quiet(kernel, "%llm_config --save project_x")).stdout())
    await quiet(kernel, "%llm_config --auto-save")

    await quiet(kernel, "%%llm\nsecond", cell_id="c2")

    listed = {s["id"]: s["turns"] for s in (await api.get("sessions")).json()["sessions"]}
    assert listed == {session: 2}


@pytest.mark.parametrize(
    "line,said",
    [
        ('--save "data analysis"', "cannot save as 'data analysis'"),
        ("--save ../../etc/passwd", "cannot save as '../../etc/passwd'"),
        ("--load ../../etc/passwd", "is not the name of a saved conversation"),
        ("--load nothing_like_it", "You have no saved conversation 'nothing_like_it'"),
    ],
)
async def test_names_that_are_not_saved_conversations_are_refused_in_a_sentence(kernel, api, line, said):
    run = await kernel.run(f"%llm_config {line}")

    assert said in run.stderr()
    assert (await api.get("sessions")).json()["sessions"] == []


async def test_a_name_that_begins_two_sessions_says_which_there_are(kernel):
    await quiet(kernel, "%%llm\nfirst", cell_id="c1")
    one = saved_id((await quiet(kernel, "%llm_config --save analysis_a")).stdout())
    two = saved_id((await quiet(kernel, "%llm_config --save analysis_b")).stdout())

    run = await kernel.run("%llm_config --load analysis")

    assert "'analysis' begins 2 saved conversations" in run.stderr() and one in run.stderr() and two in run.stderr()


async def test_sessions_route_refuses_paths_and_names_of_the_wrong_shape(api):
    async with api.client() as c:
        outside = await c.post(api.url("sessions"), json={"conversation": "../outside.ipynb"})
        absolute = await c.post(api.url("sessions"), json={"conversation": "/etc/passwd"})
        bad_name = await c.post(api.url("sessions"), json={"conversation": "a.ipynb", "name": "a/b"})
        extra = await c.post(api.url("sessions"), json={"conversation": "a.ipynb", "api_base": "x"})
        encoded = await c.post(api.url("sessions/..%2F..%2Fx/load"), json={"conversation": "a.ipynb"})

    assert [r.status_code for r in (outside, absolute, bad_name, extra, encoded)] == [400] * 5
    assert "outside this server's root" in absolute.json()["message"]
    assert "name" in bad_name.json()["message"]


async def test_a_person_keeps_at_most_so_many_sessions(api, monkeypatch):
    import cellmage_server.store.sessions as sessions

    monkeypatch.setattr(sessions, "MAX_SESSIONS", 2)
    async with api.client() as c:
        made = [await c.post(api.url("sessions"), json={"conversation": "a.ipynb", "name": "s"}) for _ in range(3)]

    assert [r.status_code for r in made] == [201, 201, 409]
    assert "delete one first" in made[2].json()["message"]
    assert made[0].json()["id"] != made[1].json()["id"]  # the same second gets a suffix, not the same id


class TestEachPersonsOwn:
    @pytest.fixture
    def jp_server_config(self, cellmage_config: Any) -> dict[str, Any]:
        return {"ServerApp": {"jpserver_extensions": {"cellmage_server": True},
                              "allow_unauthenticated_access": False, "identity_provider_class": NamedUsers}}

    async def test_nobody_lists_loads_replaces_or_deletes_another_persons_session(self, api, fake_upstream):
        async with api.client() as alice, api.client() as bob:
            alice.headers["X-Test-User"] = "alice"
            bob.headers["X-Test-User"] = "bob"
            await alice.post(api.url("chat"), json={"prompt": "alice's secret plan", "stream": False,
                                                    "conversation": "team/shared.ipynb", "cell_id": "c1"})
            saved = (await alice.post(api.url("sessions"), json={"conversation": "team/shared.ipynb", "name": "plan"})).json()
            session = saved["id"]

            assert (await bob.get(api.url("sessions"))).json()["sessions"] == []
            load = await bob.post(api.url(f"sessions/{session}/load"), json={"conversation": "bob/mine.ipynb"})
            prefix = await bob.post(api.url("sessions/plan/load"), json={"conversation": "bob/mine.ipynb"})
            put = await bob.put(api.url(f"sessions/{session}"), json={"conversation": "bob/mine.ipynb"})
            delete = await bob.delete(api.url(f"sessions/{session}"))

            assert [r.status_code for r in (load, prefix, put, delete)] == [404] * 4
            assert "alice" not in load.text and session not in prefix.text  # nothing of hers is named
            assert (await api.get("conversations/bob/mine.ipynb")).json()["turns"] == []
            mine = (await alice.get(api.url("sessions"))).json()["sessions"]
            assert [(s["id"], s["turns"]) for s in mine] == [(session, 1)]
            assert (await alice.post(api.url(f"sessions/{session}/load"), json={"conversation": "a/b.ipynb"})).status_code == 200
