"""Every route is authenticated and authorized; the provider key leaves the server only towards
the provider: not in a response, an event, a log line, an exception or a repr."""

from __future__ import annotations

import logging

import httpx
import pytest

from cellmage_server.config import load_config

from .conftest import SECRET
from .fake_upstream import Script
from .helpers import runs_of_the_key

ROUTES = [
    ("GET", "status"),
    ("GET", "models"),
    ("GET", "personas"),
    ("POST", "chat"),
    ("POST", f"chat/{'a' * 32}/cancel"),
]


@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "token not-the-token"}], ids=["no token", "bad token"])
async def test_every_route_refuses_requests_without_valid_credentials(api, fake_upstream, method, path, headers):
    async with httpx.AsyncClient(trust_env=False) as c:
        response = await c.request(method, api.url(path), json={"prompt": "x"}, headers=headers)

    assert response.status_code == 403
    assert fake_upstream.received == []


async def test_a_browser_cookie_without_the_xsrf_token_cannot_ask(api, fake_upstream):
    # Given a browser session: the user cookie the server sets after a token login
    async with api.client() as login:
        await login.get(api.url("status"))
        cookies = {k: v for k, v in login.cookies.items() if k.startswith("username-")}
    assert cookies

    async with httpx.AsyncClient(trust_env=False, cookies=cookies) as browser:
        # The cookie alone reads, but cannot POST without the XSRF token
        assert (await browser.get(api.url("status"))).status_code == 200
        refused = await browser.post(api.url("chat"), json={"prompt": "x"})
        assert refused.status_code == 403
        assert fake_upstream.received == []

        # With the double-submitted XSRF token (what JupyterLab's ServerConnection sends) it can
        browser.cookies.set("_xsrf", "xsrf-test-token")
        allowed = await browser.post(
            api.url("chat"), json={"prompt": "x", "stream": False}, headers={"X-XSRFToken": "xsrf-test-token"}
        )
        assert allowed.status_code == 200 and allowed.json()["text"] == "Hello, world"


async def test_the_key_is_in_no_response_event_or_log_line(api, fake_upstream, caplog):
    caplog.set_level(logging.DEBUG)
    fake_upstream.script(
        Script(),
        Script(status=401, error_message=f"Incorrect API key provided: {SECRET}"),
        Script(status=401, error_message=f"Incorrect API key provided: {SECRET[:12]}***{SECRET[-4:]}"),
    )
    bodies = []
    async with api.client() as c:
        for path in ("status", "models", "personas"):
            bodies.append((await c.get(api.url(path))).content)
        for body in ({"prompt": "x"}, {"prompt": "x"}):
            async with c.stream("POST", api.url("chat"), json=body) as r:
                bodies.append(await r.aread())
        bodies.append((await c.post(api.url("chat"), json={"prompt": "x", "stream": False})).content)
        bodies.append((await c.post(api.url("chat"), json={"prompt": "x", "api_key": "sk-x"})).content)

    assert len(fake_upstream.received) == 3  # the key did go to the provider, in its header
    assert all(r.headers["Authorization"] == f"Bearer {SECRET}" for r in fake_upstream.received)
    for body in bodies:
        assert SECRET.encode() not in body
        assert SECRET[:12].encode() not in body  # not even the masked fragment a provider echoes
    assert SECRET not in caplog.text


def test_the_key_is_not_in_the_settings_repr_or_a_config_error(tmp_path, monkeypatch):
    path = tmp_path / "cellmage.toml"
    path.write_text(f'[models.m]\nmodel = "openai/x"\napi_key = "{SECRET}"\n')
    monkeypatch.setenv("CELLMAGE_CONFIG", str(path))
    loaded = load_config()
    assert SECRET not in repr(loaded) and SECRET not in str(loaded.settings)
    assert loaded.keys["m"].get_secret_value() == SECRET

    path.write_text(f'[models.m]\nmodel = "openai/x"\napi_key = "{SECRET}"\ntemperature = "{SECRET}"\n')
    with pytest.raises(Exception) as raised:
        load_config()
    assert "models.m.temperature" in str(raised.value)
    assert SECRET not in str(raised.value)


async def test_part_of_a_key_echoed_by_the_provider_is_redacted_everywhere(api, fake_upstream, caplog):
    caplog.set_level(logging.DEBUG)
    fragment = SECRET[6:30]  # 24 characters from the middle: no key shape, no prefix
    echo = Script(status=400, error_message=f"the key ending in {fragment} is not valid for this model")
    fake_upstream.script(echo, echo)

    streamed = await api.stream({"prompt": "x", "conversation": "keys.ipynb", "cell_id": "c1"})
    whole = await api.post("chat", {"prompt": "x", "stream": False})
    turns = await api.get("conversations/keys.ipynb")
    status = await api.get("status")

    assert streamed.one("error")["code"] == "upstream" and whole.status_code == 502
    assert "[redacted]" in streamed.one("error")["message"]
    for written in (str([e.data for e in streamed.events]), whole.text, turns.text, status.text, caplog.text):
        assert runs_of_the_key(written) == []


async def test_part_of_a_key_in_answer_text_is_not_stored_or_answered_whole(api, fake_upstream):
    fragment = SECRET[4:28]
    answer = Script(chunks=["the header was ", fragment, " and a hash ", "0" * 40])
    fake_upstream.script(answer, answer)

    await api.stream({"prompt": "x", "conversation": "keys.ipynb", "cell_id": "c1"})
    whole = await api.post("chat", {"prompt": "x", "stream": False})
    turns = await api.get("conversations/keys.ipynb")

    assert runs_of_the_key(whole.text) == [] and runs_of_the_key(turns.text) == []
    assert "0" * 40 in whole.json()["text"]  # by value only: not every long token is a key


async def test_status_says_whether_a_config_file_was_read_not_where(api, cellmage_config):
    # Kernels hold the credentials GET status takes; a config file may hold keys (threat model)
    status = await api.get("status")
    assert status.json()["config_file_found"] is True
    assert str(cellmage_config) not in status.text and cellmage_config.name not in status.text
