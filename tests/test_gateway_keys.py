"""The hub-side hooks that mint and delete each user's gateway key, against an HTTP server that
answers LiteLLM Proxy's documented ``/key/generate`` and ``/key/delete`` (the real gateway needs
its database for virtual keys; tests/hub/ runs them against the real one, database-less)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.spawner import SimpleLocalProcessSpawner
from tornado import httpserver, web
from tornado.netutil import bind_sockets

from cellmage_server.gateway_keys import GatewayKeyError, GatewayKeys

MASTER = "sk-master-for-key-tests"


class _Keys(web.RequestHandler):
    def initialize(self, seen: list[tuple[str, dict[str, Any], str]], status: int) -> None:
        self.seen, self.status = seen, status

    def post(self, action: str) -> None:
        self.seen.append((action, json.loads(self.request.body), self.request.headers.get("Authorization", "")))
        if self.status != 200:
            self.set_status(self.status)
            self.finish({"error": {"message": "No connected db."}})
        elif action == "generate":
            self.finish({"key": "sk-virtual-ada-1", "user_id": json.loads(self.request.body)["user_id"]})
        else:
            self.finish({"deleted_keys": json.loads(self.request.body)["keys"]})


@pytest.fixture
def gateway(request: pytest.FixtureRequest):
    status = getattr(request, "param", 200)
    seen: list[tuple[str, dict[str, Any], str]] = []
    sockets = bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(web.Application([(r"/key/(generate|delete)", _Keys, {"seen": seen, "status": status})]))
    server.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}", seen
    server.stop()


def _spawner() -> SimpleLocalProcessSpawner:
    return SimpleLocalProcessSpawner(user=SimpleNamespace(name="ada", url="/user/ada/"), name="")


async def test_a_starting_server_gets_a_key_minted_for_its_user_and_a_stopped_one_loses_it(gateway):
    url, seen = gateway
    keys = GatewayKeys(url, MASTER, max_budget=20.0, budget_duration="30d", models=["gpt-4o-mini"], rpm_limit=60)
    spawner = _spawner()

    await keys.pre_spawn_hook(spawner)

    assert spawner.environment["CELLMAGE_GATEWAY_KEY"] == "sk-virtual-ada-1"
    action, body, auth = seen[0]
    assert action == "generate" and auth == f"Bearer {MASTER}"
    assert body["user_id"] == "ada" and body["key_alias"] == "jupyterhub-ada-default"
    assert body["max_budget"] == 20.0 and body["budget_duration"] == "30d"
    assert body["models"] == ["gpt-4o-mini"] and body["rpm_limit"] == 60 and body["duration"] == "7d"

    await keys.post_stop_hook(spawner)
    await keys.post_stop_hook(spawner)  # once only

    assert [(a, b) for a, b, _ in seen[1:]] == [("delete", {"keys": ["sk-virtual-ada-1"]})]


@pytest.mark.parametrize("gateway", [400], indirect=True)
async def test_a_gateway_without_its_database_stops_the_spawn_with_a_reason(gateway):
    url, _ = gateway
    spawner = _spawner()

    with pytest.raises(GatewayKeyError, match=r"did not mint ada's key \(HTTP 400.*No connected db.*DATABASE_URL"):
        await GatewayKeys(url, MASTER).pre_spawn_hook(spawner)
    assert "CELLMAGE_GATEWAY_KEY" not in spawner.environment


async def test_a_gateway_that_is_down_stops_the_spawn_with_its_address():
    with pytest.raises(GatewayKeyError, match="cannot reach the LLM gateway at http://127.0.0.1:9"):
        await GatewayKeys("http://127.0.0.1:9", MASTER, timeout=2).pre_spawn_hook(_spawner())
