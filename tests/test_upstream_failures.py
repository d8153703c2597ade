"""Provider failures: after ``start`` each is exactly one ``error`` event with the right code, the
text already sent kept, and ``done`` last; without streaming, an HTTP error. Never a key."""

from __future__ import annotations

import socket

import pytest

from .conftest import PROVIDER_PATHS, SECRET
from .fake_upstream import Script

# The contract holds on both provider paths, against the same fake upstream.
pytestmark = pytest.mark.parametrize("provider_path", PROVIDER_PATHS)

FAILURES = [
    # (case, script, code, words in the message)
    ("provider 401", Script(status=401, error_message=f"Incorrect API key provided: {SECRET}"), "auth", "credentials"),
    ("provider 403", Script(status=403, error_message="forbidden"), "auth", "credentials"),
    ("provider 429", Script(status=429, error_message="Rate limit reached"), "rate_limited", "Rate limit"),
    ("provider 500", Script(status=500, error_message="boom"), "upstream", "HTTP 500"),
    ("provider 503", Script(status=503, error_message="overloaded"), "upstream", "overloaded"),
    (
        "context too long",
        Script(status=400, error_message="maximum context length is 8192 tokens", error_code="context_length_exceeded"),
        "context_length",
        "too long",
    ),
    (
        "content filter",
        Script(status=400, error_message="blocked", error_code="content_filter"),
        "content_filter",
        "content filter",
    ),
    ("first token never comes", Script(first_delay=10), "timeout", "first_token"),
    ("drop mid-stream", Script(chunks=["partial ", "answer", "never"], drop_after=2), "upstream", "mid-answer"),
    ("silent mid-stream", Script(chunks=["partial ", "answer", "never"], silence_after=2), "timeout", "chunk_gap"),
    ("error chunk mid-stream", Script(chunks=["partial ", "answer", "x"], error_chunk_after=2), "upstream", "mid-answer"),
    ("stream ends unfinished", Script(chunks=["partial ", "answer"], send_done=False, finish_reason=""), "upstream", "ended"),
]


@pytest.mark.parametrize("script,code,words", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
async def test_a_provider_failure_is_one_error_event_then_done(api, fake_upstream, script, code, words, provider_path):
    fake_upstream.script(script)

    result = await api.stream({"prompt": "x"})

    assert result.status == 200
    names = result.names()
    assert names[0] == "start" and names[-1] == "done"
    assert names.count("error") == 1 and names[-2] == "error"
    error = result.one("error")
    assert error["code"] == code
    assert words in error["message"]
    assert SECRET not in error["message"]
    assert result.one("done")["finish_reason"] == "error"
    if script.drop_after or script.silence_after or script.error_chunk_after or not script.send_done:
        assert result.text() == "partial answer"  # what was sent before the failure is kept


async def test_done_without_a_finish_reason_finishes_the_answer_on_the_lean_path_only(api, fake_upstream, provider_path):
    # Given a provider that sends OpenAI's [DONE] but never a finish reason: litellm does not pass
    # [DONE] on, so on its path the answer is not known to be finished (README, "The wire contract")
    fake_upstream.script(Script(chunks=["partial ", "answer"], finish_reason="", send_done=True))

    result = await api.stream({"prompt": "x"})

    assert result.text() == "partial answer" and result.names()[-1] == "done"
    if provider_path == "lean":
        assert "error" not in result.names() and result.one("done")["finish_reason"] == "stop"
    else:
        assert result.one("error")["code"] == "upstream" and "ended" in result.one("error")["message"]


async def test_connection_refused_is_an_upstream_error(api, fake_upstream, cellmage_config, jp_serverapp):
    # Given a model whose api_base has nothing listening (a port just closed)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = jp_serverapp.web_app.settings["cellmage"]
    entry = state.config.settings.models["other"]
    entry.api_base = f"http://127.0.0.1:{port}/v1"

    result = await api.stream({"prompt": "x", "model": "other"})

    error = result.one("error")
    assert error["code"] == "upstream"
    assert f"127.0.0.1:{port}" in error["message"] and "connect" in error["message"]
    assert result.names()[-1] == "done"


STATUS_WITHOUT_STREAMING = [
    (Script(status=401), 502, "auth"),
    (Script(status=429), 429, "rate_limited"),
    (Script(status=500), 502, "upstream"),
    (Script(first_delay=10), 504, "timeout"),
    (Script(chunks=["a", "b"], drop_after=1), 502, "upstream"),
]


@pytest.mark.parametrize("script,status,reason", STATUS_WITHOUT_STREAMING)
async def test_without_streaming_a_provider_failure_is_an_http_error(api, fake_upstream, script, status, reason):
    fake_upstream.script(script)

    response = await api.post("chat", {"prompt": "x", "stream": False})

    assert response.status_code == status
    assert response.json()["reason"] == reason
    assert response.json()["message"]


async def test_upstream_text_that_holds_a_key_is_redacted(api, fake_upstream):
    fake_upstream.script(
        Script(status=400, error_message=f"bad request for key {SECRET} and Bearer abc.def.ghi and sk-proj-ZZZZ9999"),
        Script(status=400, error_message=f"again {SECRET}"),
    )

    streamed = await api.stream({"prompt": "x"})
    whole = await api.post("chat", {"prompt": "x", "stream": False})

    message = streamed.one("error")["message"]
    assert SECRET not in message and "abc.def.ghi" not in message and "sk-proj-ZZZZ9999" not in message
    assert "[redacted]" in message
    assert SECRET not in whole.text
