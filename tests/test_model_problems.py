"""One model's broken configuration does not disable the others, says which variable to set,
and never echoes a key pasted where a variable's name belongs. Expected 5xx answers are one
warning line, not an error with request headers."""

from __future__ import annotations

import logging

import pytest

from .conftest import toml_with
from .fake_upstream import FakeUpstream

PASTED = "sk-proj-PASTEDkey0123456789abcdefghij"


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    # "other" names a variable nobody set; "hidden" (allowed here) has the key itself pasted
    return toml_with(
        fake_upstream,
        allowed_models=["fast", "other", "hidden"],
        models={"other": {"api_key_env": "CELLMAGE_TEST_NEVER_SET"}, "hidden": {"api_key_env": PASTED}},
    )


async def test_the_other_models_still_answer(api, fake_upstream):
    answer = await api.post("chat", {"prompt": "x", "stream": False})

    assert answer.status_code == 200 and answer.json()["text"] == "Hello, world"


async def test_the_broken_model_says_which_variable_to_set(api, fake_upstream, caplog):
    caplog.set_level(logging.DEBUG)
    response = await api.post("chat", {"prompt": "x", "model": "other"})

    assert response.status_code == 503
    message = response.json()["message"]
    assert "CELLMAGE_TEST_NEVER_SET is not set" in message and "fast" in message
    assert fake_upstream.received == []
    # An expected 503 is one warning, not an error-level dump of the request's headers
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_models_and_status_say_what_is_unavailable(api):
    models = {m["name"]: m for m in (await api.get("models")).json()["models"]}
    status = (await api.get("status")).json()

    assert models["fast"]["available"] is True
    assert models["other"]["available"] is False and "CELLMAGE_TEST_NEVER_SET" in models["other"]["problem"]
    assert set(status["unavailable_models"]) == {"other", "hidden"}
    assert status["configured"] is True


async def test_a_key_pasted_as_a_variable_name_is_never_echoed(api, fake_upstream, caplog):
    caplog.set_level(logging.DEBUG)
    bodies = [
        (await api.get("status")).text,
        (await api.get("models")).text,
        (await api.post("chat", {"prompt": "x", "model": "hidden"})).text,
    ]

    for body in bodies:
        assert PASTED[:12] not in body and PASTED[-12:] not in body
    assert PASTED[:12] not in caplog.text and PASTED[-12:] not in caplog.text


class TestAnUnconfiguredServer:
    @pytest.fixture
    def cellmage_toml(self) -> str:
        return "# nothing yet\n"

    async def test_it_answers_503_without_error_logs(self, api, caplog):
        caplog.set_level(logging.DEBUG)
        for _ in range(3):
            assert (await api.post("chat", {"prompt": "x"})).status_code == 503

        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert '"User-Agent"' not in caplog.text


def test_a_missing_key_says_why_when_whoever_should_set_it_left_word(tmp_path):
    from cellmage_server.config import load_config

    path = tmp_path / "cellmage.toml"
    path.write_text('[models.team]\nmodel = "openai/m"\napi_base = "http://127.0.0.1:9/v1"\napi_key_env = "CELLMAGE_GATEWAY_KEY"\n')
    why = "Cannot reach the LLM gateway at http://litellm:4000 to mint ada's key (ConnectError: refused)."
    config = load_config({"CELLMAGE_CONFIG": str(path), "CELLMAGE_GATEWAY_KEY_PROBLEM": why})
    assert config.unavailable["team"].endswith(f"Why it is not set: {why}")
    assert "Why" not in load_config({"CELLMAGE_CONFIG": str(path)}).unavailable["team"]
