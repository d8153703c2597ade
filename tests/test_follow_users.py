"""Attacks: other principals, a follower gone before it follows, a stale turn after a fast re-ask."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from .fake_upstream import Script
from .helpers import CELL, NamedUsers, Stream

HOLD = Script(silence_after=0, hold_seconds=5)


class TestOtherPrincipals:
    @pytest.fixture
    def jp_server_config(self, cellmage_config: Any) -> dict[str, Any]:
        return {"ServerApp": {"jpserver_extensions": {"cellmage_server": True},
                              "allow_unauthenticated_access": False, "identity_provider_class": NamedUsers}}

    async def _open(self, client, api, body):
        cm = client.stream("POST", api.url("chat"), json=body)
        response = await cm.__aenter__()
        assert response.status_code == 200
        stream = Stream(response)
        return cm, stream

    async def test_answer_without_conversation_is_invisible_to_others(self, api, fake_upstream):
        fake_upstream.script(Script(chunks=[f"t{i} " for i in range(100)], interval=0.02))
        async with api.client() as alice, api.client() as bob:
            alice.headers["X-Test-User"] = "alice"
            bob.headers["X-Test-User"] = "bob"
            cm, stream = await self._open(alice, api, {"prompt": "mine"})
            try:
                answer_id = await stream.until_delta()
                assert (await bob.post(api.url(f"chat/{answer_id}/cancel"))).status_code == 404
                assert (await bob.get(api.url(f"answers/{answer_id}"))).status_code == 404
                assert (await bob.get(api.url(f"answers/{answer_id}/events"))).status_code == 404
                assert (await bob.post(api.url(f"answers/{answer_id}/settle"))).status_code == 404
                assert (await alice.get(api.url(f"answers/{answer_id}"))).status_code == 200
                rest = await stream.rest()
                assert rest[-1][0] == "done" and "error" not in [n for n, _ in rest]
            finally:
                await cm.__aexit__(None, None, None)

    async def test_answer_with_a_conversation_but_no_cell_by_another_user(self, api, fake_upstream):
        fake_upstream.script(Script(chunks=[f"t{i} " for i in range(100)], interval=0.02))
        async with api.client() as alice, api.client() as bob:
            alice.headers["X-Test-User"] = "alice"
            bob.headers["X-Test-User"] = "bob"
            cm, stream = await self._open(alice, api, {"prompt": "mine", "conversation": "team/one.ipynb"})
            try:
                answer_id = await stream.until_delta()
                cancel = await bob.post(api.url(f"chat/{answer_id}/cancel"))
                rest = await stream.rest()
                assert rest[-1][0] == "done" and "error" not in [n for n, _ in rest]  # not stopped
            finally:
                await cm.__aexit__(None, None, None)
        # README: collaborators may stop answers *of notebook cells*; this one has no cell
        assert cancel.status_code == 404


    async def test_another_person_stops_an_answer_of_a_notebook_cell(self, api, fake_upstream):
        # README: a collaborator's stop button stops an answer of a cell that someone else asked
        fake_upstream.script(Script(chunks=[f"t{i} " for i in range(200)], interval=0.02))
        async with api.client() as alice, api.client() as bob:
            alice.headers["X-Test-User"] = "alice"
            bob.headers["X-Test-User"] = "bob"
            cm, stream = await self._open(alice, api, {"prompt": "mine", **CELL})
            try:
                answer_id = await stream.until_delta()
                cancel = await bob.post(api.url(f"chat/{answer_id}/cancel"))
                rest = await stream.rest()
            finally:
                await cm.__aexit__(None, None, None)
        assert cancel.status_code == 204
        assert [n for n, _ in rest][-2:] == ["error", "done"]
        assert rest[-2][1]["code"] == "cancelled"
        assert await fake_upstream.until(lambda: fake_upstream.received[0].closed_by_client is not None)
        assert fake_upstream.received[0].finished is None  # stopped, not run to its end


async def test_a_follower_gone_before_it_follows_does_not_stay(api, fake_upstream, jp_serverapp, monkeypatch,
                                                                jp_http_port, jp_base_url, jp_auth_header):
    from cellmage_server.routes import api as handlers

    preparing, release, handled = (asyncio.Event() for _ in range(3))
    follow = handlers.FollowHandler
    prepare, get = follow.prepare, follow.get

    async def held_prepare(self):
        await prepare(self)
        preparing.set()
        await release.wait()  # stands for any await before get() registers the follower

    async def observed_get(self, answer_id):
        try:
            await get(self, answer_id)
        finally:
            handled.set()

    monkeypatch.setattr(follow, "prepare", held_prepare)
    monkeypatch.setattr(follow, "get", observed_get)
    state = jp_serverapp.web_app.settings["cellmage"]
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(150)], interval=0.02))
    async with api.client() as asker:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "x", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            sock = socket.create_connection(("127.0.0.1", jp_http_port))
            sock.sendall((f"GET {jp_base_url}cellmage/api/answers/{answer_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{jp_http_port}\r\n"
                          f"Authorization: {jp_auth_header['Authorization']}\r\n\r\n").encode())
            try:
                await asyncio.wait_for(preparing.wait(), 10)
                sock.close()  # the page went away while the server was still preparing
            finally:
                release.set()
            await asyncio.wait_for(handled.wait(), 10)
            record = state.board.get(answer_id)
            # Handled while the answer still runs: the follower did not wait for the answer's end
            running = record.ending is None
            leaked = record.followers
            await stream.rest()
    assert running, "the closed follower's request was held until the answer ended"
    assert leaked == 0, f"{leaked} follower(s) of a closed connection stay on the running answer"


class HeldShared:
    """A live shared notebook whose room lookup awaits until the test lets it go on."""

    available = True

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.written = asyncio.Event()

    async def replace_output(self, path, cell_id, answer_id, output) -> bool:
        await self.release.wait()  # a room lookup that awaits
        self.written.set()
        return True


async def test_a_reask_after_abandon_keeps_its_turn(api, fake_upstream, jp_serverapp):
    state = jp_serverapp.web_app.settings["cellmage"]
    # The one answer lifecycle writes abandoned answers into the shared notebook (answer/lifecycle.py)
    state.shared = state.answers.shared = shared = HeldShared()
    fake_upstream.script(Script(chunks=[f"old{i} " for i in range(200)], interval=0.02), Script(chunks=["NEW"]))
    asker = api.client()
    cm = asker.stream("POST", api.url("chat"), json={"prompt": "old", **CELL})
    response = await cm.__aenter__()
    await Stream(response).until_delta()
    await cm.__aexit__(None, None, None)  # the asker's page closes mid-answer
    await asker.aclose()
    async with api.client() as c:
        for _ in range(200):  # the cell frees as soon as the answer ended (abandoned)
            r = await c.post(api.url("chat"), json={"prompt": "new", "stream": False, **CELL})
            if r.status_code != 409:
                break
            await asyncio.sleep(0.005)
        assert r.status_code == 200 and r.json()["text"] == "NEW"
        shared.release.set()
        await asyncio.wait_for(shared.written.wait(), 10)  # the abandoned answer's last step
        turns = (await c.get(api.url(f"conversations/{CELL['conversation']}"))).json()["turns"]
    (turn,) = [t for t in turns if t["cell_id"] == CELL["cell_id"]]
    assert turn["prompt"] == "new", f"the cell's turn is the abandoned answer's: {turn['prompt']!r} / {turn['status']}"
