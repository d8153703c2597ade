"""The server is non-dumpable, so another process of its own user cannot read the environment it
started with (``/proc/<pid>/environ``, where a removed key variable stays). A real ``jupyter
server`` runs as a user that is not root (a throwaway one when the tests run as root, as CI does:
root reads every process) and a fresh process of that user tries."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import KEY_ENV, SECRET
from .other_user import ServerProcess, read_as, start_server, throwaway_user

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")

TOML = f"""
{{non_dumpable}}
default_model = "fast"

[models.fast]
model = "openai/fake-fast"
api_base = "http://127.0.0.1:9/v1"
api_key_env = "{KEY_ENV}"
"""


@pytest.fixture
def server_as_its_user() -> Iterator[Callable[[bool], ServerProcess]]:
    uid, gid = throwaway_user()
    started: list[tuple[ServerProcess | None, Path]] = []

    def start(non_dumpable: bool) -> ServerProcess:
        # Not pytest's tmp_path: that is closed to other users.
        workdir = Path(tempfile.mkdtemp(prefix="cellmage-probe-"))
        started.append((None, workdir))
        toml = TOML.format(non_dumpable="" if non_dumpable else "non_dumpable = false")
        server = start_server(workdir, uid, gid, toml, {KEY_ENV: SECRET})
        started[-1] = (server, workdir)
        assert server.uid() == uid  # the process probed is the server, running as that user
        return server

    yield start
    for server, workdir in started:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _probe(server: ServerProcess) -> tuple[int, bytes]:
    uid, gid = throwaway_user()
    seen = read_as(uid, gid, f"/proc/{server.pid}/environ")
    return seen.returncode, seen.stdout + seen.stderr


def test_a_process_of_the_servers_own_user_cannot_read_the_environment_it_started_with(server_as_its_user):
    # Given a server started with the key in its environment, as a user that is not root
    server = server_as_its_user(True)

    # When another process of that user reads the server's /proc/<pid>/environ
    returncode, output = _probe(server)

    # Then it is refused, and nothing of the key comes out
    assert returncode != 0 and b"Permission denied" in output, output
    assert SECRET.encode() not in output


def test_with_non_dumpable_off_the_same_user_reads_the_key_from_its_environment(server_as_its_user):
    # Given the protection turned off (`non_dumpable = false`): what it closes
    server = server_as_its_user(False)

    returncode, output = _probe(server)

    # The variable was removed from the server's os.environ, yet /proc keeps what it started with
    assert returncode == 0, output
    assert f"{KEY_ENV}={SECRET}".encode() in output.split(b"\0")
