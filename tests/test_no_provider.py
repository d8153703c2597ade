"""A server with no provider configured: what a person reads names the file this server looked
for, offers a cellmage.toml ready to paste, and speaks to whoever can act (the user, or under
JupyterHub the admin); no HTTP status in it; the start-up log says the same in one sentence."""

from __future__ import annotations

import tomllib

import pytest

from cellmage_server.answer.ending import problem_bundle


@pytest.fixture
def cellmage_toml(tmp_path) -> str:
    return f'history_db = "{tmp_path / "conversations.sqlite3"}"\n'


def _example(message: str) -> dict:
    start = message.index("```toml\n") + len("```toml\n")
    return tomllib.loads(message[start : message.index("\n```", start)])


async def test_an_ask_says_where_the_server_looked_and_offers_a_file_to_paste(api, cellmage_config):
    response = await api.post("chat", {"prompt": "hi", "stream": False})

    assert response.status_code == 503
    message = response.json()["message"]
    assert f"It read {cellmage_config} and found no model." in message
    assert f"Save this as {cellmage_config}" in message
    assert "HTTP" not in message and "503" not in message
    # The example is a working configuration, and both clients show it as a code block
    example = _example(message)
    assert example["models"][example["default_model"]]["model"] == "openai/gpt-4o-mini"
    assert '<code class="language-toml">' in problem_bundle(message)["text/html"]
    status = (await api.get("status")).json()
    assert status["configured"] is False and status["message"] == message


async def test_under_jupyterhub_it_speaks_to_the_admin(api, cellmage_config, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")

    message = (await api.get("status")).json()["message"]

    assert message.startswith("No LLM provider is configured for this JupyterHub server")
    assert "Ask your JupyterHub admin" in message and "Save this as" not in message
    assert str(cellmage_config) in message
    _example(message)


def test_the_start_up_log_says_it_in_one_sentence(capfd, cellmage_config, jp_serverapp):
    # (capfd first: it holds what the server wrote to its log while it started)
    lines = [line for line in capfd.readouterr().err.splitlines() if "no LLM provider" in line]

    assert len(lines) == 1 and "\n" not in lines[0]
    assert f"read {cellmage_config} and found no model" in lines[0] and "503" not in lines[0]
