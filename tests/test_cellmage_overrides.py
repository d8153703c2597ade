"""CellMage's overrides, one cell's `--param` and model mappings, cells in CellMage's syntax in a
real kernel against a real server (the fake provider's log shows what the provider got): the
parameters a person may set, checked as the wire contract checks them; never an API base, a key
or anything that re-routes the call; mappings name the server's models, never a new one."""

from __future__ import annotations

import pytest

from .fake_upstream import FakeUpstream
from .tutorial_cells import quiet


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    from .conftest import KEY_ENV

    models = "".join(
        f'\n[models."{alias}"]\nmodel = "openai/{alias}"\napi_base = "{fake_upstream.url}"\napi_key_env = "{KEY_ENV}"\n'
        for alias in ("gpt-4o-mini", "gpt-4o")
    )
    return f'default_model = "gpt-4o-mini"\n{models}\n[limits]\nmax_tokens = 4000\n'


@pytest.fixture
def kernel(api, jp_serverapp, jp_asyncio_loop):
    from .kernel import Kernel

    k = Kernel(api, jp_serverapp)
    jp_asyncio_loop.run_until_complete(k.start())
    jp_asyncio_loop.run_until_complete(quiet(k, "%load_ext cellmage_server"))
    yield k
    jp_asyncio_loop.run_until_complete(k.stop())


def sent(fake: FakeUpstream) -> dict:
    return fake.received[-1].body


async def test_overrides_apply_to_every_cell_and_a_cells_own_win(kernel, fake_upstream):
    set_ = (await quiet(kernel, "%llm_config --set-override temperature 0.5")).stdout()
    assert "temperature = 0.5 for every cell" in set_
    await quiet(kernel, "%llm_config --set-override top_p 0.9")
    await quiet(kernel, "%llm_config --set-override stop END")
    shown = (await quiet(kernel, "%llm_config --show-overrides")).stdout()
    assert shown.splitlines() == ["  temperature = 0.5", "  top_p = 0.9", "  stop = 'END'"]

    await quiet(kernel, "%%llm\nWrite a haiku.")
    assert (sent(fake_upstream)["temperature"], sent(fake_upstream)["top_p"], sent(fake_upstream)["stop"]) == (0.5, 0.9, "END")

    # One cell's --param beats the override; its -t beats both
    await quiet(kernel, "%%llm --param top_p 0.3 --param seed 42 -t 0.1 --param temperature 1.5\nAgain.")
    body = sent(fake_upstream)
    assert (body["top_p"], body["seed"], body["temperature"], body["stop"]) == (0.3, 42, 0.1, "END")

    # And the overrides stay what they were
    await quiet(kernel, "%llm_config --remove-override top_p")
    await quiet(kernel, "%%llm\nOnce more.")
    assert "top_p" not in sent(fake_upstream) and sent(fake_upstream)["temperature"] == 0.5
    await quiet(kernel, "%llm_config --clear-overrides")
    await quiet(kernel, "%%llm\nLast.")
    assert not {"temperature", "stop", "seed"} & set(sent(fake_upstream))
    assert "no overrides" in (await quiet(kernel, "%llm_config --show-overrides")).stdout()


@pytest.mark.parametrize(
    "line,said",
    [
        ("%llm_config --set-override api_base http://127.0.0.1:9/v1", "api_base is not a parameter you may set: where a request goes"),
        ("%llm_config --set-override api_key sk-mine", "api_key is not a parameter you may set"),
        ("%llm_config --set-override custom_llm_provider openai", "custom_llm_provider is not a parameter you may set"),
        ("%llm_config --set-override storage_type file", "the Jupyter server stores every conversation"),
        ("%llm_config --set-override top_p 5", "'top_p' must be a number from 0 to 1, not 5"),
        ("%llm_config --set-override max_tokens many", "'max_tokens' must be a whole number of at least 1"),
        ("%llm_config --set-override colour blue", "colour is not a parameter you may set; the parameters are: temperature"),
    ],
)
async def test_an_override_that_may_not_be_set_is_refused_and_never_sent(kernel, fake_upstream, line, said):
    run = await kernel.run(line)
    await quiet(kernel, "%%llm\nhi")

    assert said in run.stderr()
    assert "no overrides" in (await quiet(kernel, "%llm_config --show-overrides")).stdout()
    body = sent(fake_upstream)
    assert not {"api_base", "api_key", "custom_llm_provider", "storage_type", "colour"} & set(body)


@pytest.mark.parametrize(
    "flags,said",
    [
        ("--param api_base http://127.0.0.1:9/v1", "api_base is not a parameter you may set"),
        ("--param extra_headers '[1]'", "extra_headers is not a parameter you may set"),
        ("--param presence_penalty 3", "'presence_penalty' must be a number from -2 to 2"),
        ("--param stop '[\"a\", \"b\", \"c\", \"d\", \"e\"]'", "'stop' must be a string or a list of 1 to 4 strings"),
        ("--param seed 1.5", "'seed' must be a whole number"),
    ],
)
async def test_a_param_that_may_not_be_set_stops_the_cell_before_anything_is_sent(kernel, fake_upstream, flags, said):
    before = len(fake_upstream.received)

    run = await kernel.run(f"%%llm {flags}\nhi")

    assert said in run.stderr()
    assert len(fake_upstream.received) == before


async def test_the_server_refuses_what_the_kernel_would_refuse(api, fake_upstream):
    # Any client, not only this kernel: the wire contract checks params itself
    before = len(fake_upstream.received)
    refused = [
        await api.post("chat", {"prompt": "x", "params": params})
        for params in ({"api_base": "http://127.0.0.1:9"}, {"top_p": 2}, {"stop": ["a"] * 5}, {"seed": True}, {"model": "fast"})
    ]
    accepted = await api.post("chat", {"prompt": "x", "stream": False, "params": {"top_p": 0.25, "stop": ["\n\n", "END"]}})

    assert [r.status_code for r in refused] == [400] * 5
    assert "where a request goes and with which credentials" in refused[0].json()["message"]
    assert "model is set with --model" in refused[4].json()["message"]
    assert len(fake_upstream.received) == before + 1
    assert accepted.status_code == 200
    assert (sent(fake_upstream)["top_p"], sent(fake_upstream)["stop"]) == (0.25, ["\n\n", "END"])


async def test_model_mappings_are_this_kernels_names_for_the_servers_models(kernel, fake_upstream):
    added = (await quiet(kernel, "%llm_config --add-mapping g4 gpt-4o")).stdout()
    assert "g4 → gpt-4o (in this kernel)" in added
    assert "  g4 → gpt-4o" in (await quiet(kernel, "%llm_config --list-mappings")).stdout()

    await quiet(kernel, "%%llm -m g4\nWhat is the capital of France?")
    assert sent(fake_upstream)["model"] == "gpt-4o"
    assert "model set to gpt-4o (g4)" in (await quiet(kernel, "%llm_config --model g4")).stdout()
    await quiet(kernel, "%%llm\nAnd of Spain?")
    assert sent(fake_upstream)["model"] == "gpt-4o"
    assert "* gpt-4o  (here also g4)" in (await quiet(kernel, "%llm_config --list-models")).stdout()

    # Never a model the server does not declare, nor a second name for a name it has
    new = await kernel.run("%llm_config --add-mapping mine openai/gpt-5-preview")
    assert "a mapping names one of the server's models, and 'openai/gpt-5-preview' is not one" in new.stderr()
    shadow = await kernel.run("%llm_config --add-mapping gpt-4o-mini gpt-4o")
    assert "gpt-4o-mini is already a model of this server" in shadow.stderr()

    await quiet(kernel, "%llm_config --remove-mapping g4")
    gone = await kernel.run("%%llm -m g4\nhi")
    assert gone.reply["status"] == "error" and "Unknown model 'g4'" in str(gone.errors())


async def test_flags_cellmage_has_and_this_server_does_not_say_why(kernel):
    adapter = await kernel.run("%llm_config --adapter langchain")
    base_dir = await kernel.run("%llm_config --base-dir /tmp/elsewhere")
    token = await kernel.run("%llm_config --token")  # --tokens' other name

    assert "--adapter is not offered here: the Jupyter server chooses how each model is reached" in adapter.stderr()
    assert "--base-dir is not offered here: the Jupyter server keeps every conversation" in base_dir.stderr()
    assert "not attached to a notebook, so it has no conversation" in token.stderr()
