"""``%load_ext cellmage_server`` says in one line whether it is ready: which server, the default
model, or what to do first; and it imports no httpx."""

from __future__ import annotations

import pytest

from .kernel import Kernel


@pytest.fixture
def kernel(api, jp_serverapp, jp_asyncio_loop):
    k = Kernel(api, jp_serverapp)
    jp_asyncio_loop.run_until_complete(k.start())
    yield k
    jp_asyncio_loop.run_until_complete(k.stop())


async def test_load_ext_says_ready_with_the_server_and_default_model_in_one_line(kernel, api):
    run = await kernel.run("%load_ext cellmage_server\nimport sys; print('httpx' in sys.modules)")

    assert not run.errors() and not run.stderr()
    ready, httpx_loaded = run.stdout().splitlines()
    assert ready == f"CellMage ready: %%llm asks {api.base} (default model fast)."
    assert httpx_loaded == "False"


async def test_load_ext_says_what_to_do_when_the_server_has_no_cellmage(kernel, api):
    await kernel.run(f"import os; os.environ['CELLMAGE_SERVER_URL'] = {api.base + 'no-cellmage-here/'!r}")

    run = await kernel.run("%load_ext cellmage_server")

    assert not run.errors() and not run.stderr()
    assert run.stdout().splitlines() == [
        f"CellMage loaded, but the Jupyter server at {api.base}no-cellmage-here/ has no cellmage endpoint: "
        "is cellmage-server installed and enabled there?"
    ]
