"""Answers others follow: by id, the same text and end as the asker's; one answer per cell; an
answer whose asker went away ends as abandoned for everyone else."""

from __future__ import annotations

import asyncio

from .fake_upstream import Script
from .helpers import CELL, Stream, delta_text, read_events

SLOW = Script(chunks=[f"t{i} " for i in range(60)], interval=0.03)


async def test_a_follower_gets_the_same_text_and_end_as_the_asker(api, fake_upstream):
    fake_upstream.script(SLOW)
    async with api.client() as asker, api.client() as watcher:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "long", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            # A watcher joins mid-answer: it gets the text so far at once, then the rest
            async with watcher.stream("GET", api.url(f"answers/{answer_id}/events")) as followed:
                assert followed.headers["content-type"].startswith("text/event-stream")
                following = asyncio.ensure_future(read_events(followed))
                asked = await stream.rest()
                watched = await asyncio.wait_for(following, 10)

    assert watched[0][0] == "start"
    assert watched[0][1] | {"running": True} == {
        "id": answer_id, "model": "fast", "persona": None, "conversation": "team/one.ipynb",
        "cell_id": "cell-1", "running": True,
    }
    assert delta_text(watched) == delta_text(asked) == "".join(SLOW.chunks)
    assert watched[-2:] == asked[-2:]  # the same usage and done
    assert [name for name, _ in watched][-2:] == ["usage", "done"]


async def test_a_late_follower_learns_how_an_answer_ended(api, fake_upstream):
    fake_upstream.script(Script(chunks=["a ", "b"]))
    async with api.client() as c:
        async with c.stream("POST", api.url("chat"), json={"prompt": "x", **CELL}) as response:
            asked = await read_events(response)
        answer_id = asked[0][1]["id"]
        async with c.stream("GET", api.url(f"answers/{answer_id}/events")) as followed:
            watched = await read_events(followed)
        record = (await c.get(api.url(f"answers/{answer_id}"))).json()

    assert watched[0][1]["running"] is False
    assert delta_text(watched) == "a b" and watched[-1] == asked[-1]
    assert record["text"] == "a b" and record["ending"]["done"]["finish_reason"] == "stop"
    assert record["written"] is False and record["cell_id"] == "cell-1"


async def test_one_answer_per_cell_whoever_asks(api, fake_upstream):
    fake_upstream.script(Script(chunks=[f"t{i} " for i in range(400)], interval=0.03))
    async with api.client() as first, api.client() as second:
        async with first.stream("POST", api.url("chat"), json={"prompt": "long", **CELL}) as response:
            stream = Stream(response)
            answer_id = await stream.until_delta()
            # A second ask on the answering cell is refused, saying what to do
            refused = await second.post(api.url("chat"), json={"prompt": "again", **CELL})
            assert refused.status_code == 409
            assert refused.json()["reason"] == "cell_busy" and "Stop that answer first" in refused.json()["message"]
            # Another cell of the same notebook answers meanwhile
            async with second.stream("POST", api.url("chat"), json={"prompt": "x", **CELL, "cell_id": "cell-2"}) as other:
                assert other.status_code == 200
                assert await Stream(other).until_delta() != answer_id
            # A collaborator's stop control stops the answer
            assert (await second.post(api.url(f"chat/{answer_id}/cancel"))).status_code == 204
            rest = await stream.rest()
        assert rest[-2][1]["code"] == "cancelled"
        # Once it ended (before its `done` went out), the cell takes a new answer at once
        fake_upstream.script(Script(chunks=["new"]))
        again = await first.post(api.url("chat"), json={"prompt": "again", "stream": False, **CELL})
        assert again.status_code == 200 and again.json()["text"] == "new"
    assert len(fake_upstream.received) == 3  # the refused ask never reached the provider


async def test_an_answer_whose_asker_left_ends_as_abandoned_for_its_followers(api, fake_upstream):
    fake_upstream.script(SLOW)
    async with api.client() as asker, api.client() as watcher:
        async with asker.stream("POST", api.url("chat"), json={"prompt": "long", **CELL}) as response:
            answer_id = await Stream(response).until_delta()
            followed_cm = watcher.stream("GET", api.url(f"answers/{answer_id}/events"))
            followed = await followed_cm.__aenter__()
            following = asyncio.ensure_future(read_events(followed))
        # The asker's page closed mid-answer (its connection is gone)
        watched = await asyncio.wait_for(following, 10)
        await followed_cm.__aexit__(None, None, None)
        record = (await watcher.get(api.url(f"answers/{answer_id}"))).json()
        # Without real-time collaboration the server cannot write the notebook: it says so, and
        # the page that opens the notebook writes the answer from this record.
        settled = await watcher.post(api.url(f"answers/{answer_id}/settle"))

    assert watched[-2][0] == "error" and watched[-2][1]["code"] == "abandoned"
    assert "closed before the answer ended" in watched[-2][1]["message"]
    assert watched[-1][1]["finish_reason"] == "cancelled"
    assert record["ending"]["error"]["code"] == "abandoned" and record["text"] == delta_text(watched)
    assert settled.status_code == 200 and settled.json() == {"written": False}
    upstream = fake_upstream.received[0]
    assert await fake_upstream.until(lambda: upstream.closed_by_client is not None)


async def test_any_answer_is_readable_by_id_and_an_unknown_id_says_so(api, fake_upstream):
    fake_upstream.script(Script(chunks=["private"]))
    async with api.client() as c:
        answer = (await c.post(api.url("chat"), json={"prompt": "x", "stream": False})).json()
        assert (await c.get(api.url(f"answers/{answer['id']}"))).json()["text"] == "private"
        unknown = await c.get(api.url(f"answers/{'0' * 32}/events"))
        assert unknown.status_code == 404 and "is known to this server" in unknown.json()["message"]
