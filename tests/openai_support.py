"""Shared by the tests of the OpenAI-compatible endpoint: its configuration (a chat alias and an
embedding alias on the fake upstream, on either provider path) and clients for it."""

from __future__ import annotations

from typing import Any

import httpx

from cellmage_server.routes.openai.base import SETTINGS_KEY

from .conftest import KEY_ENV
from .fake_upstream import FakeUpstream


def toml(fake: FakeUpstream, path: str = "lean", extra: str = "") -> str:
    provider = 'provider = "litellm"\n' if path == "litellm" else ""
    return f"""
default_model = "fast"
allowed_models = ["fast", "other", "embed"]
{extra}
[models.fast]
model = "openai/fake-fast"
api_base = "{fake.url}"
api_key_env = "{KEY_ENV}"
{provider}
[models.other]
model = "openai/fake-other"
api_base = "{fake.url}"
api_key_env = "{KEY_ENV}"
{provider}
[models.hidden]
model = "openai/fake-hidden"
api_base = "{fake.url}"
api_key_env = "{KEY_ENV}"

[models.embed]
model = "openai/fake-embed"
kind = "embedding"
api_base = "{fake.url}"
api_key_env = "{KEY_ENV}"
{provider}
[limits]
max_tokens = 1000
max_streams_per_user = 2

[timeouts]
connect = 2
first_token = 5
chunk_gap = 2
total = 30
"""


def scoped_key(serverapp: Any) -> str:
    return serverapp.web_app.settings[SETTINGS_KEY].secret.get_secret_value()


def v1(api: Any) -> str:
    return api.base + "cellmage/v1"


async def v1_stream(api: Any, serverapp: Any, content: str = "hi") -> list[str]:
    """The ``data:`` payloads of a streamed ``chat/completions`` answer of model ``fast``."""
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        async with c.stream(
            "POST", v1(api) + "/chat/completions", headers={"Authorization": f"Bearer {scoped_key(serverapp)}"},
            json={"model": "fast", "messages": [{"role": "user", "content": content}], "stream": True},
        ) as response:
            return [line[6:] async for line in response.aiter_lines() if line.startswith("data: ")]


def sdk(api: Any, key: str, **kwargs: Any) -> Any:
    """The async openai SDK pointed at the endpoint, as a kernel's library would be."""
    import openai

    kwargs.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(
        base_url=v1(api), api_key=key, http_client=httpx.AsyncClient(trust_env=False, timeout=30), **kwargs
    )
