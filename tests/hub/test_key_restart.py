"""Per-user gateway keys through a real JupyterHub that restarts while a server runs
(``cleanup_servers = False``, as Zero to JupyterHub runs): the hub, configurable-http-proxy and
ada's real server, with docs/jupyterhub/gateway_keys.py as it is, against a fake of LiteLLM's key
API that keeps its rules (tests/fake_key_api.py; the real gateway needs its database for keys)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from cellmage_server.gateway_keys import key_alias

from ..fake_key_api import FakeKeyAPI
from .stack import Stack, missing

pytestmark = pytest.mark.hub


@pytest.fixture
def keys() -> Iterator[FakeKeyAPI]:
    fake = FakeKeyAPI(master_key="sk-master-for-the-restart-test").start()
    yield fake
    fake.stop()


@pytest.fixture
def hub(tmp_path, keys: FakeKeyAPI) -> Iterator[Stack]:
    why = missing()
    if why:
        pytest.fail(why)
    stack = Stack(tmp_path, with_gateway=False, keys_api=(keys.url, keys.master_key), cleanup_servers=False)
    try:
        yield stack.start()
    finally:
        stack.stop()


def _state(stack: Stack, user: str) -> dict:
    """ada's default server's state as the hub keeps it in its database."""
    with sqlite3.connect(stack.work / "jupyterhub.sqlite") as db:
        [(state,)] = db.execute(
            "SELECT spawners.state FROM spawners JOIN users ON users.id = spawners.user_id"
            " WHERE users.name = ? AND spawners.name = ''", (user,)
        ).fetchall()
    return json.loads(state or "{}")


def _stop_server(stack: Stack, user: str, timeout: float = 60) -> None:
    with stack.hub_api() as api:
        response = api.delete(f"users/{user}/server")
        assert response.status_code in (202, 204), response.text
        deadline = time.monotonic() + timeout
        while "" in api.get(f"users/{user}").json().get("servers", {}) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert "" not in api.get(f"users/{user}").json().get("servers", {}), stack.log("hub")[-3000:]


def test_a_hub_restarted_while_a_server_runs_deletes_its_key_when_it_stops(hub: Stack, keys: FakeKeyAPI):
    hub.start_servers("ada")
    [(token, row)] = keys.keys.items()
    state = _state(hub, "ada")
    assert row["key_alias"] == key_alias("ada", "") and row["user_id"] == "ada"
    assert state["cellmage_gateway_key"] == {"token_id": token, "alias": key_alias("ada", "")}
    assert "sk-" not in json.dumps(state)  # the key's hash in the hub's database, never the key
    server = psutil.Process(state["pid"])

    hub.restart_hub()

    assert server.is_running()  # cleanup_servers = False: the server went on, with its key
    assert keys.keys.keys() == {token}
    _stop_server(hub, "ada")
    assert not server.is_running()
    assert keys.keys == {} and keys.seen[-1].body == {"keys": [token]}  # deleted by its hash, by the new hub

    # The next start mints under the same alias: nothing was left to refuse it.
    hub.start_servers("ada")
    assert [row["key_alias"] for row in keys.keys.values()] == [key_alias("ada", "")]
    assert [s.status for s in keys.seen if s.action == "generate"] == [200, 200]
    _stop_server(hub, "ada")
    assert keys.keys == {}


def test_a_gateway_that_refuses_lets_the_server_start_without_a_key_and_the_spawn_progress_says_why(
    hub: Stack, keys: FakeKeyAPI
):
    keys.refuse = (500, "Internal Server Error")  # what LiteLLM without its database answers here

    # The spawn page's stream, opened as the spawn begins (the hub answers 400 before it has).
    starting = threading.Thread(target=hub.start_servers, args=("ada",))
    starting.start()
    messages: list[dict] = []
    with hub.hub_api() as api:
        deadline = time.monotonic() + 30
        while not messages and time.monotonic() < deadline:
            with api.stream("GET", "users/ada/server/progress", timeout=60) as progress:
                messages += [json.loads(line[5:]) for line in progress.iter_lines() if line.startswith("data:")]
    starting.join(120)

    [note] = [m["message"] for m in messages if "gateway" in m["message"]]
    assert f"The LLM gateway at {keys.url} did not mint ada's key (HTTP 500: Internal Server Error)" in note
    assert "Your server starts without one" in note and messages[-1].get("ready") is True
    server = psutil.Process(_state(hub, "ada")["pid"])
    assert "CELLMAGE_GATEWAY_KEY" not in server.environ()  # not the team key from c.Spawner.environment either
    _stop_server(hub, "ada")
