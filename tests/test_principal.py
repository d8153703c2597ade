"""One principal per person: every client holding the server's token is the server's owner; under
an identity provider that names people (JupyterHub's, or the one below), each name is its own
principal. Cancel, the per-user limit and the usage ledger key on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx_sse import EventSource

from cellmage_server.principal import owner_name

from .fake_upstream import Script
from .helpers import NamedUsers, settled

HOLD = Script(silence_after=0, hold_seconds=5)


async def _open(client, api, body):
    """POST chat and read its start event, leaving the stream open; returns (response cm, events, start)."""
    cm = client.stream("POST", api.url("chat"), json=body)
    response = await cm.__aenter__()
    assert response.status_code == 200, await response.aread()
    events = EventSource(response).aiter_sse()
    start = json.loads((await events.__anext__()).data)
    return cm, events, start


class TestTheTokenIsTheOwner:
    async def test_any_client_with_the_token_cancels_the_owners_answer(self, api, fake_upstream):
        fake_upstream.script(HOLD)
        async with api.client() as kernel, api.client() as script:
            cm, events, start = await _open(kernel, api, {"prompt": "long"})
            try:
                # When another cookieless client with the same token cancels it
                cancelled = await script.post(api.url(f"chat/{start['id']}/cancel"))
                assert cancelled.status_code == 204
                rest = [(sse.event, json.loads(sse.data)) async for sse in events]
            finally:
                await cm.__aexit__(None, None, None)
        assert [name for name, _ in rest][-2:] == ["error", "done"]
        assert rest[-2][1]["code"] == "cancelled"

    async def test_the_limit_counts_every_client_of_the_owner(self, api, fake_upstream):
        fake_upstream.script(HOLD, HOLD)
        clients = [api.client() for _ in range(3)]
        opened = []
        try:
            for c in clients[:2]:
                opened.append(await _open(c, api, {"prompt": "long"}))
            assert await fake_upstream.until(lambda: len(fake_upstream.received) == 2)
            # Then a third client without a cookie is the same person, over the limit of 2
            third = await clients[2].post(api.url("chat"), json={"prompt": "three"})
            assert third.status_code == 429
            assert len(fake_upstream.received) == 2
        finally:
            for cm, _, _ in opened:
                await cm.__aexit__(None, None, None)
            for c in clients:
                await c.aclose()
        await settled(api, 4)

    async def test_the_ledger_is_one_for_all_clients_of_the_owner(self, api, fake_upstream):
        async with api.client() as kernel:
            assert (await kernel.post(api.url("chat"), json={"prompt": "a", "stream": False})).status_code == 200
        async with api.client() as script:
            assert (await script.post(api.url("chat"), json={"prompt": "b", "stream": False})).status_code == 200
        async with api.client() as browser:
            await browser.get(api.url("status"))  # now holds a login cookie, as a browser does
            usage = (await browser.get(api.url("usage"))).json()
        assert usage["user"] == owner_name()
        assert usage["total"]["answers"] == 2


class TestNamedUsers:
    @pytest.fixture
    def jp_server_config(self, cellmage_config: Any) -> dict[str, Any]:
        return {
            "ServerApp": {
                "jpserver_extensions": {"cellmage_server": True},
                "allow_unauthenticated_access": False,
                "identity_provider_class": NamedUsers,
            }
        }

    async def test_nobody_cancels_another_users_answer(self, api, fake_upstream):
        fake_upstream.script(HOLD)
        async with api.client() as alice, api.client() as bob:
            alice.headers["X-Test-User"] = "alice"
            bob.headers["X-Test-User"] = "bob"
            cm, events, start = await _open(alice, api, {"prompt": "mine"})
            try:
                refused = await bob.post(api.url(f"chat/{start['id']}/cancel"))
                unknown = await alice.post(api.url(f"chat/{'0' * 32}/cancel"))

                assert refused.status_code == 404
                assert unknown.status_code == 404
                assert await fake_upstream.until(lambda: fake_upstream.received)
                assert fake_upstream.received[0].closed_by_client is None  # still running
            finally:
                await events.aclose()
                await cm.__aexit__(None, None, None)

    async def test_one_users_answers_do_not_count_against_another(self, api, fake_upstream):
        fake_upstream.script(HOLD, HOLD)
        async with api.client() as alice, api.client() as bob:
            alice.headers["X-Test-User"] = "alice"
            bob.headers["X-Test-User"] = "bob"
            opened = [await _open(alice, api, {"prompt": "one"}), await _open(alice, api, {"prompt": "two"})]
            try:
                assert (await alice.post(api.url("chat"), json={"prompt": "three"})).status_code == 429
                answer = await bob.post(api.url("chat"), json={"prompt": "mine", "stream": False})
                assert answer.status_code == 200
            finally:
                for cm, _, _ in opened:
                    await cm.__aexit__(None, None, None)
        await settled(api, 4)

    async def test_each_user_sees_only_their_own_usage(self, api, fake_upstream):
        async with api.client() as alice, api.client() as bob:
            alice.headers["X-Test-User"] = "alice"
            bob.headers["X-Test-User"] = "bob"
            for _ in range(2):
                await alice.post(api.url("chat"), json={"prompt": "a", "stream": False})
            await bob.post(api.url("chat"), json={"prompt": "b", "stream": False, "model": "other"})

            mine = (await alice.get(api.url("usage"))).json()
            theirs = (await bob.get(api.url("usage"))).json()

        assert (mine["user"], theirs["user"]) == ("alice", "bob")
        assert mine["total"]["answers"] == 2 and mine["total"]["prompt_tokens"] == 14
        assert [(r["model"], r["answers"]) for r in mine["by_day"]] == [("fast", 2)]
        assert theirs["total"]["answers"] == 1 and theirs["by_day"][0]["model"] == "other"
