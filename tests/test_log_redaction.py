"""Credentials never reach the server's log: not the kernels' scoped key nor the server's own
token, however a client sends them (in a URL's query, a header, a body), on any route, whether the
request is answered or refused."""

from __future__ import annotations

import logging

import httpx
import pytest

from cellmage_server.safety.redaction import KEY_RUN

from .openai_support import scoped_key

ROUTES = [
    "api/contents", "api/kernels", "api/terminals", "api/sessions", "cellmage/api/status", "cellmage/api/chat",
    "cellmage/api/answers/" + "0" * 32, "cellmage/v1/models", "cellmage/v1/chat/completions", "lab", "no/such/route",
]


def _leaks(text: str, secret: str) -> bool:
    return any(secret[i : i + KEY_RUN] in text for i in range(len(secret) - KEY_RUN + 1))


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_key_in_a_url_query_never_reaches_the_log(api, jp_serverapp, caplog, method):
    caplog.set_level(logging.DEBUG)
    key = scoped_key(jp_serverapp)
    secret_part = key.removeprefix("cellmage-kernel-")  # the prefix is public
    token = jp_serverapp.identity_provider.token
    assert len(key) >= 32 and len(token) >= 32
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        for route in ROUTES:
            for query in (f"token={key}", f"key={key}&x=1", f"api_key={key}", f"x=1&token={token}abc"):
                # A key in the query, no other credentials: refused (or, for the server's
                # token, taken), and logged as a request either way
                await c.request(method, f"{api.base}{route}?{query}")
            await c.request(method, f"{api.base}{route}/{key}")  # in the path: by value only
            await c.request(method, f"{api.base}{route}", headers={"Authorization": f"token {key}"})
            await c.request(method, f"{api.base}{route}", headers={"Authorization": f"Bearer {token}x"})
    # (This test's own client logs its requests through httpx's logger: not the server's.)
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert len(lines) >= len(ROUTES) * 7  # the requests were logged
    leaked = [line for line in lines if _leaks(line, secret_part) or _leaks(line, token)]
    assert leaked == [], f"{len(leaked)} log line(s) hold a credential, e.g. " + " || ".join(sorted({line[:160] for line in leaked})[:6])


async def test_a_credential_the_server_does_not_know_is_scrubbed_from_a_logged_query(api, caplog):
    caplog.set_level(logging.DEBUG)
    unknown = "sk-proj-" + "Q" * 40  # someone's key for something else, pasted into a URL
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        for route in ROUTES:
            await c.post(f"{api.base}{route}?api_key={unknown}")
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any("api_key=[" in line for line in lines)
    assert [line for line in lines if "Q" * KEY_RUN in line] == []
