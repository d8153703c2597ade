"""Fixtures: a real Jupyter server with the extension (auth on), a fake upstream, an API client."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource

from .fake_upstream import FakeUpstream
from .kernel import Kernel

pytest_plugins = ("pytest_jupyter.jupyter_server",)

# The provider key the server holds. Tests assert these bytes reach the fake upstream and nothing else.
SECRET = "sk-fake-SECRETKEY-0123456789abcdefXYZ"
KEY_ENV = "CELLMAGE_TEST_PROVIDER_KEY"


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """The extension edits os.environ for its kernels; give every test the environment it began with."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


PROVIDER_PATHS = ["lean", "litellm"]


@pytest.fixture
def provider_path() -> str:
    """Which provider path serves the test models; the contract suite parametrizes it over both."""
    return "lean"


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream, provider_path: str) -> str:
    """The server's cellmage.toml; override in a module to test other configurations."""
    toml = base_toml(fake_upstream)
    if provider_path == "litellm":
        # litellm pointed at the same fake as an OpenAI-compatible api_base
        toml = toml.replace('model = "openai/', 'provider = "litellm"\nmodel = "openai/')
    return toml


_BASE_TOML = """
default_model = "fast"
allowed_models = ["fast", "other"]

[models.fast]
model = "openai/fake-fast"
api_base = "{url}"
api_key_env = "{key_env}"
description = "The fake upstream"

[models.other]
model = "openai/fake-other"
api_base = "{url}"
api_key_env = "{key_env}"

[models.hidden]
model = "openai/fake-hidden"
api_base = "{url}"
api_key_env = "{key_env}"

[limits]
max_tokens = 1000
max_streams_per_user = 2
max_prompt_bytes = 4096

[timeouts]
connect = 2
first_token = 2
chunk_gap = 1
total = 30
"""


def base_toml(fake: FakeUpstream) -> str:
    """The base configuration: models ``fast`` and ``other`` (allowed) and ``hidden`` (not), all
    on the fake provider, and small limits."""
    return _BASE_TOML.format(url=fake.url, key_env=KEY_ENV)


def toml_with(fake: FakeUpstream, **settings: Any) -> str:
    """The base configuration with these settings set: in its tables (``limits={...}``,
    ``timeouts={...}``, ``models={"other": {"api_key_env": ...}}``, or a new table), or at its top
    (``allowed_models=[...]``): what a test module's ``cellmage_toml`` returns."""
    import tomllib

    def merge(into: dict[str, Any], values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    config = tomllib.loads(base_toml(fake))
    merge(config, settings)
    return dump_toml(config)


def tutorial_models_toml(fake: FakeUpstream) -> str:
    """The models the streaming tutorial's cells name, all on the fake provider."""
    models = "".join(
        f'\n[models."{alias}"]\nmodel = "openai/{alias}"\napi_base = "{fake.url}"\napi_key_env = "{KEY_ENV}"\n'
        for alias in ("gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo")
    )
    return f'default_model = "gpt-4o-mini"\n{models}'


def dump_toml(config: dict[str, Any]) -> str:
    """TOML for a configuration of scalars, lists and tables (what cellmage.toml holds)."""
    import re

    lines: list[str] = []

    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    def table(name: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if name and (scalars or not values):
            lines.append(f"\n[{name}]")
        lines.extend(f"{key(k)} = {json.dumps(v)}" for k, v in scalars.items())
        for k, value in values.items():
            if isinstance(value, dict):
                table(f"{name}.{key(k)}" if name else key(k), value)

    table("", config)
    return "\n".join(lines) + "\n"


@pytest.fixture
def cellmage_config(cellmage_toml: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    path = tmp_path / "cellmage.toml"
    path.write_text(cellmage_toml)
    monkeypatch.setenv("CELLMAGE_CONFIG", str(path))
    monkeypatch.setenv(KEY_ENV, SECRET)
    return path


@pytest.fixture
def jp_server_config(cellmage_config: Any) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"cellmage_server": True},
            "allow_unauthenticated_access": False,
        }
    }


def kernel_buffers(*ends: Any) -> int:
    """What the kernel holds on these connection ends (sockets), as it sized them by now: each
    end's send and receive buffers (Linux reports twice what it allows data, for its own
    bookkeeping: the reported sizes bound the data). With the bytes a slow client does not take
    this bounds what may leave the provider before it is held back."""
    import socket

    total = 0
    for end in ends:
        total += end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) + end.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return total


def provider_sockets(serverapp: Any) -> list[Any]:
    """The server's ends of its connections to providers (the lean path's pool of streams)."""
    provider = serverapp.web_app.settings["cellmage"].providers["openai"]
    transports = [c.wire.transport for c in provider.streams.connections()]
    return [t.get_extra_info("socket") for t in transports if t is not None and t.get_extra_info("socket") is not None]


def provider_read_ahead(serverapp: Any) -> int:
    """What the server has read from providers and not yet relayed (bounded: http1.HIGH_WATER)."""
    provider = serverapp.web_app.settings["cellmage"].providers["openai"]
    return sum(c.wire.buffered for c in provider.streams.connections())


@dataclass
class Event:
    name: str
    data: Any
    at: float  # time.monotonic() when the client read it


@dataclass
class StreamResult:
    status: int
    headers: httpx.Headers
    events: list[Event] = field(default_factory=list)
    raw: bytes = b""

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def text(self) -> str:
        return "".join(e.data["text"] for e in self.events if e.name == "delta")

    def one(self, name: str) -> Any:
        found = [e.data for e in self.events if e.name == name]
        assert len(found) == 1, f"expected one {name!r} event, got {self.names()}"
        return found[0]


class Api:
    """HTTP access to the server under test, as a kernel would reach it (token header)."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base
        self.headers = headers

    def url(self, path: str) -> str:
        return f"{self.base}cellmage/api/{path}"

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("headers", self.headers)
        return httpx.AsyncClient(timeout=30, trust_env=False, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        async with self.client() as c:
            return await c.get(self.url(path), **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        async with self.client() as c:
            return await c.post(self.url(path), json=body, **kwargs)

    @asynccontextmanager
    async def open_stream(self, body: Any, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        async with self.client() as c, c.stream("POST", self.url("chat"), json=body, **kwargs) as response:
            yield response

    async def stream(self, body: Any, **kwargs: Any) -> StreamResult:
        """POST chat and read the whole SSE answer with httpx-sse, timing each event."""
        async with self.open_stream(body, **kwargs) as response:
            result = StreamResult(response.status_code, response.headers)
            if response.status_code != 200:
                result.raw = await response.aread()
                return result
            async for sse in EventSource(response).aiter_sse():
                result.events.append(Event(sse.event, json.loads(sse.data), time.monotonic()))
            return result


@pytest.fixture
def api(
    jp_serverapp: Any,
    http_server_client: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    jp_asyncio_loop: Any,
) -> Api:
    # A server answers at once, but prices and litellm arrive from background threads (litellm
    # in seconds); tests that time or price answers wait for them first.
    state = jp_serverapp.web_app.settings["cellmage"]
    state.pricing.wait_loaded(30)
    if "litellm" in state.providers:
        jp_asyncio_loop.run_until_complete(state.providers["litellm"].loaded())
    # http_server_client makes the pytest-jupyter HTTP server listen on jp_http_port.
    return Api(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", dict(jp_auth_header))


@pytest.fixture
def kernel(api: Any, jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[Kernel]:
    """A real IPython kernel started through the server under test (stopped after the test)."""
    k = Kernel(api, jp_serverapp)
    jp_asyncio_loop.run_until_complete(k.start())
    yield k
    jp_asyncio_loop.run_until_complete(k.stop())


@pytest.fixture
def notebook_kernel(api: Any, jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[Kernel]:
    """A kernel opened for a notebook (through a session), as JupyterLab starts one."""
    k = Kernel(api, jp_serverapp)
    jp_asyncio_loop.run_until_complete(k.start(notebook="study/notes.ipynb"))
    yield k
    jp_asyncio_loop.run_until_complete(k.stop())
