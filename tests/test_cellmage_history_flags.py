"""`--no-history` as CellMage means it (the cell sees the history; its exchange is left out of it),
`--alone` (this project's earlier `--no-history`: the prompt without earlier turns, kept in the
history) and `--no-rollback` (a re-run keeps the cell's earlier exchange and adds one), cells in a
real kernel for a notebook against a real server, and the toolbar's wire fields behind them."""

from __future__ import annotations

import pytest

from .fake_upstream import FakeUpstream, Script
from .tutorial_cells import NOTEBOOK, notebook_kernel, prompts, quiet


@pytest.fixture
def kernel(api, jp_serverapp, jp_asyncio_loop):
    k = jp_asyncio_loop.run_until_complete(notebook_kernel(api, jp_serverapp))
    yield k
    jp_asyncio_loop.run_until_complete(k.stop())


async def turns(api) -> list[tuple[str, str]]:
    return [(t["cell_id"], t["prompt"].strip()) for t in (await api.get(f"conversations/{NOTEBOOK}")).json()["turns"]]


async def test_no_history_sees_the_history_and_stays_out_of_it(kernel, api, fake_upstream: FakeUpstream):
    fake_upstream.script(Script(chunks=["A good prompt is clear."]))
    await quiet(kernel, "%%llm\nExplain what makes a good prompt for an LLM.", cell_id="a")

    await quiet(kernel, "%%llm --no-history\nAn aside: what is a token?", cell_id="b")
    assert prompts(fake_upstream) == ["Explain what makes a good prompt for an LLM.", "An aside: what is a token?"]
    assert await turns(api) == [("a", "Explain what makes a good prompt for an LLM.")]

    await quiet(kernel, "%%llm\nGive me 3 examples of what you just explained.", cell_id="c")
    assert prompts(fake_upstream) == ["Explain what makes a good prompt for an LLM.", "Give me 3 examples of what you just explained."]


async def test_a_rerun_with_no_history_takes_the_cells_earlier_turn_away(kernel, api):
    await quiet(kernel, "%%llm\nfirst version", cell_id="a")
    await quiet(kernel, "%%llm\nsecond cell", cell_id="b")

    await quiet(kernel, "%%llm --no-history\nfirst version, not kept", cell_id="a")

    assert await turns(api) == [("b", "second cell")]


async def test_alone_sends_the_prompt_without_earlier_turns_and_keeps_it(kernel, api, fake_upstream):
    await quiet(kernel, "%%llm\nfirst", cell_id="a")

    await quiet(kernel, "%%llm --alone\nsecond, alone", cell_id="b")

    assert prompts(fake_upstream) == ["second, alone"] and len(fake_upstream.received[-1].body["messages"]) == 1
    assert await turns(api) == [("a", "first"), ("b", "second, alone")]


async def test_no_rollback_keeps_the_cells_earlier_turn_and_adds_one(kernel, api, fake_upstream):
    fake_upstream.script(Script(chunks=["v1 answer"]))
    await quiet(kernel, "%%llm\nDraft a function.", cell_id="a")

    await quiet(kernel, "%%llm --no-rollback\nNow make it faster.", cell_id="a")

    # The re-run saw the cell's own earlier exchange, and both stay
    assert prompts(fake_upstream) == ["Draft a function.", "Now make it faster."]
    kept = await turns(api)
    assert [p for _, p in kept] == ["Draft a function.", "Now make it faster."]
    assert kept[0][0] == "a" and kept[1][0].startswith("a-r")
    # A plain re-run rolls back the cell's own turn only (it now sees the kept one before it)
    await quiet(kernel, "%%llm\nDraft a function, v3.", cell_id="a")
    assert [p for _, p in await turns(api)] == ["Draft a function, v3.", "Now make it faster."]


async def test_the_wire_fields_behind_the_flags(api, fake_upstream):
    base = {"prompt": "x", "stream": False, "conversation": "w.ipynb"}
    await api.post("chat", base | {"cell_id": "a"})

    await api.post("chat", base | {"cell_id": "b", "remember": False})
    after_forget = (await api.get("conversations/w.ipynb")).json()["turns"]
    await api.post("chat", base | {"cell_id": "a", "rollback": False, "prompt": "y"})
    after_keep = (await api.get("conversations/w.ipynb")).json()["turns"]
    wrong = await api.post("chat", base | {"remember": "no"})

    assert [t["cell_id"] for t in after_forget] == ["a"]
    assert [t["prompt"] for t in after_keep] == ["x", "y"]
    assert wrong.status_code == 400
