"""The hub-side hooks that mint and delete each user's gateway key, against a fake of LiteLLM Proxy's
key API that keeps its rules (tests/fake_key_api.py; the real gateway needs its database for
virtual keys, and tests/hub/ runs the hooks against the real one, database-less)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from jupyterhub import orm
from jupyterhub.spawner import SimpleLocalProcessSpawner

from cellmage_server.gateway_keys import GatewayKeyError, GatewayKeys, key_alias

from .fake_key_api import FakeKeyAPI

# LiteLLM's strictest alias rule (_KEY_ALIAS_PATTERN in key_management_endpoints.py, 1.106.2), on
# when the gateway sets enable_key_alias_format_validation. Copied: importing it takes ~10 s.
LITELLM_ALIAS = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-/\.@]{0,253}[a-zA-Z0-9]$")


@pytest.fixture
def gateway() -> Iterator[FakeKeyAPI]:
    fake = FakeKeyAPI().start()
    yield fake
    fake.stop()


def _spawner(user: str = "ada", server: str = "") -> SimpleLocalProcessSpawner:
    # The hub's own row for the server (not in a database here): it gives the spawner its name.
    row = orm.Spawner(name=server, state={})
    return SimpleLocalProcessSpawner(user=SimpleNamespace(name=user, url=f"/user/{user}/"), orm_spawner=row)


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

    assert gateway.keys == {}


async def test_a_gateway_without_its_database_stops_the_spawn_with_a_reason(gateway):
    gateway.refuse = (400, '{"error": {"message": "No connected db."}}')
    spawner = _spawner()

    with pytest.raises(GatewayKeyError, match=r"did not mint ada's key \(HTTP 400.*No connected db.*DATABASE_URL"):
        await GatewayKeys(gateway.url, gateway.master_key).pre_spawn_hook(spawner)
    assert "CELLMAGE_GATEWAY_KEY" not in spawner.environment


async def test_a_gateway_that_is_down_stops_the_spawn_with_its_address():
    with pytest.raises(GatewayKeyError, match="cannot reach the LLM gateway at http://127.0.0.1:9"):
        await GatewayKeys("http://127.0.0.1:9", "sk-master", timeout=2).pre_spawn_hook(_spawner())


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
