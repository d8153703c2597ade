"""One team deployment (hub, proxy, gateway, fake provider) for the whole hub suite, with ada's
and bob's servers started; stopped at the end whatever happened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .stack import Stack, missing


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    why = missing()
    if why:
        pytest.fail(why)  # the hub suite runs only where its stack is installed: never skip silently
    team = Stack(tmp_path_factory.mktemp("hub"))
    try:
        team.start()
        team.start_servers("ada", "bob")
        yield team
    finally:
        team.stop()


@pytest.fixture
def fake(stack: Stack):
    """The provider behind the gateway, with no scripts left from an earlier test."""
    stack.fake.scripts.clear()
    stack.fake.received.clear()
    return stack.fake
