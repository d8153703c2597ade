"""Attacks on following answers (from an attack review of the answer board): late and slow
followers, whole answers, abandoned askers, races on one cell, secrets, shutdown, bad ids."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from .conftest import SECRET, toml_with
from .fake_upstream import FakeUpstream, Script
from .helpers import CELL, Stream, delta_text, read_events, runs_of_the_key, settled

BUFFER = 65536


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml_with(fake_upstream, limits={"stream_buffer_bytes": BUFFER}, timeouts={"client_behind": 2})


def _state(jp_serverapp):
    return jp_serverapp.web_app.settings["cellmage"]


# --- A: a late follower of an answer larger than the follower buffer ------------------------

async def test_late_follower_of_a_big_ended_answer_gets_its_real_end(api, fake_upstream):
    """An ended answer of 100 KB (> stream_buffer_bytes = 64 KB), followed by a fast reader."""
    fake_upstream.script(Script(chunks=["y" * 1000] * 100))
    async with api.client() as c:
        async with c.stream("POST", api.url("chat"), json={"prompt": "x", **CELL}) as response:
            asked = await read_events(response)
        answer_id = asked[0][1]["id"]
        assert asked[-1][0] == "done" and "error" not in [n for n, _ in asked]
        async with c.stream("GET", api.url(f"answers/{answer_id}/events")) as followed:
            watched = await read_events(followed)
    errors = [d for n, d in watched if n == "error"]
    assert errors == [], f"a fast late follower was cut: {errors}"
    assert watched[-1] == asked[-1]


async def test_late_follower_of_a_big_running_answer_is_not_cut(api, fake_upstream):
    """Joining a running answer whose text so far exceeds the follower buffer."""
    fake_upstream.script(Script(chunks=["z" * 1000] * 100 + [f"t{i} " for i in range(40)], interval=0.01))
    async with api.client() as asker, api.client() as watcher:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "long", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            # wait until more than BUFFER bytes of text are on the board
            for _ in range(500):
                if len((await watcher.get(api.url(f"answers/{answer_id}"))).json()["text"]) > 2 * BUFFER:
                    break
                await asyncio.sleep(0.01)
            async with watcher.stream("GET", api.url(f"answers/{answer_id}/events")) as followed:
                following = asyncio.ensure_future(read_events(followed))
                asked = await stream.rest()
                watched = await asyncio.wait_for(following, 10)
    assert [d for n, d in watched if n == "error"] == []
    assert delta_text(watched) == delta_text(asked)


# --- B: non-stream answers on the board -------------------------------------------------------

async def test_a_late_follower_of_a_non_stream_answer_gets_its_text(api, fake_upstream):
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(30)], interval=0.01))
    async with api.client() as c:
        whole = (await c.post(api.url("chat"), json={"prompt": "x", "stream": False, **CELL})).json()
        async with c.stream("GET", api.url(f"answers/{whole['id']}/events")) as followed:
            watched = await read_events(followed)
    assert delta_text(watched) == whole["text"]


async def test_mid_answer_follower_of_a_non_stream_answer_gets_its_text(api, fake_upstream, jp_serverapp):
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(30)], interval=0.03))
    state = _state(jp_serverapp)
    async with api.client() as asker, api.client() as watcher:
        asking = asyncio.ensure_future(asker.post(api.url("chat"), json={"prompt": "x", "stream": False, **CELL}))
        for _ in range(300):
            running = state.board.running_in(CELL["conversation"])
            if running:
                break
            await asyncio.sleep(0.01)
        (record,) = running
        await asyncio.sleep(0.3)  # some text has come from the provider
        mid = (await watcher.get(api.url(f"answers/{record.id}"))).json()
        async with watcher.stream("GET", api.url(f"answers/{record.id}/events")) as followed:
            watched = await asyncio.wait_for(read_events(followed), 10)
        whole = (await asking).json()
    assert mid["running"] is True
    assert delta_text(watched) == whole["text"], f"follower saw {delta_text(watched)!r}, the answer was {whole['text']!r}"


async def test_non_stream_asker_that_disconnects_is_abandoned_for_followers(api, fake_upstream, jp_serverapp):
    fake_upstream.script(Script(chunks=[f"w{i} " for i in range(100)], interval=0.03))
    state = _state(jp_serverapp)
    async with api.client() as watcher:
        asker = api.client()
        asking = asyncio.ensure_future(asker.post(api.url("chat"), json={"prompt": "x", "stream": False, **CELL}))
        for _ in range(300):
            running = state.board.running_in(CELL["conversation"])
            if running:
                break
            await asyncio.sleep(0.01)
        (record,) = running
        async with watcher.stream("GET", api.url(f"answers/{record.id}/events")) as followed:
            following = asyncio.ensure_future(read_events(followed))
            await asyncio.sleep(0.3)
            asking.cancel()  # the kernel died
            await asker.aclose()
            watched = await asyncio.wait_for(following, 10)
    errors = [d for n, d in watched if n == "error"]
    assert errors and errors[0]["code"] == "abandoned", errors


# --- C: a follower that never reads -------------------------------------------------------------

async def _stalled_follower(port: int, base_url: str, auth: str, answer_id: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    head = (
        f"GET {base_url}cellmage/api/answers/{answer_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {auth}\r\n\r\n"
    ).encode()
    await asyncio.get_running_loop().sock_sendall(sock, head)
    return sock


def _follow_handlers():
    import gc

    from cellmage_server.routes.answers import FollowHandler

    return [h for h in gc.get_objects() if isinstance(h, FollowHandler)]


async def test_a_stalled_follower_does_not_slow_the_answer_and_is_cut(
    api, fake_upstream, jp_http_port, jp_base_url, jp_auth_header, jp_serverapp
):
    # Given an answer of 8 MB that the provider sends as fast as it can
    piece = "x" * 4000
    fake_upstream.script(Script(chunks=[piece] * 2000, interval=0.0, usage=None))
    state = _state(jp_serverapp)
    async with api.client() as asker:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "x", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            # When a follower joins and never reads
            sock = await _stalled_follower(jp_http_port, jp_base_url, jp_auth_header["Authorization"], answer_id)
            try:
                # Then the asker still gets the whole answer: the provider was never held back
                asked = await asyncio.wait_for(stream.rest(), 30)
                assert asked[-1][0] == "done" and "error" not in [n for n, _ in asked]
                assert len(delta_text(asked)) == 2000 * len(piece)
                assert fake_upstream.received[0].finished is not None and fake_upstream.received[0].closed_by_client is None
                # ... the server held at most the buffer and one piece for the follower
                (handler,) = [h for h in _follow_handlers() if h._out is not None and answer_id in h.request.path]
                assert handler._out.peak <= BUFFER + BUFFER // 8 * 6 + 200, handler._out.peak
                # ... and, behind for longer than timeouts.client_behind (2 s), it is cut: it
                # follows nothing, its handler ends and its connection closes
                for _ in range(100):  # 5 s
                    if state.board.get(answer_id).followers == 0 and handler.request.connection.stream.closed():
                        break
                    await asyncio.sleep(0.05)
                assert state.board.get(answer_id).followers == 0
                assert handler.request.connection.stream.closed()
            finally:
                sock.close()


# --- D: races on one cell ---------------------------------------------------------------------

async def test_concurrent_asks_on_one_cell_only_one_starts(api, fake_upstream):
    fake_upstream.default = Script(chunks=[f"t{i} " for i in range(20)], interval=0.02)
    async with api.client() as c:
        bodies = [{"prompt": f"p{i}", "stream": False, **CELL} for i in range(8)]
        results = await asyncio.gather(*(c.post(api.url("chat"), json=b) for b in bodies))
    codes = sorted(r.status_code for r in results)
    # at most max_streams_per_user (2) may pass the capacity check; only one may answer
    assert codes.count(200) == 1, codes
    assert len(fake_upstream.received) == 1


async def test_cell_busy_refusals_do_not_leak_capacity(api, fake_upstream):
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(200)], interval=0.03))
    async with api.client() as asker, api.client() as other:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "long", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            for _ in range(10):
                assert (await other.post(api.url("chat"), json={"prompt": "again", **CELL})).status_code == 409
            fake_upstream.script(Script(chunks=["ok"]))
            second = await other.post(api.url("chat"), json={"prompt": "b", "stream": False, **CELL, "cell_id": "cell-2"})
            assert second.status_code == 200
            await other.post(api.url(f"chat/{answer_id}/cancel"))
            await stream.rest()
    await settled(api, 6)


async def test_cancel_then_reask_at_once_is_accepted_before_done(api, fake_upstream):
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(200)], interval=0.03), Script(chunks=["new"]))
    async with api.client() as asker, api.client() as other:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "long", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            cancelled = await other.post(api.url(f"chat/{answer_id}/cancel"))
            assert cancelled.status_code == 204
            again = await other.post(api.url("chat"), json={"prompt": "again", "stream": False, **CELL})
            rest = await stream.rest()
    assert again.status_code == 200, again.text
    assert rest[-2][1]["code"] == "cancelled"


# --- E: secrets ------------------------------------------------------------------------------

async def test_followers_and_the_record_never_see_a_key_run(api, fake_upstream):
    half = len(SECRET) // 2
    chunks = ["key: ", SECRET, " split: ", SECRET[:half], SECRET[half:], " char by char: "] + list(SECRET) + [" end"]
    fake_upstream.script(Script(chunks=chunks, interval=0.02))
    async with api.client() as asker, api.client() as watcher:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "x", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            mid = (await watcher.get(api.url(f"answers/{answer_id}"))).text
            async with watcher.stream("GET", api.url(f"answers/{answer_id}/events")) as followed:
                following = asyncio.ensure_future(read_events(followed))
                asked = await stream.rest()
                watched = await asyncio.wait_for(following, 10)
        after = (await watcher.get(api.url(f"answers/{answer_id}"))).text
        async with watcher.stream("GET", api.url(f"answers/{answer_id}/events")) as late:
            late_events = await read_events(late)
    for name, text in [("asked", delta_text(asked)), ("watched", delta_text(watched)), ("mid", mid), ("after", after),
                       ("late", delta_text(late_events))]:
        assert SECRET not in text and runs_of_the_key(text) == [], (name, runs_of_the_key(text))


async def test_error_message_echoing_a_key_is_redacted_on_the_board(api, fake_upstream):
    fake_upstream.script(Script(chunks=["a", "b"], error_chunk_after=1, error_message=f"bad key {SECRET}"))
    async with api.client() as c:
        async with c.stream("POST", api.url("chat"), json={"prompt": "x", **CELL}) as response:
            asked = await read_events(response)
        answer_id = asked[0][1]["id"]
        record = (await c.get(api.url(f"answers/{answer_id}"))).text
        async with c.stream("GET", api.url(f"answers/{answer_id}/events")) as late:
            late_events = await read_events(late)
    assert runs_of_the_key(record) == [] and runs_of_the_key(json.dumps(late_events)) == []


# --- F: the asker leaves after the provider finished, before `done` went out -----------------

class FakeShared:
    available = True

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, str]] = []

    async def replace_output(self, path, cell_id, answer_id, output) -> bool:
        self.writes.append((path, cell_id, answer_id))
        return True


async def test_asker_gone_before_done_is_written_like_an_abandoned_answer(api, fake_upstream, jp_serverapp):
    state = _state(jp_serverapp)
    shared = FakeShared()
    state.answers.shared = shared
    original = state.store.save_turn

    async def slow_save(*args, **kwargs):
        await asyncio.sleep(0.5)
        return await original(*args, **kwargs)

    state.store.save_turn = slow_save
    fake_upstream.script(Script(chunks=["whole ", "answer"]))
    asker = api.client()
    cm = asker.stream("POST", api.url("chat"), json={"prompt": "x", **CELL})
    response = await cm.__aenter__()
    stream = Stream(response)
    answer_id = await stream.until_delta()
    # the provider has finished (the answer is off the board's running set), `done` not yet out
    for _ in range(200):
        if state.board.get(answer_id).ending is not None:
            break
        await asyncio.sleep(0.01)
    assert state.board.get(answer_id).ending is not None
    await cm.__aexit__(None, None, None)  # the page closes now, before it got `done`
    await asker.aclose()
    await settled(api, 6)
    # The asker never got `done`, so it never wrote the stored answer into the cell; the
    # collaborators' shared notebook keeps the live placeholder unless the server writes it.
    assert shared.writes, "nobody writes the answer into the shared notebook"


# --- G: shutdown with followers attached --------------------------------------------------------

async def test_followers_get_an_end_at_shutdown(api, fake_upstream, jp_serverapp):
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(300)], interval=0.02))
    (app,) = jp_serverapp.extension_manager.extension_apps["cellmage_server"]
    async with api.client() as asker, api.client() as watcher:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "long", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            followers = [watcher.stream("GET", api.url(f"answers/{answer_id}/events")) for _ in range(5)]
            opened = [await f.__aenter__() for f in followers]
            tasks = [asyncio.ensure_future(read_events(r)) for r in opened]
            await asyncio.sleep(0.1)
            t0 = time.monotonic()
            await asyncio.wait_for(app.stop_extension(), 15)
            took = time.monotonic() - t0
            watched = await asyncio.wait_for(asyncio.gather(*tasks), 10)
            await stream.rest()
            for f in followers:
                await f.__aexit__(None, None, None)
    assert took < 3, took
    for w in watched:
        assert w[-2][0] == "error" and w[-2][1]["code"] == "shutdown", w[-2:]


# --- H: many followers, malformed ids -----------------------------------------------------------

async def test_as_many_followers_as_allowed_get_the_same_text_and_one_more_is_refused(api, fake_upstream, jp_serverapp):
    allowed = _state(jp_serverapp).board.max_per_answer  # limits.max_followers_per_answer
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(100)], interval=0.01))
    async with api.client() as asker, api.client(limits=__import__("httpx").Limits(max_connections=100)) as watcher:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "long", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            cms = [watcher.stream("GET", api.url(f"answers/{answer_id}/events")) for _ in range(allowed)]
            opened = [await f.__aenter__() for f in cms]
            tasks = [asyncio.ensure_future(read_events(r)) for r in opened]
            refused = await watcher.get(api.url(f"answers/{answer_id}/events"))
            asked = await stream.rest()
            watched = await asyncio.wait_for(asyncio.gather(*tasks), 20)
            for f in cms:
                await f.__aexit__(None, None, None)
    for w in watched:
        assert delta_text(w) == delta_text(asked) and w[-1] == asked[-1]
    assert refused.status_code == 429 and refused.json()["reason"] == "too_many_followers"
    assert "limits.max_followers_per_answer" in refused.json()["message"]


@pytest.mark.parametrize("bad", ["0" * 31, "0" * 33, "G" * 32, "A" * 32, "..%2F" + "0" * 27, "0" * 32 + "%00"])
async def test_malformed_ids_are_404(api, bad):
    for path in (f"answers/{bad}", f"answers/{bad}/events"):
        r = await api.get(path)
        assert r.status_code == 404, (path, r.status_code)
    r = await api.post(f"answers/{bad}/settle")
    assert r.status_code in (404, 403), r.status_code
