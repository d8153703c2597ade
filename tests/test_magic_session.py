"""What `%load_ext cellmage_server` costs a kernel and what `%llm_config --persona none` does, in
a real kernel started through the server."""

from __future__ import annotations

from .fake_upstream import FakeUpstream
from .kernel import Kernel

# httpx and what it brings; they come with the first answer, not with %load_ext.
HTTP_MODULES = ("httpx", "httpcore", "httpx_sse", "anyio", "h11")
LOADED = f"import sys; print(sorted(m for m in {HTTP_MODULES!r} if m in sys.modules))"


async def _run(kernel: Kernel, code: str) -> str:
    run = await kernel.run(code)
    assert not run.errors() and not run.stderr(), (code, run.errors(), run.stderr())
    return run.stdout()


async def test_load_ext_imports_no_httpx_and_the_first_answer_does(kernel, fake_upstream):
    before = await _run(kernel, LOADED)
    await _run(kernel, "%load_ext cellmage_server")
    after_load = await _run(kernel, LOADED)
    await _run(kernel, "%%llm\nx")
    after_answer = await _run(kernel, LOADED)

    assert before == after_load == "[]\n"
    assert "'httpx'" in after_answer  # the check sees httpx once something has imported it


def _system_prompts(fake: FakeUpstream) -> list[str]:
    return [m["content"] for m in fake.received[-1].body["messages"] if m["role"] == "system"]


async def test_persona_none_clears_the_kernels_persona(kernel, fake_upstream):
    await _run(kernel, "%load_ext cellmage_server")
    await _run(kernel, "%llm_config --persona teacher")
    await _run(kernel, "%%llm --no-history\nx")
    assert len(_system_prompts(fake_upstream)) == 1  # the teacher's prompt went out

    cleared = await _run(kernel, "%llm_config --persona none")
    await _run(kernel, "%%llm --no-history\nx")
    summary = await _run(kernel, "%llm_config")

    assert cleared == "CellMage: no persona.\n"
    assert _system_prompts(fake_upstream) == []  # no persona's prompt any more
    assert "persona none" in summary
