"""A provider whose wire format is not OpenAI's, through the OpenAI-compatible endpoint: litellm
talks Anthropic's Messages API to the fake, and the client gets OpenAI's chunks and completion."""

from __future__ import annotations

import openai
import pytest

from .conftest import KEY_ENV, SECRET
from .fake_upstream import FakeUpstream, Script
from .openai_support import scoped_key, sdk


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return f"""
default_model = "claude"

[models.claude]
model = "anthropic/claude-sonnet-4-5"
api_base = "{fake_upstream.anthropic_url}"
api_key_env = "{KEY_ENV}"

[timeouts]
first_token = 5
chunk_gap = 5
"""


async def test_an_anthropic_model_answers_in_openais_format(api, fake_upstream, jp_serverapp):
    client = sdk(api, scoped_key(jp_serverapp))
    fake_upstream.script(Script(chunks=["Bonjour", ", ", "le monde"], interval=0.02))
    stream = await client.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "brief"}, {"role": "user", "content": "hi"}],
        stream=True, stream_options={"include_usage": True}, max_tokens=50,
    )
    chunks = [c async for c in stream]

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Bonjour, le monde"
    assert chunks[-1].usage.prompt_tokens == 7 and chunks[-1].usage.completion_tokens == 3
    sent = fake_upstream.received[-1]
    assert sent.path == "/v1/messages" and sent.headers["X-Api-Key"] == SECRET
    assert sent.body["model"] == "claude-sonnet-4-5" and sent.body["max_tokens"] == 50
    assert "brief" in str(sent.body["system"])

    whole = await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])
    assert whole.choices[0].message.content == "Hello, world" and whole.choices[0].finish_reason == "stop"
    assert whole.usage.total_tokens == 10


async def test_an_anthropic_rate_limit_reaches_the_sdk(api, fake_upstream, jp_serverapp):
    fake_upstream.script(Script(status=429, error_message="slow down", retry_after="3"))
    with pytest.raises(openai.RateLimitError) as raised:
        await sdk(api, scoped_key(jp_serverapp)).chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    assert "slow down" in raised.value.message
