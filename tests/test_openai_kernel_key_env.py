"""The common configuration ``api_key_env = "OPENAI_API_KEY"``: the server reads the real key from
that variable, and its kernels get the same name holding the scoped key, never the real one."""

from __future__ import annotations

import json

import pytest

from .conftest import KEY_ENV, SECRET
from .fake_upstream import FakeUpstream
from .kernel import Kernel
from .openai_support import scoped_key, toml


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return toml(fake_upstream).replace(f'api_key_env = "{KEY_ENV}"', 'api_key_env = "OPENAI_API_KEY"')


async def test_the_kernel_gets_the_scoped_key_under_the_real_keys_name(api, jp_serverapp, fake_upstream):
    kernel = await Kernel(api, jp_serverapp).start()
    try:
        run = await kernel.run(
            "import os, json, openai\n"
            "r = openai.OpenAI().chat.completions.create(model='fast', messages=[{'role': 'user', 'content': 'x'}])\n"
            "print(json.dumps([os.environ['OPENAI_API_KEY'], r.choices[0].message.content]))"
        )
    finally:
        await kernel.stop()
    key, answer = json.loads(run.stdout())
    assert key == scoped_key(jp_serverapp) and key != SECRET
    assert answer == "Hello, world"
    assert fake_upstream.received[-1].headers["Authorization"] == f"Bearer {SECRET}"
