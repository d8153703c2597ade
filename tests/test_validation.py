"""Every bad request is refused before the first byte, with the contract's status and a message a
person can act on, and never reaches the provider."""

from __future__ import annotations

import asyncio
import json

import pytest

from .fake_upstream import Script

CASES = [
    # (case, raw body, status, words the message must contain)
    ("bad JSON", b'{"prompt": ', 400, "not valid JSON"),
    ("not an object", b'["hi"]', 400, "JSON object"),
    ("no prompt", b"{}", 400, "'prompt' is required"),
    ("empty prompt", b'{"prompt": ""}', 400, "prompt"),
    ("blank prompt", b'{"prompt": "  \\n "}', 400, "the prompt is empty"),
    ("prompt not a string", b'{"prompt": 3}', 400, "prompt"),
    ("unknown field", b'{"prompt": "x", "colour": "red"}', 400, "unknown field 'colour'"),
    ("injected api_base", b'{"prompt": "x", "api_base": "http://127.0.0.1:1/v1"}', 400, "api_base"),
    ("injected api_key", b'{"prompt": "x", "api_key": "sk-mine"}', 400, "api_key"),
    ("injected base_url", b'{"prompt": "x", "base_url": "http://127.0.0.1:1"}', 400, "base_url"),
    ("injected custom_llm_provider", b'{"prompt": "x", "custom_llm_provider": "openai"}', 400, "custom_llm_provider"),
    ("injected extra_headers", b'{"prompt": "x", "extra_headers": {"X": "1"}}', 400, "extra_headers"),
    ("temperature above 2", b'{"prompt": "x", "temperature": 2.5}', 400, "temperature"),
    ("temperature below 0", b'{"prompt": "x", "temperature": -0.1}', 400, "temperature"),
    ("temperature as text", b'{"prompt": "x", "temperature": "hot"}', 400, "temperature"),
    ("max_tokens zero", b'{"prompt": "x", "max_tokens": 0}', 400, "max_tokens"),
    ("max_tokens over the cap", b'{"prompt": "x", "max_tokens": 1001}', 400, "cap of 1000"),
    ("stream not a bool", b'{"prompt": "x", "stream": "yes"}', 400, "stream"),
    ("body over the size limit", json.dumps({"prompt": "x" * 5000}).encode(), 413, "at most 4096"),
    ("JSON nested 1,000 deep", b'{"prompt": "x", "model": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400, "nested too deeply"),
    ("unknown model", b'{"prompt": "x", "model": "gpt-9"}', 404, "Unknown model 'gpt-9'"),
    ("unknown persona", b'{"prompt": "x", "persona": "pirate"}', 404, "Unknown persona 'pirate'"),
    ("model declared but not allowed", b'{"prompt": "x", "model": "hidden"}', 403, "not allowed"),
    # A cell id comes from a notebook: only nbformat's shape is taken
    ("cell id with a path", b'{"prompt": "x", "conversation": "a.ipynb", "cell_id": "../../x"}', 400, "not a notebook cell id"),
    ("cell id with a query", b'{"prompt": "x", "conversation": "a.ipynb", "cell_id": "c?x=1"}', 400, "not a notebook cell id"),
    ("cell id over 64", b'{"prompt": "x", "conversation": "a.ipynb", "cell_id": "' + b"a" * 65 + b'"}', 400, "cell_id"),
    ("cell id not a string", b'{"prompt": "x", "conversation": "a.ipynb", "cell_id": 7}', 400, "cell_id"),
]


@pytest.mark.parametrize("body,status,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_requests_are_refused_before_streaming(api, fake_upstream, body, status, words):
    async with api.client() as c:
        response = await c.post(api.url("chat"), content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert words in error["message"]
    assert fake_upstream.received == []


async def test_the_message_for_an_unknown_model_lists_the_allowed_ones(api):
    response = await api.post("chat", {"prompt": "x", "model": "gpt-9"})

    assert "fast, other" in response.json()["message"]


async def test_too_many_concurrent_streams_for_one_user_is_429(api, fake_upstream):
    # One client keeps the server's user cookie, so every request is the same Jupyter user.
    fake_upstream.script(Script(silence_after=0, hold_seconds=5), Script(silence_after=0, hold_seconds=5))
    async with api.client() as c:
        assert (await c.get(api.url("status"))).status_code == 200  # picks up the user cookie
        # Given two answers running for this user (the limit is 2)
        async with c.stream("POST", api.url("chat"), json={"prompt": "one"}) as first, c.stream(
            "POST", api.url("chat"), json={"prompt": "two"}
        ) as second:
            assert first.status_code == second.status_code == 200
            assert await fake_upstream.until(lambda: len(fake_upstream.received) == 2)

            # When a third is asked for
            third = await c.post(api.url("chat"), json={"prompt": "three"})

            # Then it is refused, and the provider never hears of it
            assert third.status_code == 429
            assert "limit is 2" in third.json()["message"]
            assert len(fake_upstream.received) == 2

        # And once those have ended, the user may ask again
        assert await fake_upstream.until(lambda: all(r.closed_by_client for r in fake_upstream.received))
        for _ in range(50):  # the server notices the hang-ups on its next loop turns
            if (await c.get(api.url("status"))).json()["running_answers"] == 0:
                break
            await asyncio.sleep(0.02)
        again = await c.post(api.url("chat"), json={"prompt": "four", "stream": False})
        assert again.status_code == 200 and again.json()["text"] == "Hello, world"
