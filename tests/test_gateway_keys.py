"""The hub-side hooks that mint and delete each user's gateway key, against a fake of LiteLLM Proxy's
key API that keeps its rules (tests/fake_key_api.py; the real gateway needs its database for
virtual keys, and tests/hub/ runs the hooks against the real one, database-less)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import SimpleLocalProcessSpawner

from cellmage_server.gateway_keys import GatewayKeyError, GatewayKeys

from .fake_key_api import FakeKeyAPI


@pytest.fixture
def gateway() -> Iterator[FakeKeyAPI]:
    fake = FakeKeyAPI().start()
    yield fake
    fake.stop()


def _spawner(user: str = "ada", server: str = "") -> SimpleLocalProcessSpawner:
    return SimpleLocalProcessSpawner(user=SimpleNamespace(name=user, url=f"/user/{user}/"), name=server)


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
