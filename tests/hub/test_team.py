"""The team deployment end to end: a browser's or a kernel's request goes through the hub's proxy
(configurable-http-proxy) to the user's single-user server, then through the gateway (LiteLLM
Proxy) to the provider (the fake). Everything is a real process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource

from ..fake_upstream import FakeUpstream, Script
from .hub_kernel import HubKernel
from .stack import PROVIDER_KEY, Stack

pytestmark = pytest.mark.hub


@dataclass
class Answer:
    status: int
    events: list[tuple[str, Any, float]] = field(default_factory=list)  # (name, data, monotonic time)
    body: bytes = b""

    def names(self) -> list[str]:
        return [name for name, _, _ in self.events]

    def text(self) -> str:
        return "".join(data["text"] for name, data, _ in self.events if name == "delta")

    def one(self, name: str) -> Any:
        found = [data for n, data, _ in self.events if n == name]
        assert len(found) == 1, self.names()
        return found[0]


class User:
    """One person's HTTP access to their (or someone else's) server through the hub's proxy."""

    def __init__(self, stack: Stack, name: str, token: str) -> None:
        self.stack, self.name, self.token = stack, name, token

    def url(self, owner: str, path: str) -> str:
        return f"{self.stack.hub_url}/user/{owner}/{path}"

    def client(self) -> httpx.Client:
        return httpx.Client(headers={"Authorization": f"token {self.token}"}, timeout=30, trust_env=False)

    @contextmanager
    def open(self, body: dict[str, Any], owner: str | None = None) -> Iterator[httpx.Response]:
        with self.client() as c, c.stream("POST", self.url(owner or self.name, "cellmage/api/chat"), json=body) as r:
            yield r

    def ask(self, body: dict[str, Any], owner: str | None = None) -> Answer:
        with self.open(body, owner) as response:
            answer = Answer(response.status_code)
            if response.status_code != 200:
                answer.body = response.read()
                return answer
            for sse in EventSource(response).iter_sse():
                answer.events.append((sse.event, json.loads(sse.data), time.monotonic()))
        return answer


@pytest.fixture(scope="module")
def ada(stack: Stack) -> User:
    return User(stack, "ada", stack.token("ada"))


@pytest.fixture(scope="module")
def bob(stack: Stack) -> User:
    return User(stack, "bob", stack.token("bob"))


def until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


# --- streaming, attribution, keys -------------------------------------------------------------


def test_an_answer_streams_through_both_proxies_as_the_provider_paces_it(ada: User, fake: FakeUpstream):
    words = [f"w{i} " for i in range(8)]
    fake.script(Script(chunks=words, interval=0.25))

    answer = ada.ask({"prompt": "count", "model": "gpt-4o-mini"})

    assert answer.status == 200, answer.body
    assert answer.names()[0] == "start" and answer.names()[-1] == "done"
    assert answer.text() == "".join(words)
    deltas = [at for name, _, at in answer.events if name == "delta"]
    # Eight chunks 0.25 s apart at the provider: no proxy on the way held them back.
    assert len(deltas) >= 6, answer.names()
    assert deltas[-1] - deltas[0] >= 1.2
    sent = fake.received[-1]
    gaps = [b - a for a, b in zip(deltas, deltas[1:])]
    assert max(gaps) < 1.0, gaps
    # The last words reached ada within a moment of the provider sending them (the first may wait
    # for a cold gateway's first request; the spread above shows nothing buffered in between).
    assert deltas[-1] - sent.chunk_times[len(words)] < 0.5


def test_the_gateway_holds_the_provider_key_and_sees_the_hub_user(ada: User, fake: FakeUpstream):
    answer = ada.ask({"prompt": "hi"})

    assert answer.status == 200 and answer.text() == "Hello, world"
    sent = fake.received[-1]
    assert sent.body["user"] == "ada"  # sent by ada's server as OpenAI `user`, passed on by the gateway
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.headers["Authorization"] == f"Bearer {PROVIDER_KEY}"  # only the gateway has it
    assert ada.stack.master_key not in json.dumps(sent.headers)
    with ada.client() as c:
        usage = c.get(ada.url("ada", "cellmage/api/usage")).json()
    assert usage["user"] == "ada" and usage["total"]["answers"] >= 1


# --- stop, disconnect ---------------------------------------------------------------------------


def _slow(fake: FakeUpstream) -> None:
    fake.script(Script(chunks=[f"t{i} " for i in range(60)], interval=0.2))


def test_stop_closes_the_request_at_the_gateway_and_at_the_provider(ada: User, fake: FakeUpstream):
    _slow(fake)
    events: list[str] = []
    with ada.open({"prompt": "long"}) as response:
        sse = EventSource(response).iter_sse()
        start = json.loads(next(sse).data)
        assert until(lambda: len(fake.received) == 1 and len(fake.received[0].chunk_times) >= 3)
        with ada.client() as c:
            assert c.post(ada.url("ada", f"cellmage/api/chat/{start['id']}/cancel")).status_code == 204
        events = [(e.event, json.loads(e.data)) for e in sse]

    assert [name for name, _ in events][-2:] == ["error", "done"]
    assert events[-2][1]["code"] == "cancelled"
    record = fake.received[0]
    assert until(lambda: record.closed_by_client is not None, 10), "the provider request is still open"
    assert len(record.chunk_times) < 30


def test_a_closed_tab_closes_the_request_at_the_gateway_and_at_the_provider(ada: User, fake: FakeUpstream):
    _slow(fake)
    with ada.open({"prompt": "long"}) as response:
        sse = EventSource(response).iter_sse()
        assert next(sse).event == "start"
        assert until(lambda: len(fake.received) == 1 and len(fake.received[0].chunk_times) >= 3)
    # The connection through the hub's proxy is gone: the server cancels, the gateway hangs up.
    record = fake.received[0]
    assert until(lambda: record.closed_by_client is not None, 10), "the provider request is still open"
    assert len(record.chunk_times) < 30


# --- isolation -----------------------------------------------------------------------------------


def test_bob_cannot_reach_adas_endpoint_streams_conversations_or_usage(ada: User, bob: User, fake: FakeUpstream):
    _slow(fake)
    with ada.open({"prompt": "long", "conversation": "secret.ipynb", "cell_id": "c1"}) as response:
        sse = EventSource(response).iter_sse()
        start = json.loads(next(sse).data)
        assert until(lambda: len(fake.received) == 1 and len(fake.received[0].chunk_times) >= 2)
        with bob.client() as c:
            refused = {
                "chat": c.post(bob.url("ada", "cellmage/api/chat"), json={"prompt": "hi"}),
                "cancel": c.post(bob.url("ada", f"cellmage/api/chat/{start['id']}/cancel")),
                "status": c.get(bob.url("ada", "cellmage/api/status")),
                "conversation": c.get(bob.url("ada", "cellmage/api/conversations/secret.ipynb")),
                "usage": c.get(bob.url("ada", "cellmage/api/usage")),
                "v1": c.post(bob.url("ada", "cellmage/v1/chat/completions"),
                             json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
            }
        assert {name: r.status_code for name, r in refused.items()} == {name: 403 for name in refused}, {
            name: r.text[:300] for name, r in refused.items() if r.status_code != 403
        }
        assert not fake.received[0].closed_by_client  # ada's answer goes on
        with ada.client() as c:
            assert c.post(ada.url("ada", f"cellmage/api/chat/{start['id']}/cancel")).status_code == 204
        list(sse)
    assert len(fake.received) == 1  # bob's refused ask never reached the gateway

    with bob.client() as c:  # bob's own server knows nothing of ada's answers
        assert c.get(bob.url("bob", "cellmage/api/usage")).json()["user"] == "bob"
        assert c.get(bob.url("bob", "cellmage/api/conversations/secret.ipynb")).json()["turns"] == []


def test_without_a_hub_login_nothing_is_served(stack: Stack):
    with httpx.Client(timeout=30, trust_env=False) as c:
        response = c.post(f"{stack.hub_url}/user/ada/cellmage/api/chat", json={"prompt": "hi"})
    assert response.status_code in (302, 401, 403)
    assert "text/event-stream" not in response.headers.get("content-type", "")


# --- gateway failures ----------------------------------------------------------------------------


def test_a_gateway_that_is_down_is_named_in_the_message(ada: User, fake: FakeUpstream):
    answer = ada.ask({"prompt": "hi", "model": "down"})

    error = answer.one("error")
    assert error["code"] == "upstream"
    assert "Cannot connect to the provider at http://127.0.0.1:" in error["message"]
    assert answer.names()[-1] == "done" and fake.received == []


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [(401, "auth", "rejected this server's credentials"), (429, "rate_limited", "rate-limiting")],
)
def test_a_gateway_refusal_reaches_the_user_in_words(ada: User, fake: FakeUpstream, status, code, words):
    fake.script(Script(status=status, error_message="budget or key problem"))

    answer = ada.ask({"prompt": "hi"})

    error = answer.one("error")
    assert error["code"] == code
    assert words in error["message"] and f"HTTP {status}" in error["message"]
    assert "'gpt-4o-mini'" in error["message"]
    assert PROVIDER_KEY not in error["message"] and ada.stack.master_key not in error["message"]


# --- the kernel ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel(stack: Stack, ada: User) -> Iterator[HubKernel]:
    k = HubKernel(f"{stack.hub_url}/user/ada/", ada.token)
    try:
        yield k.start()
    finally:
        k.stop()


def test_the_kernel_holds_no_key_only_what_the_hub_gave_it(kernel: HubKernel, stack: Stack):
    run = kernel.run("import os, json; print(json.dumps(dict(os.environ)))")
    environ = json.loads(run.stdout())
    values = "\n".join(environ.values())
    assert stack.master_key not in values and PROVIDER_KEY not in values
    assert "CELLMAGE_GATEWAY_KEY" not in environ
    assert environ.get("JUPYTERHUB_USER") == "ada" and environ.get("JUPYTERHUB_API_TOKEN")
    # The way back to the server is its loopback address under ada's prefix, with the hub's token.
    assert environ["CELLMAGE_SERVER_URL"].startswith("http://127.0.0.1:")
    assert environ["CELLMAGE_SERVER_URL"].endswith("/user/ada/")
    # Under the hub the server's token is the hub's API token for ada's server: nothing new.
    assert environ.get("CELLMAGE_SERVER_TOKEN", environ["JUPYTERHUB_API_TOKEN"]) == environ["JUPYTERHUB_API_TOKEN"]


def test_llm_in_adas_kernel_answers_with_what_the_hub_gave_it(kernel: HubKernel, fake: FakeUpstream):
    run = kernel.run("%load_ext cellmage_server\n")
    assert not run.errors()
    fake.script(Script(chunks=["Bonjour", " Ada"]))

    run = kernel.run("%%llm\nsay hello")

    assert not run.errors(), run.errors()
    assert run.answers()[-1].startswith("Bonjour Ada")
    assert fake.received[-1].body["user"] == "ada"


def test_interrupting_the_kernel_closes_the_request_at_the_provider(kernel: HubKernel, fake: FakeUpstream):
    kernel.run("%load_ext cellmage_server\n")
    _slow(fake)
    msg_id = kernel.send("%%llm\nlong")
    assert until(lambda: len(fake.received) == 1 and len(fake.received[0].chunk_times) >= 3, 20)

    kernel.interrupt()
    kernel.collect(msg_id, 30)

    record = fake.received[0]
    assert until(lambda: record.closed_by_client is not None, 10), "the provider request is still open"
    assert len(record.chunk_times) < 30


def test_a_gateway_failure_mid_answer_keeps_the_partial_text_in_the_cell(kernel: HubKernel, fake: FakeUpstream):
    kernel.run("%load_ext cellmage_server\n")
    fake.script(Script(chunks=["Part one. ", "Part two. ", "never"], interval=0.1, drop_after=2))

    run = kernel.run("%%llm\nbreak")

    assert run.answers() and run.answers()[-1].startswith("Part one. Part two.")
    [error] = run.errors()
    # The gateway relays the provider's broken stream as an error chunk; the cell says so once,
    # and what to do (whoever runs this Jupyter server is, under the hub, its admin).
    assert "failed mid-answer on model 'gpt-4o-mini'" in error and "ask whoever runs this Jupyter server" in error, error


def test_a_gateway_refusal_in_the_cell_says_what_to_do(kernel: HubKernel, fake: FakeUpstream):
    kernel.run("%load_ext cellmage_server\n")
    fake.script(Script(status=429, error_message="Budget has been exceeded"))

    run = kernel.run("%%llm\nhi")

    [error] = run.errors()
    assert "rate-limiting" in error and "Budget has been exceeded" in error, error


# --- per-user keys ---------------------------------------------------------------------------------


def test_minting_per_user_keys_at_a_gateway_without_its_database_fails_with_the_reason(stack: Stack):
    from types import SimpleNamespace

    from jupyterhub.spawner import SimpleLocalProcessSpawner

    from cellmage_server.gateway_keys import GatewayKeyError, GatewayKeys

    url = f"http://127.0.0.1:{stack.gateway_port}"
    spawner = SimpleLocalProcessSpawner(user=SimpleNamespace(name="ada", url="/user/ada/"))
    spawner.environment = {"CELLMAGE_GATEWAY_KEY": stack.master_key}

    asyncio.run(GatewayKeys(url, stack.master_key).pre_spawn_hook(spawner))  # starts, without a key
    assert "CELLMAGE_GATEWAY_KEY" not in spawner.environment
    with pytest.raises(GatewayKeyError, match=r"did not mint ada's key \(HTTP \d+.*DATABASE_URL"):
        asyncio.run(GatewayKeys(url, stack.master_key, require_key=True).pre_spawn_hook(spawner))
