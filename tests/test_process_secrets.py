"""What a kernel (a process of the same user) can learn of the server's secrets: not the
environment the server started with (the server makes itself non-dumpable), and not where its
config file is. A real kernel started through the server tries."""

from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Iterator

import pytest

from cellmage_server.kernel_env import PR_SET_DUMPABLE

from .kernel import Kernel

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")

PR_GET_DUMPABLE = 3

PROBE = """
import json, os
try:
    open("/proc/{pid}/environ", "rb").read()
    seen = {{"environ": "read"}}
except PermissionError:
    seen = {{"environ": "denied"}}
seen["config_env"] = os.environ.get("CELLMAGE_CONFIG")
print(json.dumps(seen))
"""


def _dumpable() -> int:
    return ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)


@pytest.fixture(autouse=True)
def _dumpable_again() -> Iterator[None]:
    """The server under test is this process: give the next test a dumpable one back."""
    yield
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


async def _probe(api, jp_serverapp) -> dict:
    kernel = Kernel(api, jp_serverapp)
    await kernel.start()
    try:
        run = await kernel.run(PROBE.format(pid=os.getpid()))
        assert not run.errors(), run.errors()
        return json.loads(run.stdout())
    finally:
        await kernel.stop()


async def test_the_server_is_non_dumpable_and_a_kernel_gets_no_config_path(api, jp_serverapp):
    assert _dumpable() == 0  # prctl(PR_SET_DUMPABLE, 0) took effect on the server's process

    seen = await _probe(api, jp_serverapp)

    assert seen["config_env"] is None
    # Root reads any process's memory, non-dumpable or not; as root (CI),
    # test_environ_of_the_servers_user.py asks as a throwaway user instead.
    if os.geteuid() != 0:
        assert seen["environ"] == "denied"


class TestWithTheProtectionOff:
    @pytest.fixture
    def cellmage_toml(self, cellmage_toml: str) -> str:
        return "non_dumpable = false\n" + cellmage_toml

    async def test_the_server_stays_dumpable_and_a_kernel_reads_its_environ(self, api, jp_serverapp):
        assert _dumpable() == 1

        seen = await _probe(api, jp_serverapp)

        assert seen["environ"] == "read"  # what the protection closes, as the same user
        assert seen["config_env"] is None
