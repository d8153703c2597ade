"""How a kernel finds its server, from the environment alone."""

from __future__ import annotations

import pytest

from cellmage_server.magics.client import Endpoint, ServerNotFound, find_endpoint
from cellmage_server.magics.magics import interpolate


def test_the_servers_own_variables_come_first():
    env = {
        "CELLMAGE_SERVER_URL": "http://127.0.0.1:8888/base",
        "CELLMAGE_SERVER_TOKEN": "server-token",
        "JUPYTERHUB_API_TOKEN": "hub-token",
    }
    assert find_endpoint(env) == Endpoint("http://127.0.0.1:8888/base/", "server-token")


def test_under_jupyterhub_the_hub_token_serves():
    # A single-user server has no token of its own; the extension still publishes its URL.
    env = {"CELLMAGE_SERVER_URL": "http://127.0.0.1:43210/user/ada/", "JUPYTERHUB_API_TOKEN": "hub-token"}
    assert find_endpoint(env) == Endpoint("http://127.0.0.1:43210/user/ada/", "hub-token")


def test_a_hub_server_without_the_extensions_variables_is_found_by_its_service_url():
    env = {"JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:43210/user/ada/", "JUPYTERHUB_API_TOKEN": "hub-token"}
    assert find_endpoint(env).api == "http://127.0.0.1:43210/user/ada/cellmage/api/"


def test_nowhere_to_go_says_what_to_do():
    with pytest.raises(ServerNotFound, match="set CELLMAGE_SERVER_URL"):
        find_endpoint({})


@pytest.mark.parametrize(
    "prompt,expected",
    [
        ("Hi {name}!", "Hi Ada!"),
        ('{"json": {"nested": 1}}', '{"json": {"nested": 1}}'),
        ("set() is {} and {undefined} stays", "set() is {} and {undefined} stays"),
        ("{{name}}", "{Ada}"),
        ("{n}{n}", "33"),
        ("{ name }", "{ name }"),
    ],
)
def test_interpolation_replaces_only_known_names(prompt, expected):
    assert interpolate(prompt, {"name": "Ada", "n": 3}) == expected
