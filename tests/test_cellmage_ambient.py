"""Ambient mode (CellMage's `%llm_config_persistent` / `%disable_llm_config_persistent` and
`%%py`) in a real kernel against a real server: every following code cell the person runs is a
prompt, asked as a `%%llm` cell; magics, shell lines, `%%py` and executions nobody typed (silent
ones) run as Python."""

from __future__ import annotations

import pytest

from .fake_upstream import FakeUpstream
from .tutorial_cells import NOTEBOOK, notebook_kernel, prompts, quiet


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    from .conftest import KEY_ENV

    models = "".join(
        f'\n[models."{alias}"]\nmodel = "openai/{alias}"\napi_base = "{fake_upstream.url}"\napi_key_env = "{KEY_ENV}"\n'
        for alias in ("gpt-4o-mini", "gpt-4o")
    )
    return f'default_model = "gpt-4o-mini"\n{models}'


@pytest.fixture
def kernel(api, jp_serverapp, jp_asyncio_loop):
    k = jp_asyncio_loop.run_until_complete(notebook_kernel(api, jp_serverapp))
    yield k
    jp_asyncio_loop.run_until_complete(k.stop())


async def test_every_code_cell_is_a_prompt_until_ambient_mode_ends(kernel, api, fake_upstream):
    on = await quiet(kernel, "%llm_config_persistent --model gpt-4o --persona teacher")
    assert "ambient mode is on" in on.stdout() and "model set to gpt-4o" in on.stdout()

    asked = await quiet(kernel, "Explain recursion with one example.\n>>> f(3)\n    indented, as written", cell_id="c1")
    body = fake_upstream.received[-1].body
    assert body["model"] == "gpt-4o" and body["messages"][0]["role"] == "system"  # the kernel's defaults
    assert body["messages"][-1]["content"] == "Explain recursion with one example.\n>>> f(3)\n    indented, as written"
    assert asked.markdown()  # shown as an answer, like a %%llm cell's
    turns = (await api.get(f"conversations/{NOTEBOOK}")).json()["turns"]
    assert [t["cell_id"] for t in turns] == ["c1"]  # a turn of the notebook's conversation

    before = len(fake_upstream.received)
    python = await quiet(kernel, "%%py\nx = 6 * 7\nprint(x)")
    magic = await quiet(kernel, "%who int")
    shell = await quiet(kernel, "!echo from the shell")
    assert python.stdout() == "42\n" and magic.stdout().split() == ["x"] and "from the shell" in shell.stdout()
    assert len(fake_upstream.received) == before  # none of those was asked
    assert "ambient mode on" in (await quiet(kernel, "%llm_config --status")).stdout()

    off = await quiet(kernel, "%disable_llm_config_persistent")
    assert "ambient mode is off" in off.stdout()
    assert (await quiet(kernel, "print(x + 1)")).stdout() == "43\n"
    assert len(fake_upstream.received) == before
    assert prompts(fake_upstream) == ["Explain recursion with one example.\n>>> f(3)\n    indented, as written"]


async def test_an_execution_nobody_typed_is_never_a_prompt(kernel, fake_upstream):
    await quiet(kernel, "%llm_config_persistent")
    before = len(fake_upstream.received)

    # A frontend's or an extension's background code: silent, or not stored in the history
    for code, how in (("ambient_probe = 'ran as Python'", {"silent": True}), ("ambient_probe += ', twice'", {"store_history": False})):
        msg_id = kernel.client.execute(code, **how)
        reply = await kernel.client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
    shown = await quiet(kernel, "%%py\nprint(ambient_probe)")

    assert shown.stdout() == "ran as Python, twice\n"
    assert len(fake_upstream.received) == before


async def test_a_failing_py_cell_fails_so_run_all_stops(kernel):
    await quiet(kernel, "%llm_config_persistent")

    run = await kernel.run("%%py\n1 / 0")

    assert run.reply["status"] == "error"
    assert any("ZeroDivisionError" in e["ename"] for e in run.errors())
