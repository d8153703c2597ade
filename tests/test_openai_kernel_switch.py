"""``openai_endpoint.kernel_variables = false``: kernels get no OPENAI_* variables from the server
(the endpoint itself still answers Jupyter credentials)."""

from __future__ import annotations

import json

import httpx
import pytest

from .fake_upstream import FakeUpstream
from .kernel import Kernel
from .openai_support import toml, v1


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml(fake_upstream, extra="[openai_endpoint]\nkernel_variables = false\n")


async def test_switched_off_kernels_get_no_openai_variables(api, jp_serverapp, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    kernel = await Kernel(api, jp_serverapp).start()
    try:
        run = await kernel.run("import os, json; print(json.dumps(sorted(k for k in os.environ if k.startswith('OPENAI'))))")
        assert json.loads(run.stdout()) == []
    finally:
        await kernel.stop()
    async with httpx.AsyncClient(trust_env=False, headers=api.headers) as c:
        assert (await c.get(v1(api) + "/models")).status_code == 200
