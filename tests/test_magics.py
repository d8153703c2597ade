"""%%llm and %llm_config in a real IPython kernel started through the Jupyter server, answering
through the server's endpoint from the fake upstream: every line of the streaming tutorial."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import KEY_ENV, SECRET, tutorial_models_toml
from .fake_upstream import FakeUpstream, Script
from .helpers import loaded, streamed_before_the_answer

ANSWER = "application/vnd.cellmage.answer+json"

PACED = Script(chunks=[f"word{i} " for i in range(12)], interval=0.1)


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return tutorial_models_toml(fake_upstream)


async def test_the_tutorials_streaming_cells_work_verbatim(kernel, fake_upstream):
    await loaded(kernel)

    # Step 1: basic streaming
    fake_upstream.script(PACED)
    run = await kernel.run("%%llm --stream\nWrite a brief explanation of quantum computing for beginners.")
    assert run.reply["status"] == "ok" and not run.errors()
    assert len(run.of_type("stream")) >= 2  # text arrived while it was written, in pieces
    assert streamed_before_the_answer(run).startswith("word0 ")
    assert run.markdown()[-1].startswith("".join(PACED.chunks).rstrip())
    assert fake_upstream.received[-1].body["messages"][-1]["content"].startswith("Write a brief explanation")

    # Step 2: with a temperature
    run = await kernel.run("%%llm --stream --temperature 0.8\nWrite a short science fiction story.")
    assert fake_upstream.received[-1].body["temperature"] == 0.8
    assert "Hello, world" in run.markdown()[-1]

    # Step 3: other models
    await kernel.run("%%llm --stream --model gpt-3.5-turbo\nExplain how neural networks learn.")
    assert fake_upstream.received[-1].body["model"] == "gpt-3.5-turbo"
    await kernel.run("%%llm --stream --model gpt-4o\nAnalyze the historical evolution of programming paradigms.")
    assert fake_upstream.received[-1].body["model"] == "gpt-4o"

    # Step 4: streaming by default, and a cell that opts out
    run = await kernel.run("%llm_config --stream-by-default True")
    assert "stream by default" in run.stdout()
    fake_upstream.script(PACED)
    run = await kernel.run("%%llm\nWhat are the major schools of thought in macroeconomics?")
    assert streamed_before_the_answer(run)
    assert fake_upstream.received[-1].body["model"] == "gpt-4o-mini"  # the earlier --model did not stick
    fake_upstream.script(PACED)
    run = await kernel.run("%%llm --no-stream\nGive me a brief definition of blockchain.")
    assert streamed_before_the_answer(run) == ""  # nothing until it was complete
    assert run.markdown()[-1].startswith("word0 word1")

    # Step 5: a persona
    run = await kernel.run("%llm_config --persona code_expert")
    assert "persona set to code_expert" in run.stdout()
    run = await kernel.run("%%llm --stream\nWhat's the best way to handle asynchronous operations in JavaScript?")
    sent = fake_upstream.received[-1].body["messages"]
    assert sent[0]["role"] == "system" and "senior software engineer" in sent[0]["content"]
    run = await kernel.run("%%llm --stream --temperature 0.9\nGenerate five creative names for a fantasy bookstore.")
    assert fake_upstream.received[-1].body["temperature"] == 0.9

    # Step 6: a prompt that holds code with braces and a fenced block
    cell = (
        "%%llm --stream\nI want you to perform a detailed code review of this Python function:\n\n"
        "```ipython\ndef f(d):\n    return {k: v for k, v in d.items()}\n```\n"
    )
    run = await kernel.run(cell)
    assert run.reply["status"] == "ok"
    assert "return {k: v for k, v in d.items()}" in fake_upstream.received[-1].body["messages"][-1]["content"]


async def test_the_answer_ends_as_one_markdown_output_with_a_status_line(kernel, fake_upstream):
    await loaded(kernel)
    fake_upstream.script(PACED)

    run = await kernel.run("%%llm --stream\nhi")

    displays = run.of_type("display_data")
    # The live placeholder (the lab plugin follows the answer by its id), then the stored answer.
    assert len(displays) == 2
    placeholder = displays[0]["content"]["data"]
    assert set(placeholder) == {"text/plain", "application/vnd.cellmage.answer+json"}
    mark = placeholder["application/vnd.cellmage.answer+json"]
    assert mark["markdown"] == "" and mark["answer"]["live"] is True and len(mark["answer"]["id"]) == 32
    data = displays[1]["content"]["data"]
    assert set(data) == {"text/html", "application/vnd.cellmage.answer+json"}  # HTML we wrote, no JavaScript
    assert data["application/vnd.cellmage.answer+json"]["answer"] == {"id": mark["answer"]["id"]}
    assert "<p>word0 word1" in data["text/html"] and "gpt-4o-mini · 7 → 3 tokens" in data["text/html"]
    text = data["application/vnd.cellmage.answer+json"]["markdown"]
    assert text.startswith("word0 word1")
    assert "gpt-4o-mini · 7 → 3 tokens" in re.sub(r"\\(.)", r"\1", text.splitlines()[-1])  # as rendered
    assert run.of_type("clear_output")[0]["content"]["wait"] is True  # the stream is replaced, no flicker


async def test_the_answer_is_a_python_value_too(kernel):
    await loaded(kernel)

    await kernel.run("%%llm -o greeting\nhi")
    run = await kernel.run("print(repr(_llm), repr(greeting))")

    assert run.stdout().strip() == "'Hello, world' 'Hello, world'"


async def test_variables_are_interpolated_and_other_braces_pass_through(kernel, fake_upstream):
    await loaded(kernel)
    await kernel.run("name = 'Ada'; n = 3")

    run = await kernel.run('%%llm\nGreet {name} {n} times. JSON: {"a": {"b": 1}}, empty {}, unknown {nobody}, f"{{x}}"')

    assert run.reply["status"] == "ok" and not run.errors()
    sent = fake_upstream.received[-1].body["messages"][-1]["content"]
    assert sent.rstrip("\n") == 'Greet Ada 3 times. JSON: {"a": {"b": 1}}, empty {}, unknown {nobody}, f"{{x}}"'


async def test_a_bad_flag_gets_the_usage_line_not_a_traceback(kernel, fake_upstream):
    await loaded(kernel)

    for line in ("%%llm --colour red", "%%llm --temperature hot", "%%llm --stream --no-stream"):
        run = await kernel.run(f"{line}\nhi")
        assert run.reply["status"] == "ok" and not run.errors()
        assert "usage: %%llm" in run.stderr()
    run = await kernel.run("%llm_config --bogus")
    assert "Traceback" not in json.dumps(run.messages, default=str) and "usage: %llm_config" in run.stderr()
    assert fake_upstream.received == []


async def test_an_interrupt_stops_the_provider_keeps_the_text_and_forgets_the_cells_flags(kernel, fake_upstream):
    await loaded(kernel)
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(100)], interval=0.05))
    interrupted = False

    async def stop_after_some_text(msg, run):
        nonlocal interrupted
        if not interrupted and msg["msg_type"] == "stream" and "t1" in run.stdout():
            interrupted = True
            await kernel.interrupt()  # the stop button

    run = await kernel.run("%%llm --stream --model gpt-4o --temperature 1.5\nlong", on_message=stop_after_some_text)

    assert interrupted
    # The cell ends in error (so Run All stops), in one line, not a traceback wall
    assert run.reply["status"] == "error"
    assert [e["traceback"] for e in run.errors()] == [["CellMage: the answer was stopped; the text that arrived is above."]]
    text = run.markdown()[-1]
    assert text.startswith("t0 t1 ") and "Stopped" in text
    upstream = fake_upstream.received[-1]
    assert await fake_upstream.until(lambda: upstream.closed_by_client is not None)
    assert len(upstream.chunk_times) < 50  # the provider stopped long before its end
    # The interrupted cell's --model and --temperature did not stick
    await kernel.run("%%llm\nnext")
    assert fake_upstream.received[-1].body["model"] == "gpt-4o-mini"
    assert "temperature" not in fake_upstream.received[-1].body


async def test_an_error_mid_stream_keeps_the_partial_answer(kernel, fake_upstream):
    await loaded(kernel)
    fake_upstream.script(Script(chunks=["partial ", "answer ", "lost"], interval=0.05, drop_after=2))

    run = await kernel.run("%%llm --stream\nx")

    text = run.markdown()[-1]
    assert text.startswith("partial answer")
    shown = re.sub(r"\\(.)", r"\1", text)  # as rendered: the message is backslash-escaped Markdown
    # Said once, in plain words, with what to do: no status line, no transport jargon
    assert shown.endswith("**The provider's connection broke mid-answer.** Run the cell again; if it keeps failing, ask whoever runs this Jupyter server.")
    assert "chunked" not in shown and "(upstream)" not in shown


async def test_an_unknown_model_says_so_in_one_line(kernel, fake_upstream):
    await loaded(kernel)

    run = await kernel.run("%%llm --model gpt-9\nx")

    assert run.reply["status"] == "error"
    [error] = run.errors()
    assert len(error["traceback"]) == 1  # one line, no traceback wall
    assert "Unknown model 'gpt-9'" in error["traceback"][0] and "HTTP" not in error["traceback"][0]
    # ... shown as the lab plugin shows a refusal (which hides the line above: said once there)
    [problem] = [m["content"]["data"] for m in run.of_type("display_data")]
    assert problem[ANSWER]["problem"] is True and "Unknown model \\'gpt\\-9\\'" in problem[ANSWER]["markdown"]


async def test_no_reachable_server_is_one_clear_message(kernel):
    await kernel.run("import os; os.environ['CELLMAGE_SERVER_URL'] = 'http://127.0.0.1:9/'")
    await loaded(kernel)

    run = await kernel.run("%%llm\nx")

    [error] = run.errors()
    assert error["traceback"] == [f"CellMage: {error['evalue']}"]
    assert "cannot reach the Jupyter server at http://127.0.0.1:9/" in error["evalue"]


async def test_llm_config_lists_and_shows(kernel):
    await loaded(kernel)

    models = (await kernel.run("%llm_config --list-models")).stdout()
    personas = (await kernel.run("%llm_config --list-personas")).stdout()
    status = (await kernel.run("%llm_config --status")).stdout()
    await kernel.run("%llm_config --persona teacher --model gpt-4o")
    shown = (await kernel.run("%llm_config --show-persona")).stdout()
    summary = (await kernel.run("%llm_config")).stdout()
    refused = (await kernel.run("%llm_config --model gpt-9")).stderr()

    assert "* gpt-4o-mini" in models and "gpt-3.5-turbo" in models
    assert "code_expert" in personas and "teacher" in personas
    assert "cellmage-server" in status and "3 model(s) available" in status
    assert shown.startswith("teacher: ")
    assert "model gpt-4o" in summary and "persona teacher" in summary
    assert "no model 'gpt-9'" in refused


async def test_the_kernel_holds_no_provider_key_and_loads_nothing_heavy(kernel):
    await loaded(kernel)
    await kernel.run("%%llm\nx")

    run = await kernel.run(
        "import os, sys\n"
        f"print(os.environ.get('{KEY_ENV}'), any('{SECRET}' in v for v in os.environ.values()))\n"
        "print(sorted(m for m in ('litellm', 'jupyter_server', 'pydantic_settings', 'tornado.web') if m in sys.modules))"
    )

    assert run.stdout().split("\n")[:2] == ["None False", "[]"]


async def test_toolbar_and_magic_share_the_notebooks_conversation(notebook_kernel, api, fake_upstream):
    kernel = await loaded(notebook_kernel)
    fake_upstream.script(Script(chunks=["toolbar answer"]), Script(chunks=["magic answer"]), Script(chunks=["again"]))
    # A toolbar turn: the browser sends the notebook's path and the cell's id
    await api.stream({"prompt": "from the toolbar", "conversation": "study/notes.ipynb", "cell_id": "cell-a"})

    # Then a magic turn in the notebook's kernel sees it
    await kernel.run("%%llm\nfrom the magic", cell_id="cell-b")
    assert [(m["role"], m["content"].strip()) for m in fake_upstream.received[-1].body["messages"]] == [
        ("user", "from the toolbar"), ("assistant", "toolbar answer"), ("user", "from the magic"),
    ]

    # Re-running the magic cell replaces its turn; --alone sends the prompt alone
    await kernel.run("%%llm --alone\nfrom the magic, again", cell_id="cell-b")
    assert len(fake_upstream.received[-1].body["messages"]) == 1
    shown = (await kernel.run("%llm_config --show-history")).stdout()
    lines = shown.splitlines()
    assert lines[0].startswith("  1. gpt-4o-mini · 7 → 3 tokens · cell cell-a · from the toolbar")
    assert lines[1].startswith("  2. gpt-4o-mini") and lines[1].endswith("from the magic, again")
    full = (await kernel.run("%llm_config --show-turn 1")).markdown()
    assert full and "toolbar answer" in full[0] and "from the toolbar" in full[0]
    tokens = (await kernel.run("%llm_config --tokens")).stdout()
    assert "2 turn(s), 14 prompt + 6 completion tokens" in tokens

    cleared = (await kernel.run("%llm_config --clear-history")).stdout()
    assert "cleared" in cleared
    assert "is empty" in (await kernel.run("%llm_config --show-history")).stdout()


@pytest.mark.parametrize("how", ["cut", "drop"])
async def test_a_stream_that_ends_without_done_is_marked_cut_short(kernel, fake_upstream, how):
    # Given an endpoint whose stream ends after some text without `done` (closed, or broken)
    await kernel.run(f"import os; os.environ['CELLMAGE_SERVER_URL'] = 'http://127.0.0.1:{fake_upstream.port}/{how}/'")
    await loaded(kernel)

    run = await kernel.run("%%llm --stream\nx")

    # Then the text is kept and marked: it is not taken for a whole answer
    text = run.markdown()[-1]
    assert text.startswith("looks complete.")
    assert "connection to the Jupyter server closed before the answer finished" in re.sub(r"\\(.)", r"\1", text)
    assert run.reply["status"] == "error"  # and the cell failed, so Run All stops


async def test_a_cell_id_of_another_shape_keys_its_turn_by_digest_and_never_goes_out_raw(notebook_kernel, api, fake_upstream):
    # Given a frontend whose cell ids are not nbformat ids (VS Code's, or a hostile notebook's)
    kernel = await loaded(notebook_kernel)
    raw = "vscode-notebook-cell:/home/ada/study/notes.ipynb#W1sZmlsZQ==/../../x?y"
    fake_upstream.script(Script(chunks=["first"]), Script(chunks=["second"]))

    # When that cell asks twice
    first = await kernel.run("%%llm\nfrom the odd cell", cell_id=raw)
    again = await kernel.run("%%llm\nfrom the odd cell, again", cell_id=raw)

    # Then both answers came (the server took the request), the re-run replaced the cell's turn,
    # and the turn's key is a digest in nbformat's shape, not the raw value
    assert first.reply["status"] == again.reply["status"] == "ok"
    turns = (await api.get("conversations/study%2Fnotes.ipynb")).json()["turns"]
    assert [t["prompt"].strip() for t in turns] == ["from the odd cell, again"]
    assert re.fullmatch(r"h-[0-9a-f]{40}", turns[0]["cell_id"])


def _placeholder_texts(run) -> list[str]:
    """What the answer's placeholder said, in order, where the lab plugin is not (its text/plain)."""
    return [
        m["content"]["data"]["text/plain"]
        for m in run.messages
        if m["msg_type"] in ("display_data", "update_display_data") and m["content"].get("transient", {}).get("display_id")
    ]


@pytest.mark.parametrize("flag", ["--no-stream", "--stream"])
async def test_while_nothing_has_come_the_cell_says_it_waits_with_the_seconds(kernel, fake_upstream, flag):
    await loaded(kernel)
    fake_upstream.script(Script(chunks=["late ", "words"], first_delay=2.5, interval=0.05))

    run = await kernel.run(f"%%llm {flag}\nx")

    said = _placeholder_texts(run)
    # From the start, the model's name and the seconds, once a second
    assert said[:3] == ["waiting for gpt-4o-mini… 0 s", "waiting for gpt-4o-mini… 1 s", "waiting for gpt-4o-mini… 2 s"], said
    if flag == "--stream":
        assert said[-1] == ""  # the first words replaced it
    else:
        assert said[-1].startswith("gpt-4o-mini is writing…")  # until the whole answer shows
    # The placeholder carries the answer's id for the lab plugin, quiet without --stream
    marks = [m["content"]["data"][ANSWER] for m in run.messages if m["msg_type"] == "display_data" and ANSWER in m["content"]["data"]]
    assert marks[0]["answer"]["live"] is True and marks[0]["answer"].get("quiet", False) is (flag == "--no-stream")
    assert run.markdown()[-1].startswith("late words")
