"""The magic shows words at once and keeps showing them while they come; a failed or stopped
answer is a failed cell, so queued cells do not run. Real kernel, real server, paced fake provider."""

from __future__ import annotations

import time

from .fake_upstream import Script
from .test_magics import cellmage_toml, kernel, loaded, notebook_kernel  # noqa: F401 (fixtures)


async def test_the_first_words_show_before_the_providers_next_chunk(kernel, fake_upstream):  # noqa: F811
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


async def test_text_keeps_showing_at_least_ten_times_a_second_but_not_per_token(kernel, fake_upstream):  # noqa: F811
    await loaded(kernel)
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(150)], interval=0.02))  # ~3 s of tokens

    run = await kernel.run("%%llm --stream\nhi")

    streamed = [m for m in run.of_type("stream") if m["content"]["name"] == "stdout"]
    times = fake_upstream.received[-1].chunk_times
    seconds = times[-1] - times[0]
    assert len(streamed) >= 0.5 * 10 * seconds  # a timer flushes about every 0.1 s (slack for a loaded machine; the old pace was 2 a second)
    assert len(streamed) <= 12 * seconds + 2  # and no more often: traffic stays linear
    # In order, each word once (what was still pending at the end is in the final answer instead)
    shown = "".join(m["content"]["text"] for m in streamed)
    assert "".join(f"w{i} " for i in range(150)).startswith(shown) and len(shown) > 500
    assert run.markdown()[-1].startswith("".join(f"w{i} " for i in range(150)).strip())


async def test_a_provider_error_fails_the_cell_and_queued_cells_do_not_run(kernel, fake_upstream):  # noqa: F811
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
    assert replies[first]["traceback"][0].startswith("CellMage: Error (upstream):")
    assert replies[second]["status"] == "aborted"
    check = await kernel.run("print('queued_cell_ran' in dir())")
    assert check.stdout().strip() == "False"


async def test_show_history_is_one_line_per_turn_however_long_the_answers(notebook_kernel, fake_upstream):  # noqa: F811
    kernel = await loaded(notebook_kernel)
    fake_upstream.script(*(Script(chunks=["x" * 50_000]) for _ in range(3)))
    for cell in ("a", "b", "c"):
        await kernel.run(f"%%llm\nquestion {cell}\nsecond line", cell_id=f"cell-{cell}")

    shown = (await kernel.run("%llm_config --show-history")).stdout()

    assert len(shown) < 1000  # 150,000 characters of answers, summarised
    assert [line.split(" · ")[-1] for line in shown.splitlines()[:3]] == ["question a", "question b", "question c"]
