"""A model named without a provider prefix (`gpt-4o-mini`) or with `hosted_vllm/` takes the lean
path, as `openai/` does; `provider = "litellm"` sends the same kind of model through litellm.

Which path sent a request shows at the fake provider: the lean path names itself in `User-Agent`
(`cellmage-server/…`), while litellm's requests go out through the openai
SDK or litellm's own client, which name themselves. The litellm alias below shows the difference
is visible, so the lean cases cannot pass for the wrong reason."""

from __future__ import annotations

import pytest

from .conftest import KEY_ENV
from .fake_upstream import FakeUpstream


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    def model(alias: str, name: str, extra: str = "") -> str:
        return f'[models.{alias}]\nmodel = "{name}"\napi_base = "{fake_upstream.url}"\napi_key_env = "{KEY_ENV}"\n{extra}\n'

    return 'default_model = "bare"\n' + "".join(
        [
            model("bare", "fake-bare"),
            model("vllm", "hosted_vllm/fake-vllm"),
            model("prefixed", "openai/fake-prefixed"),
            model("through_litellm", "openai/fake-litellm", 'provider = "litellm"'),
        ]
    )


@pytest.mark.parametrize(
    "alias,sent_as,lean",
    [
        ("bare", "fake-bare", True),
        ("vllm", "fake-vllm", True),
        ("prefixed", "fake-prefixed", True),
        ("through_litellm", "fake-litellm", False),
    ],
)
async def test_bare_and_hosted_vllm_names_take_the_lean_path(api, fake_upstream, alias, sent_as, lean):
    result = await api.stream({"prompt": "x", "model": alias})

    assert result.text() == "Hello, world" and "error" not in result.names()
    [request] = fake_upstream.received
    assert request.body["model"] == sent_as
    assert request.headers["User-Agent"].startswith("cellmage-server/") is lean, request.headers["User-Agent"]
