"""The scoped key opens cellmage/v1/* and nothing else; Jupyter's own credentials open it too."""

from __future__ import annotations

import logging

import httpx
import pytest

from cellmage_server.routes.openai.scoped_key import PREFIX, ScopedKey

from .fake_upstream import FakeUpstream
from .openai_support import scoped_key, toml, v1

# Every other part of the Jupyter API the key must not open (GET and a mutating verb).
ELSEWHERE = [
    ("GET", "api/contents"),
    ("POST", "api/contents"),
    ("GET", "api/kernels"),
    ("POST", "api/kernels"),
    ("GET", "api/terminals"),
    ("POST", "api/terminals"),
    ("GET", "api/sessions"),
    ("GET", "cellmage/api/status"),
    ("GET", "cellmage/api/usage"),
    ("POST", "cellmage/api/chat"),
]


@pytest.fixture
def cellmage_toml(fake_upstream: FakeUpstream) -> str:
    return toml(fake_upstream)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_the_scoped_key_opens_the_endpoint(api, jp_serverapp, fake_upstream):
    key = scoped_key(jp_serverapp)
    assert key.startswith(PREFIX) and len(key) > len(PREFIX) + 40
    async with httpx.AsyncClient(trust_env=False, headers=bearer(key)) as c:
        models = await c.get(v1(api) + "/models")
        answer = await c.post(v1(api) + "/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "x"}]})

    assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == ["fast", "other", "embed"]
    assert "set-cookie" not in models.headers  # a header credential: no login cookie is made from it
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "Hello, world"


@pytest.mark.parametrize("method,path", ELSEWHERE)
async def test_the_scoped_key_opens_nothing_else(api, jp_serverapp, fake_upstream, method, path):
    async with httpx.AsyncClient(trust_env=False) as c:
        for headers in (bearer(scoped_key(jp_serverapp)), {"Authorization": f"token {scoped_key(jp_serverapp)}"}):
            response = await c.request(method, api.base + path, json={"prompt": "x"} if "chat" in path else None, headers=headers)
            assert response.status_code == 403, (path, response.text)
        in_query = await c.request(method, api.base + path, params={"token": scoped_key(jp_serverapp)})
        assert in_query.status_code == 403
    assert fake_upstream.received == []


@pytest.mark.parametrize("headers", [{}, bearer("sk-wrong"), bearer(ScopedKey().secret.get_secret_value())], ids=["none", "wrong", "another server's"])
async def test_without_valid_credentials_the_sdk_gets_an_authentication_error(api, fake_upstream, headers):
    import openai

    async with httpx.AsyncClient(trust_env=False, headers=headers) as c:
        response = await c.post(v1(api) + "/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"

    key = headers.get("Authorization", "Bearer none").split()[1]
    client = openai.AsyncOpenAI(base_url=v1(api), api_key=key, max_retries=0, http_client=httpx.AsyncClient(trust_env=False))
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()
    assert fake_upstream.received == []


async def test_jupyter_credentials_open_the_endpoint_too(api, fake_upstream, jp_serverapp):
    token = jp_serverapp.identity_provider.token
    body = {"model": "fast", "messages": [{"role": "user", "content": "x"}]}
    async with httpx.AsyncClient(trust_env=False) as c:
        for headers in ({"Authorization": f"token {token}"}, bearer(token)):
            response = await c.post(v1(api) + "/chat/completions", json=body, headers=headers)
            assert response.status_code == 200, response.text

    # A browser: the login cookie reads, and POSTs only with the XSRF token, as everywhere in Jupyter
    async with api.client() as login:
        await login.get(api.url("status"))
        cookies = {k: v for k, v in login.cookies.items() if k.startswith("username-")}
    async with httpx.AsyncClient(trust_env=False, cookies=cookies) as browser:
        assert (await browser.get(v1(api) + "/models")).status_code == 200
        assert (await browser.post(v1(api) + "/chat/completions", json=body)).status_code == 403
        browser.cookies.set("_xsrf", "xsrf-test-token")
        allowed = await browser.post(v1(api) + "/chat/completions", json=body, headers={"X-XSRFToken": "xsrf-test-token"})
        assert allowed.status_code == 200
    assert len(fake_upstream.received) == 3


async def test_the_scoped_key_is_never_logged_or_returned(api, jp_serverapp, fake_upstream, caplog):
    caplog.set_level(logging.DEBUG)
    key = scoped_key(jp_serverapp)
    async with httpx.AsyncClient(trust_env=False, headers=bearer(key)) as c:
        bodies = [
            (await c.get(v1(api) + "/models")).content,
            (await c.post(v1(api) + "/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "x"}], "stream": True})).content,
            (await c.post(v1(api) + "/chat/completions", json={"model": "nope", "messages": []})).content,
            (await c.get(api.base + "api/contents")).content,
        ]
    assert all(key.encode() not in b for b in bodies)
    assert key not in caplog.text
    assert key not in repr(jp_serverapp.web_app.settings)
    assert "Bearer" not in str(fake_upstream.received[-1].body)
