"""Attribution at a gateway: every answer reaches the provider with OpenAI `user` set to the person
asking (the principal the ledger keys on), on both provider paths, whatever the client sends."""

from __future__ import annotations

import pytest

from .conftest import PROVIDER_PATHS, toml_with
from .fake_upstream import FakeUpstream


@pytest.fixture(params=PROVIDER_PATHS)
def provider_path(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream, provider_path: str) -> str:
    # A name in OpenAI's catalog: litellm passes `user` on to OpenAI models it knows, and drops it
    # for unknown names on an OpenAI-compatible api_base (a gateway is served by the lean path).
    toml = toml_with(fake_upstream, models={"fast": {"model": "openai/gpt-4o-mini"}})
    if provider_path == "litellm":
        toml = toml.replace('model = "openai/', 'provider = "litellm"\nmodel = "openai/')
    return toml


async def test_the_provider_receives_the_principal_as_openai_user(api, fake_upstream, jp_serverapp):
    result = await api.stream({"prompt": "hi"})

    assert result.names()[-1] == "done" and result.text() == "Hello, world"
    sent = fake_upstream.received[-1].body
    assert isinstance(sent.get("user"), str) and sent["user"]
    # The same principal the ledger counts this answer for.
    store = jp_serverapp.web_app.settings["cellmage"].store
    assert (await store.usage(sent["user"]))["total"]["answers"] == 1


async def test_a_client_cannot_choose_the_user_sent_to_the_provider(api, fake_upstream):
    response = await api.post("chat", {"prompt": "hi", "user": "someone-else", "stream": False})

    assert response.status_code == 400  # unknown fields are refused, `user` among them
    assert fake_upstream.received == []
