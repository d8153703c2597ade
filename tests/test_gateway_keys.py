"""The hub-side hooks that mint and delete each user's gateway key, against a fake of LiteLLM Proxy's
key API that keeps its rules (tests/fake_key_api.py; the real gateway needs its database for
virtual keys, and tests/hub/ runs the hooks against the real one, database-less)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import format_exception, iterate_until

from cellmage_server.gateway_keys import GatewayKeyError, GatewayKeys, GatewayKeyState, key_alias

from .fake_key_api import FakeKeyAPI

# LiteLLM's strictest alias rule (_KEY_ALIAS_PATTERN in key_management_endpoints.py, 1.106.2), on
# when the gateway sets enable_key_alias_format_validation. Copied: importing it takes ~10 s.
LITELLM_ALIAS = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-/\.@]{0,253}[a-zA-Z0-9]$")


@pytest.fixture
def gateway() -> Iterator[FakeKeyAPI]:
    fake = FakeKeyAPI().start()
    yield fake
    fake.stop()


class TeamSpawner(GatewayKeyState, SimpleLocalProcessSpawner):
    """The spawner class an admin declares: the mixin first, then their own spawner."""


def _spawner(user: str = "ada", server: str = "", cls: type = SimpleLocalProcessSpawner) -> SimpleLocalProcessSpawner:
    # The hub's own row for the server (not in a database here): it gives the spawner its name.
    row = orm.Spawner(name=server, state={})
    return cls(user=SimpleNamespace(name=user, url=f"/user/{user}/"), orm_spawner=row)


async def test_a_starting_server_gets_a_key_minted_for_its_user_and_a_stopped_one_loses_it(gateway):
    keys = GatewayKeys(gateway.url, gateway.master_key, max_budget=20.0, budget_duration="30d",
                       models=["gpt-4o-mini"], rpm_limit=60)
    spawner = _spawner()

    await keys.pre_spawn_hook(spawner)

    [(token, row)] = gateway.keys.items()
    minted = gateway.seen[0]
    assert minted.action == "generate" and minted.authorization == f"Bearer {gateway.master_key}"
    assert spawner.environment["CELLMAGE_GATEWAY_KEY"].startswith("sk-")
    body = row["body"]
    assert body["user_id"] == "ada" and body["key_alias"].startswith("jupyterhub-ada-default")
    assert body["max_budget"] == 20.0 and body["budget_duration"] == "30d"
    assert body["models"] == ["gpt-4o-mini"] and body["rpm_limit"] == 60 and body["duration"] == "7d"

    await keys.post_stop_hook(spawner)

    assert gateway.keys == {} and gateway.seen[-1].body == {"keys": [token]}


@pytest.fixture
def down_url() -> Iterator[str]:
    """A gateway that is down: a port held (bound, never listening) so nothing answers there."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


async def _progress_of(spawner: SimpleLocalProcessSpawner, start: Any) -> list[str]:
    """The spawn's progress as the hub's progress API sends it: its stream opened as the spawn
    begins, read until the spawn is over (jupyterhub.utils.iterate_until, as the API does)."""
    spawner._spawn_pending = True
    spawn = asyncio.ensure_future(start())
    messages = []
    async for event in iterate_until(spawn, spawner._generate_progress()):
        messages.append(event["message"])
    spawner._spawn_pending = False
    if spawn.exception():
        messages.append(f"Spawn failed: {format_exception(spawn.exception())[0]}")
    return messages


async def test_a_gateway_that_is_down_lets_the_server_start_without_a_key_and_the_progress_says_why(down_url):
    keys = GatewayKeys(down_url, "sk-master", timeout=2)
    spawner = _spawner(cls=TeamSpawner)
    spawner.environment = {"CELLMAGE_GATEWAY_KEY": "sk-team-key-from-config", "OTHER": "kept"}

    async def start() -> None:
        await keys.pre_spawn_hook(spawner)
        await asyncio.sleep(0.2)  # the spawner's own start

    messages = await _progress_of(spawner, start)

    [note] = [m for m in messages if "gateway" in m]
    assert f"Cannot reach the LLM gateway at {down_url} to mint ada's key (ConnectError" in note
    assert "Your server starts without one" in note and "tell your JupyterHub admin" in note
    assert messages[:2] == ["Server requested", "Spawning server..."]  # the spawner's own, still there
    # No key of its own, and not the team's either: LLM answers fail, the notebooks work, and
    # the server's own message for the missing key says why (a fast start shows no progress page)
    assert set(spawner.environment) == {"OTHER", "CELLMAGE_GATEWAY_KEY_PROBLEM"} and spawner.get_state() == {}
    assert spawner.environment["CELLMAGE_GATEWAY_KEY_PROBLEM"] == note
    # ... and a later start that gets a key carries no stale problem
    spawner.environment["CELLMAGE_GATEWAY_KEY"] = "sk-team-key-from-config"
    await GatewayKeys(down_url, "sk-master", timeout=2).pre_spawn_hook(spawner)  # (still down)
    assert list(spawner.environment).count("CELLMAGE_GATEWAY_KEY_PROBLEM") == 1


@pytest.mark.parametrize(("status", "words", "why"), [
    (500, "Internal Server Error", "DATABASE_URL"),
    (400, '{"error": {"message": "No connected db.", "type": "no_db_connection", "param": null, "code": "400"}}',
     "No connected db.); virtual keys need the gateway's database (DATABASE_URL)"),
    (401, '{"error": {"message": "Authentication Error, sk-master-for-key-tests is not valid"}}',
     "Authentication Error, [master key] is not valid); the hub's master key was refused"),
])
async def test_a_gateway_that_refuses_lets_the_server_start_without_a_key_and_says_why(gateway, status, words, why):
    gateway.refuse = (status, words)
    gateway.delay = 0.3  # the progress stream is open and waiting when the hook speaks
    spawner = _spawner(cls=TeamSpawner)

    async def start() -> None:
        await GatewayKeys(gateway.url, gateway.master_key).pre_spawn_hook(spawner)

    messages = await _progress_of(spawner, start)

    [note] = [m for m in messages if "gateway" in m]
    assert f"did not mint ada's key (HTTP {status}: " in note and why in note and "starts without one" in note
    assert gateway.master_key not in note
    assert "CELLMAGE_GATEWAY_KEY" not in spawner.environment


async def test_a_hub_that_requires_a_key_stops_the_start_and_the_progress_says_why(down_url):
    keys = GatewayKeys(down_url, "sk-master", require_key=True, timeout=2)
    spawner = _spawner(cls=TeamSpawner)

    messages = await _progress_of(spawner, lambda: keys.pre_spawn_hook(spawner))

    assert messages[-1].startswith(f"Spawn failed: Cannot reach the LLM gateway at {down_url} to mint ada's key")
    assert "Your server did not start" in messages[-1] and "tell your JupyterHub admin" in messages[-1]
    with pytest.raises(GatewayKeyError, match="Cannot reach the LLM gateway"):  # a plain spawner: the same error
        await keys.pre_spawn_hook(_spawner())


async def test_a_minted_key_is_named_in_the_progress(gateway):
    spawner = _spawner(cls=TeamSpawner)
    gateway.add(key_alias("ada", ""), "ada")

    messages = await _progress_of(spawner, lambda: GatewayKeys(gateway.url, gateway.master_key).pre_spawn_hook(spawner))

    assert "Deleting an LLM key left from an earlier start of this server." in messages
    assert f"Got an LLM key from the gateway ({key_alias('ada', '')})." in messages


async def test_servers_whose_names_read_alike_get_keys_of_their_own(gateway):
    keys = GatewayKeys(gateway.url, gateway.master_key)
    bobs_x, bob_xs = _spawner("bob", "x-default"), _spawner("bob-x")

    await keys.pre_spawn_hook(bobs_x)
    await keys.pre_spawn_hook(bob_xs)

    # Both keys live at the gateway, each under its own alias, neither deleted as the other's.
    assert (bobs_x.name, bob_xs.name) == ("x-default", "")
    assert gateway.aliases() == {keys.alias(bobs_x), keys.alias(bob_xs)} and len(gateway.keys) == 2
    assert bobs_x.environment["CELLMAGE_GATEWAY_KEY"] != bob_xs.environment["CELLMAGE_GATEWAY_KEY"]


NAMES = [("ada", ""), ("ada", "default"), ("bob", "x-default"), ("bob-x", ""), ("bob", "x"), ("bob-x", "x"),
         ("ada.lovelace@example.org", "gpu"), ("ünï cødé", "a_b"), ("ünï-cødé", "a_b"), ("..", ""), ("-", ""),
         ("x" * 300, "y" * 300)]


@pytest.mark.parametrize(("user", "server"), NAMES)
def test_every_alias_is_one_of_its_own_within_litellms_strictest_rule(user, server):
    alias = key_alias(user, server)

    assert LITELLM_ALIAS.fullmatch(alias) and len(alias) <= 255, alias
    assert alias not in {key_alias(u, s) for u, s in NAMES if (u, s) != (user, server)}
    assert key_alias(user, server, prefix="staging-hub").startswith("staging-hub-")


async def test_a_key_left_from_before_under_the_servers_alias_does_not_stop_its_start(gateway):
    keys = GatewayKeys(gateway.url, gateway.master_key)
    spawner = _spawner()
    stale = gateway.add(keys.alias(spawner), "ada")  # minted by a hub that then lost track of it

    await keys.pre_spawn_hook(spawner)

    # The stale key is gone (deleted by its alias), and the server got a new key under that alias.
    assert stale not in gateway.keys
    [(token, row)] = gateway.keys.items()
    assert row["key_alias"] == keys.alias(spawner) and spawner.environment["CELLMAGE_GATEWAY_KEY"].startswith("sk-")
    assert [(s.action, s.status) for s in gateway.seen] == [("generate", 400), ("delete", 200), ("generate", 200)]


async def test_the_keys_hash_survives_a_hub_restart_in_the_spawners_state_and_its_stop_deletes_it(gateway):
    keys = GatewayKeys(gateway.url, gateway.master_key)
    before = _spawner(cls=TeamSpawner)
    before.clear_state()  # what the hub does as a server starts, then the hook, then start()
    await keys.pre_spawn_hook(before)
    before.pid = 4242  # what SimpleLocalProcessSpawner.start records
    state = json.loads(json.dumps(before.get_state()))  # what the hub keeps in its database after start
    [(token, row)] = gateway.keys.items()

    # The hub restarts: a new spawner object for the running server, given the stored state.
    after = _spawner(cls=TeamSpawner)
    after.load_state(state)
    await keys.post_stop_hook(after)

    assert state["cellmage_gateway_key"] == {"token_id": token, "alias": keys.alias(before)}
    assert state["pid"] == 4242 and after.pid == 4242  # the spawner's own state, kept beside ours
    assert before.environment["CELLMAGE_GATEWAY_KEY"] not in json.dumps(state)  # the key itself never
    assert gateway.keys == {} and gateway.seen[-1].body == {"keys": [token]}  # deleted by its hash


async def test_a_server_whose_process_is_gone_still_has_its_key_deleted_by_its_hash(gateway):
    keys = GatewayKeys(gateway.url, gateway.master_key)
    spawner = _spawner(cls=TeamSpawner)
    await keys.pre_spawn_hook(spawner)
    [token] = gateway.keys

    # LocalProcessSpawner.poll() clears the state once the process is gone (as stop() waits for
    # it), before the hub runs post_stop_hook; then the hub clears it again and stores it.
    spawner.clear_state()
    await keys.post_stop_hook(spawner)
    spawner.clear_state()

    assert gateway.keys == {} and gateway.seen[-1].body == {"keys": [token]}
    assert spawner.get_state() == {}


async def test_without_the_mixin_a_stop_after_a_hub_restart_deletes_the_key_by_the_servers_alias(gateway):
    keys = GatewayKeys(gateway.url, gateway.master_key)
    await keys.pre_spawn_hook(_spawner("bob", "x-default"))
    await keys.pre_spawn_hook(_spawner("bob-x"))

    await keys.post_stop_hook(_spawner("bob", "x-default"))  # a new spawner object: nothing remembered

    assert gateway.aliases() == {key_alias("bob-x", "")}  # bob's key went; bob-x's stays
    assert gateway.seen[-1].body == {"key_aliases": [key_alias("bob", "x-default")]}


async def test_a_stop_with_no_key_left_at_the_gateway_is_quiet(gateway, caplog):
    keys = GatewayKeys(gateway.url, gateway.master_key)
    spawner = _spawner()
    await keys.pre_spawn_hook(spawner)
    gateway.keys.clear()  # expired, or an admin deleted it

    await keys.post_stop_hook(spawner)
    await keys.post_stop_hook(spawner)

    assert [s.status for s in gateway.seen[1:]] == [404, 404]
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "cellmage" in r.getMessage()]
