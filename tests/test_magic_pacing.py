"""The magic shows words at once and keeps showing them while they come; a failed or stopped
answer is a failed cell, so queued cells do not run. Real kernel, real server, paced fake provider."""

from __future__ import annotations

import time

import pytest

from .conftest import tutorial_models_toml
from .fake_upstream import FakeUpstream, Script
from .helpers import loaded, streamed_before_the_answer


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return tutorial_models_toml(fake_upstream)


async def test_the_first_words_show_before_the_providers_next_chunk(kernel, fake_upstream):
    await loaded(kernel)
    fake_upstream.script(Script(chunks=["first words ", "after a pause"], interval=2.0))
    seen: dict[str, float] = {}

    async def watch(msg, run):
        if msg["msg_type"] == "stream" and "first words" in run.stdout():
            seen.setdefault("first", time.monotonic())

    await kernel.run("%%llm --stream\nhi", on_message=watch)

    chunks = fake_upstream.received[-1].chunk_times[1:]  # the first chunk only says the role
    # Shown while the provider was still silent, not held until its second chunk 2 s later
    assert seen["first"] < chunks[1]
    assert seen["first"] - chunks[0] < 1.0


async def test_text_keeps_showing_at_least_ten_times_a_second_but_not_per_token(kernel, fake_upstream):
    await loaded(kernel)
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(150)], interval=0.02))  # ~3 s of tokens

    run = await kernel.run("%%llm --stream\nhi")

    streamed = [m for m in run.of_type("stream") if m["content"]["name"] == "stdout"]
    times = fake_upstream.received[-1].chunk_times
    seconds = times[-1] - times[0]
    # Ten times a second while text keeps coming: the kernel sent its updates (by the time each
    # message says it was sent) at most 0.1 s apart, give or take its event loop's wake-up
    sent = [m["header"]["date"].timestamp() for m in streamed]
    gaps = sorted(b - a for a, b in zip(sent, sent[1:]))
    assert gaps and gaps[int(0.9 * len(gaps))] <= 0.125, gaps[-5:]
    assert len(streamed) >= 0.85 * 10 * seconds
    assert len(streamed) <= 12 * seconds + 2  # and no more often: traffic stays linear
    # In order, each word once (what was still pending at the end is in the final answer instead)
    shown = "".join(m["content"]["text"] for m in streamed)
    assert "".join(f"w{i} " for i in range(150)).startswith(shown) and len(shown) > 500
    assert run.markdown()[-1].startswith("".join(f"w{i} " for i in range(150)).strip())


async def test_a_provider_error_fails_the_cell_and_queued_cells_do_not_run(kernel, fake_upstream):
    await loaded(kernel)
    fake_upstream.script(Script(chunks=["partial ", "more ", "lost"], interval=0.05, drop_after=2))

    first = kernel.client.execute("%%llm --stream\nx")
    second = kernel.client.execute("queued_cell_ran = True")
    replies = {}
    deadline = time.monotonic() + 30
    while len(replies) < 2 and time.monotonic() < deadline:
        reply = await kernel.client.get_shell_msg(timeout=30)
        replies[reply["parent_header"]["msg_id"]] = reply["content"]

    assert replies[first]["status"] == "error"
    assert replies[first]["traceback"][0].startswith("CellMage: The provider's connection broke mid-answer.")
    assert replies[second]["status"] == "aborted"
    check = await kernel.run("print('queued_cell_ran' in dir())")
    assert check.stdout().strip() == "False"


async def test_show_history_is_one_line_per_turn_however_long_the_answers(notebook_kernel, fake_upstream):
    kernel = await loaded(notebook_kernel)
    fake_upstream.script(*(Script(chunks=["x" * 50_000]) for _ in range(3)))
    for cell in ("a", "b", "c"):
        await kernel.run(f"%%llm\nquestion {cell}\nsecond line", cell_id=f"cell-{cell}")

    shown = (await kernel.run("%llm_config --show-history")).stdout()

    assert len(shown) < 1000  # 150,000 characters of answers, summarised
    assert [line.split(" · ")[-1] for line in shown.splitlines()[:3]] == ["question a", "question b", "question c"]


async def test_a_frontend_that_follows_the_placeholder_gets_the_answer_live(notebook_kernel, api, fake_upstream):
    """With a listening frontend (here: the test, as the lab plugin does), the placeholder's id
    gives the answer's text while it streams; without one, the stdout text is the answer. Both are
    the stored answer's text, and a second ask on the answering cell is refused meanwhile."""
    import asyncio
    import json

    from httpx_sse import EventSource

    kernel = await loaded(notebook_kernel)
    chunks = [f"w{i} " for i in range(40)]
    fake_upstream.script(Script(chunks=chunks, interval=0.05))
    followed: dict[str, object] = {}

    async def follow(answer_id: str) -> None:
        async with api.client() as c:
            busy = await c.post(api.url("chat"), json={"prompt": "again", "conversation": "study/notes.ipynb", "cell_id": "cell-x"})
            followed["busy"] = busy.status_code
            async with c.stream("GET", api.url(f"answers/{answer_id}/events")) as response:
                events = [(sse.event, json.loads(sse.data)) async for sse in EventSource(response).aiter_sse()]
        followed["events"] = events

    tasks = []

    async def watch(msg, run):
        data = msg["content"].get("data", {}) if msg["msg_type"] == "display_data" else {}
        mark = data.get("application/vnd.cellmage.answer+json", {}).get("answer", {})
        if mark.get("live"):
            followed["start"] = time.monotonic()
            tasks.append(asyncio.ensure_future(follow(mark["id"])))

    run = await kernel.run("%%llm --stream\nhi", cell_id="cell-x", on_message=watch)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)

    events = followed["events"]
    live_text = "".join(d["text"] for name, d in events if name == "delta")
    stored = run.of_type("display_data")[-1]["content"]["data"]["application/vnd.cellmage.answer+json"]["markdown"]
    assert events[0][1]["running"] is True  # followed while it streamed, not read after
    assert live_text == "".join(chunks)
    assert live_text.startswith(streamed_before_the_answer(run))  # (the last bit: in the stored answer)
    assert stored.startswith(live_text.strip())
    assert events[-1][0] == "done"
    assert followed["busy"] == 409
