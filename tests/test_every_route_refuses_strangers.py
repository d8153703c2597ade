"""Every verb of every route the extension serves refuses a request without valid credentials,
under Jupyter's default (`allow_unauthenticated_access = True`, where only the handler's own
decorators stand guard) and with it off. The cases are built from the route tables, so a route
added to either table is tried without anyone listing it here."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from tornado import web

from .fake_upstream import FakeUpstream

VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# One value for each kind of path parameter the tables use; a parameter none of them matches
# fails the test below, naming the route, until a value is added here.
PARAMETER_VALUES = ["0123456789abcdef0123456789abcdef", "notes.ipynb", "c1", "responses"]

STRANGERS = {
    "no credentials": {},
    "a wrong token": {"Authorization": "token not-the-token"},
    "a wrong bearer key": {"Authorization": "Bearer sk-cellmage-not-the-key"},
}


def route_tables() -> list[tuple[str, list[tuple[str, type[web.RequestHandler]]]]]:
    """(URL prefix, routes) of each table the extension serves."""
    from cellmage_server.routes.api import default_handlers
    from cellmage_server.routes.openai import v1_handlers

    return [("cellmage/api/", default_handlers), ("cellmage/v1/", v1_handlers)]


def _path(pattern: str) -> str:
    def value(group: re.Match[str]) -> str:
        for candidate in PARAMETER_VALUES:
            if re.fullmatch(group.group(1), candidate):
                return candidate
        raise AssertionError(f"route {pattern!r}: add a value for the parameter {group.group(0)} to PARAMETER_VALUES")

    path = re.sub(r"\(([^()]*)\)", value, pattern)
    assert re.fullmatch(pattern, path), (pattern, path)
    return path


def _verbs(handler: type[web.RequestHandler]) -> list[str]:
    """The verbs this extension's code answers (not those inherited from Jupyter or tornado)."""
    own = [k for k in handler.__mro__ if k.__module__.startswith("cellmage_server")]
    return [verb for verb in VERBS if any(verb.lower() in vars(k) for k in own)]


def _cases() -> list[Any]:
    cases = []
    for prefix, routes in route_tables():
        for pattern, handler in routes:
            verbs = _verbs(handler)
            assert verbs, f"{prefix}{pattern}: {handler.__name__} answers no verb"
            for verb in verbs:
                path = prefix + _path(pattern)
                cases.append(pytest.param(verb, path, id=f"{verb} {path}"))
    return cases


@pytest.fixture(params=[True, False], ids=["jupyter's default", "unauthenticated access off"])
def jp_server_config(request: pytest.FixtureRequest, cellmage_config: Any) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"cellmage_server": True},
            "allow_unauthenticated_access": request.param,
        }
    }


@pytest.mark.parametrize("verb,path", _cases())
async def test_every_verb_of_every_route_refuses_a_request_without_valid_credentials(
    api, fake_upstream: FakeUpstream, verb, path
):
    body = None if verb in ("GET", "HEAD", "DELETE", "OPTIONS") else {
        "prompt": "x", "model": "fast", "messages": [{"role": "user", "content": "x"}], "input": "x",
    }
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        for who, headers in STRANGERS.items():
            response = await c.request(verb, api.base + path, json=body, headers=headers)

            # Refused, with an error body in the route's own shape, not served
            # (401 on cellmage/v1, as OpenAI answers: the SDKs raise AuthenticationError for it)
            expected = 401 if path.startswith("cellmage/v1/") else 403
            assert response.status_code == expected, (who, response.status_code, response.text[:300])
            error = response.json()
            assert set(error) == ({"error"} if path.startswith("cellmage/v1/") else {"message", "reason"}), (who, error)
    assert fake_upstream.received == []  # nothing reached the provider either
