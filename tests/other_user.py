"""A real ``jupyter server`` process run as an operating-system user that is not root.

What a process of the server's own user can read of the server is the threat model's question,
and root reads every process whatever the server does, so as root (CI) the tests ask it as a
throwaway user, created here once (``useradd``; it may outlive the run, and creating it again is a
no-op). When the tests do not run as root, the server runs as the tests' own user.

The throwaway user must reach this Python, its packages and this checkout. Where a folder on the
way is closed to other users (``/root`` holds pyenv's Python here), the server runs in a mount
namespace of its own (``unshare``) where that folder is an empty tmpfs holding only the entries
on the way, bind-mounted: nothing else of it is opened, and nothing outside that process changes.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

import cellmage_server

USER = "cellmage-probe"


def throwaway_user() -> tuple[int, int]:
    """(uid, gid) of the processes the tests start as "the server's user"."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        created = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", USER],
            capture_output=True, text=True, check=False,
        )
        if created.returncode not in (0, 9):  # 9: the name exists (another run made it meanwhile)
            raise RuntimeError(f"useradd {USER} failed: {created.stderr.strip()}") from None
        entry = pwd.getpwnam(USER)
    return entry.pw_uid, entry.pw_gid


def read_as(uid: int, gid: int, path: str) -> subprocess.CompletedProcess[bytes]:
    """``cat path`` from a fresh process of that user (no supplementary groups, no capabilities)."""
    switch = {"user": uid, "group": gid, "extra_groups": []} if os.geteuid() == 0 else {}
    return subprocess.run(["cat", path], capture_output=True, timeout=30, check=False, **switch)


def _closed_folders(paths: list[Path]) -> dict[Path, set[str]]:
    """Folders on the way to ``paths`` that other users cannot enter, each with its entries on the way."""
    closed: dict[Path, set[str]] = {}
    for path in paths:
        for folder in reversed(path.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                closed.setdefault(folder, set()).add(path.relative_to(folder).parts[0])
    return closed


def _open_the_way(closed: dict[Path, set[str]], stage: Path) -> str:
    """Shell lines that, in a private mount namespace, give each closed folder only its entries on
    the way (the outermost first, so an inner one is reached through the outer one's mounts)."""
    lines = []
    for n, (folder, entries) in enumerate(sorted(closed.items(), key=lambda item: len(item[0].parts))):
        kept = []
        for m, entry in enumerate(sorted(entries)):
            held = stage / f"{n}-{m}"
            held.mkdir(parents=True)
            lines.append(f"mount --bind {shlex.quote(str(folder / entry))} {shlex.quote(str(held))}")
            kept.append((entry, held))
        lines.append(f"mount -t tmpfs -o mode=0755 cellmage-probe {shlex.quote(str(folder))}")
        for entry, held in kept:
            target = shlex.quote(str(folder / entry))
            make = "mkdir" if (folder / entry).is_dir() else "touch"
            lines.append(f"{make} {target} && mount --bind {shlex.quote(str(held))} {target}")
    return "\n".join(lines)


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    token: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def uid(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
        raise AssertionError("no Uid line")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)


def start_server(workdir: Path, uid: int, gid: int, cellmage_toml: str, environ: dict[str, str]) -> ServerProcess:
    """``python -m jupyter_server`` with the extension as ``uid``, its files in ``workdir`` (owned
    by ``uid``), ``environ`` added to its environment; returns once ``cellmage/api/status`` answers."""
    for name in ("config", "data", "runtime"):
        (workdir / name).mkdir()
    (workdir / "cellmage.toml").write_text(cellmage_toml)
    (workdir / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"cellmage_server": True}, "allow_unauthenticated_access": False}})
    )
    for path in [workdir, *workdir.rglob("*")]:
        os.chown(path, uid, gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = os.urandom(16).hex()
    package_root = Path(cellmage_server.__file__).resolve().parent.parent
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(package_root), os.environ.get("PYTHONPATH")])),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "CELLMAGE_CONFIG": str(workdir / "cellmage.toml"),
        **environ,
    }
    server = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
    ]
    if os.geteuid() == 0:
        needed = [Path(sys.executable).resolve(), *(Path(p) for p in sys.path if p and Path(p).exists()), package_root]
        closed = _closed_folders([p.resolve() for p in needed])
        server = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *server]
        if closed:
            # unshare without --fork execs: the server keeps this process's pid, as setpriv does
            script = f"set -e\n{_open_the_way(closed, workdir / 'stage')}\nexec \"$@\""
            server = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", *server]
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(server, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    started = ServerProcess(process, f"http://127.0.0.1:{port}/", token, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        try:
            status = httpx.get(started.url + "cellmage/api/status", headers={"Authorization": f"token {token}"}, timeout=2)
            if status.status_code == 200:
                return started
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # a process starting up: nothing to wait on but its port
    started.stop()
    raise RuntimeError(f"the server did not answer within 60 s:\n{log.read_text()}")
