"""The settings model: sources and precedence, discovery, clear errors, and the reference docs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cellmage_server.config import ConfigError, load_config, reference

DESIGN_EXAMPLE = """
default_model = "gpt-4o-mini"
allowed_models = ["gpt-4o-mini", "gpt-4o", "local"]

[models.gpt-4o-mini]
model = "openai/gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"

[models.gpt-4o]
model = "openai/gpt-4o"
api_key_env = "OPENAI_API_KEY"

[models.local]
model = "openai/llama3.2"
api_base = "http://127.0.0.1:11434/v1"
api_key = "unused"
"""


@pytest.fixture
def write(tmp_path, monkeypatch):
    def _write(text: str, name: str = "cellmage.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        monkeypatch.setenv("CELLMAGE_CONFIG", str(path))
        return path

    return _write


def test_the_documented_example_loads_as_written(write, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example-000000")
    write(DESIGN_EXAMPLE)

    loaded = load_config()

    settings = loaded.settings
    assert settings.resolved_default_model == "gpt-4o-mini"
    assert settings.allowed == ["gpt-4o-mini", "gpt-4o", "local"]
    assert settings.models["local"].api_base == "http://127.0.0.1:11434/v1"
    assert loaded.keys["gpt-4o"].get_secret_value() == "sk-example-000000"
    assert loaded.keys["local"].get_secret_value() == "unused"
    assert loaded.key_env_names == {"OPENAI_API_KEY"}


def test_environment_overrides_the_file_which_overrides_defaults(write, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    write(DESIGN_EXAMPLE + "\n[limits]\nmax_tokens = 2000\nmax_streams_per_user = 3\n")
    monkeypatch.setenv("CELLMAGE_DEFAULT_MODEL", "local")
    monkeypatch.setenv("CELLMAGE_LIMITS__MAX_TOKENS", "512")

    settings = load_config().settings

    assert settings.default_model == "local"  # env over file
    assert settings.limits.max_tokens == 512  # env over file, nested
    assert settings.limits.max_streams_per_user == 3  # file over default
    assert settings.timeouts.total == 900.0  # default


def test_the_file_is_found_on_the_jupyter_config_path(jp_environ, jp_config_dir, monkeypatch):
    monkeypatch.delenv("CELLMAGE_CONFIG", raising=False)
    (Path(jp_config_dir) / "cellmage.toml").write_text('[models.m]\nmodel = "openai/x"\napi_key = "k"\n')

    loaded = load_config()

    assert loaded.path == Path(jp_config_dir) / "cellmage.toml"
    assert list(loaded.settings.models) == ["m"]


def test_no_file_means_no_models_and_no_error(jp_environ, monkeypatch):
    monkeypatch.delenv("CELLMAGE_CONFIG", raising=False)

    loaded = load_config()

    assert loaded.path is None and loaded.settings.models == {}


BAD = [
    ("unknown key", '[models.m]\nmodel = "openai/x"\nmodle = "y"\n', "models.m.modle: unknown field"),
    ("unknown top-level key", 'defualt_model = "m"\n', "defualt_model: unknown field"),
    ("wrong type", '[limits]\nmax_tokens = "lots"\n', "limits.max_tokens"),
    ("alias to nothing", 'default_model = "ghost"\n[models.m]\nmodel = "openai/x"\n', "default_model: 'ghost' is not declared"),
    ("allowed alias to nothing", 'allowed_models = ["ghost"]\n[models.m]\nmodel = "openai/x"\n', "allowed_models: 'ghost'"),
    ("default not allowed", 'default_model = "a"\nallowed_models = ["b"]\n[models.a]\nmodel = "openai/x"\n[models.b]\nmodel = "openai/y"\n', "not in allowed_models"),
    ("two key sources", '[models.m]\nmodel = "openai/x"\napi_key = "k"\napi_key_env = "K"\n', "api_key or api_key_env"),
    ("half a price", '[models.m]\nmodel = "openai/x"\ninput_cost_per_mtok = 1.0\n', "both input_cost_per_mtok"),
    ("lean path without api_base", '[models.m]\nmodel = "hosted_vllm/x"\n', "api_base is required"),
    ("not TOML", "[models\n", "is not valid TOML"),
]


@pytest.mark.parametrize("text,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_configuration_is_one_message_naming_file_and_field(write, text, words):
    path = write(text)

    with pytest.raises(ConfigError) as raised:
        load_config()

    message = str(raised.value)
    assert str(path) in message
    assert words in message
    if "TOML" not in words:  # read as sentences, with what to do
        assert "Fix it there" in message


def test_an_unset_key_variable_makes_only_that_model_unavailable(write):
    write(
        '[models.ok]\nmodel = "openai/x"\napi_key = "k"\n'
        '[models.m]\nmodel = "openai/x"\napi_key_env = "CELLMAGE_TEST_UNSET_VAR"\n'
    )

    loaded = load_config()

    assert list(loaded.unavailable) == ["m"]
    assert "models.m.api_key_env: the environment variable CELLMAGE_TEST_UNSET_VAR is not set" in loaded.unavailable["m"]
    assert "ok" in loaded.keys


def test_a_key_pasted_into_api_key_env_is_never_echoed(write):
    pasted = "sk-proj-Zx81aQ93LmPq0011KKee77Hh"
    write(f'[models.m]\nmodel = "openai/x"\napi_key_env = "{pasted}"\n')

    loaded = load_config()

    assert pasted not in loaded.unavailable["m"] and "not repeated here" in loaded.unavailable["m"]
    assert pasted in loaded.secret_values()  # so it is redacted wherever it might be written


def test_each_model_is_served_by_the_path_its_provider_needs(write):
    write(
        '[models.a]\nmodel = "openai/gpt-4o"\n'
        '[models.b]\nmodel = "anthropic/claude-sonnet-4-5"\n'
        '[models.c]\nmodel = "openai/gpt-4o"\nprovider = "litellm"\n'
        '[models.d]\nmodel = "groq/llama"\nprovider = "openai"\napi_base = "http://127.0.0.1:1/v1"\n'
    )

    models = load_config().settings.models

    assert {alias: m.path for alias, m in models.items()} == {"a": "openai", "b": "litellm", "c": "litellm", "d": "openai"}


def test_a_litellm_model_without_litellm_installed_says_how_to_get_it(write, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litellm" else real_find_spec(name, *a))
    write('[models.claude]\nmodel = "anthropic/claude-sonnet-4-5"\n')

    with pytest.raises(ConfigError, match=r"models.claude: .* pip install 'cellmage-server\[litellm\]'"):
        load_config()


def test_an_unreadable_file_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "cellmage.toml"
    monkeypatch.setenv("CELLMAGE_CONFIG", str(missing))

    with pytest.raises(ConfigError, match="cannot read the cellmage config file .*nowhere/cellmage.toml"):
        load_config()


def test_the_config_reference_matches_the_model():
    docs = Path(__file__).parent.parent / "docs" / "config.md"
    assert docs.read_text().strip() == reference().strip(), (
        "docs/config.md is out of date: run `python -m cellmage_server.config > docs/config.md`"
    )


class TestABadConfigOnARunningServer:
    @pytest.fixture
    def cellmage_toml(self) -> str:
        return '[models.m]\nmodel = "openai/x"\nmodle = "typo"\n'

    async def test_jupyter_still_starts_and_the_api_says_what_is_wrong(self, api, caplog, jp_serverapp):
        # The rest of Jupyter works
        async with api.client() as c:
            assert (await c.get(api.base + "api/status")).status_code == 200
        # The extension reports the one problem, with file and field
        status = (await api.get("status")).json()
        assert status["configured"] is False
        assert "models.m.modle: unknown field" in status["message"]
        chat = await api.post("chat", {"prompt": "x"})
        assert chat.status_code == 503
        assert "models.m.modle: unknown field" in chat.json()["message"]
        # Each refused request is one warning (the start logged the one error, on the extension's
        # own logger), never an error-level dump of request headers
        assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(r.levelno == logging.WARNING and "503 POST" in r.getMessage() for r in caplog.records)


class TestAServerWithNoModels:
    @pytest.fixture
    def cellmage_toml(self) -> str:
        return "# nothing configured yet\n"

    async def test_chat_is_503_with_how_to_configure(self, api, fake_upstream):
        chat = await api.post("chat", {"prompt": "x"})
        assert chat.status_code == 503
        assert "cellmage.toml" in chat.json()["message"] and "api_key_env" in chat.json()["message"]
        assert (await api.get("status")).json()["configured"] is False
        assert fake_upstream.received == []
