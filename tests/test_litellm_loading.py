"""litellm loads in a background thread when the server starts: the server answers at once, and
only a litellm answer asked for before the import has finished waits for it.

The `api` fixture waits for litellm first; this module does not. To make "before the import has
finished" last as long as the test needs, it holds the real import at its one seam, the loader
thread's call of `providers.litellm._import_and_warm`, until the test lets it go: the thread, the
future every litellm answer awaits and the answer path are the server's own, unchanged, and
litellm is really imported and warmed once the hold ends."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from httpx_sse import EventSource

from .conftest import KEY_ENV, Api
from .fake_upstream import FakeUpstream

HOLD_LIMIT = 30.0  # seconds; a test that never lets go fails instead of hanging


class HeldImport:
    """Runs the real import once the test releases it; says when it was entered and when it ended."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.entered = threading.Event()
        self.release = threading.Event()
        self.loaded = threading.Event()

    def __call__(self) -> Any:
        self.entered.set()
        if not self.release.wait(HOLD_LIMIT):
            raise RuntimeError("the test never let litellm's import go on")
        try:
            return self.real()
        finally:
            self.loaded.set()


@pytest.fixture
def held_import(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldImport]:
    from cellmage_server.providers import litellm as litellm_path

    held = HeldImport(litellm_path._import_and_warm)
    monkeypatch.setattr(litellm_path, "_import_and_warm", held)
    yield held
    held.release.set()


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    common = f'api_base = "{fake_upstream.url}"\napi_key_env = "{KEY_ENV}"'
    return (
        f'default_model = "lean"\n'
        f'[models.lean]\nmodel = "openai/fake-lean"\n{common}\n'
        f'[models.slow]\nmodel = "openai/fake-slow"\nprovider = "litellm"\n{common}\n'
        "[timeouts]\nfirst_token = 60\n"
    )


@pytest.fixture
def jp_server_config(held_import: HeldImport, cellmage_config: Any) -> dict[str, Any]:
    # Requests held_import, so the hold is in place before the server starts loading litellm.
    return {"ServerApp": {"jpserver_extensions": {"cellmage_server": True}, "allow_unauthenticated_access": False}}


@pytest.fixture
def api_at_once(jp_serverapp: Any, http_server_client: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]) -> Api:
    """The server under test as soon as it has started: nothing waited for."""
    return Api(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", dict(jp_auth_header))


async def test_the_server_answers_while_litellm_loads_and_only_a_litellm_answer_waits(
    api_at_once: Api, held_import: HeldImport, fake_upstream: FakeUpstream
):
    api = api_at_once
    # Given a server whose litellm import has begun and not finished
    assert await asyncio.to_thread(held_import.entered.wait, HOLD_LIMIT)

    # When a litellm answer is asked for first
    async with api.open_stream({"prompt": "x", "model": "slow"}) as slow:
        assert slow.status_code == 200
        events = EventSource(slow).aiter_sse()
        assert (await anext(events)).event == "start"

        # Then, meanwhile, the server answers: its status, and a lean answer from start to done
        status = await api.get("status")
        lean = await api.stream({"prompt": "x", "model": "lean"})
        assert status.status_code == 200 and status.json()["configured"] is True
        assert lean.text() == "Hello, world" and lean.names()[-1] == "done" and "error" not in lean.names()
        assert not held_import.loaded.is_set()  # all of it before litellm had loaded
        # while the litellm answer has not reached the provider: it waits for litellm
        assert [r.body["model"] for r in fake_upstream.received] == ["fake-lean"]

        # When litellm has loaded, the waiting answer answers
        held_import.release.set()
        rest = [(sse.event, json.loads(sse.data)) for sse in [e async for e in events]]

    assert "".join(data["text"] for name, data in rest if name == "delta") == "Hello, world"
    assert [name for name, _ in rest if name != "delta"] == ["usage", "done"]
    assert [r.body["model"] for r in fake_upstream.received] == ["fake-lean", "fake-slow"]
