"""The team deployment as real processes on 127.0.0.1: the fake provider, LiteLLM Proxy (the
gateway, the only holder of the provider key), and JupyterHub with configurable-http-proxy,
spawning ``jupyterhub-singleuser`` servers with this extension for ``ada`` and ``bob``.

Each process runs in its own process group, logs to a file, and is stopped (with whatever it
started) by :meth:`Stack.stop`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from ..fake_upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "jupyterhub"
HUB_TESTS = Path(__file__).resolve().parent
CHP = HUB_TESTS / "node_modules" / ".bin" / "configurable-http-proxy"
DOCS_GATEWAY = "http://127.0.0.1:4000/v1"  # the gateway address docs/jupyterhub/cellmage.toml names
PROVIDER_KEY = "sk-provider-ONLYINTHEGATEWAY-0123456789"
USERS = ("ada", "bob")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing() -> str | None:
    """Why the stack cannot run here, or None."""
    if not CHP.exists():
        return f"configurable-http-proxy is not installed: run `npm ci` in {HUB_TESTS}"
    for tool in ("jupyterhub", "jupyterhub-singleuser", "litellm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: pip install -c constraints.txt -e '.[hub]'"
    return None


def cellmage_toml(gateway: str) -> str:
    """docs/jupyterhub/cellmage.toml with the gateway at ``gateway``, plus one model whose gateway
    is down (nothing listens at its address)."""
    text = (DOCS / "cellmage.toml").read_text()
    assert text.count(DOCS_GATEWAY) == 2, "the docs' cellmage.toml no longer names the gateway as the tests expect"
    text = text.replace(DOCS_GATEWAY, gateway)
    return text + (
        "\n# test only: a gateway that is down\n[models.down]\nmodel = \"openai/gpt-4o-mini\"\n"
        f'api_base = "http://127.0.0.1:{free_port()}/v1"\napi_key_env = "CELLMAGE_GATEWAY_KEY"\n'
    )


@dataclass
class Stack:
    work: Path
    fake: FakeUpstream = field(default_factory=FakeUpstream)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    started: list[psutil.Process] = field(default_factory=list)  # what the hub started (servers, proxy)
    password: str = field(default_factory=lambda: secrets.token_hex(8))
    master_key: str = field(default_factory=lambda: "sk-gateway-" + secrets.token_hex(12))
    service_token: str = field(default_factory=lambda: secrets.token_hex(24))
    hub_port: int = 0
    gateway_port: int = 0
    with_gateway: bool = True  # False: no LiteLLM Proxy (a test of the hub alone)
    keys_api: tuple[str, str] | None = None  # (url, master key): per-user keys from this key API
    cleanup_servers: bool = True
    _hub_env: dict[str, str] = field(default_factory=dict)

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/v1"

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        out = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process); a restart appends
        self.procs[name] = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()

    def start(self, *, fake_last: bool = False) -> Stack:
        """Start everything; with ``fake_last`` (and the fake's port fixed) the fake provider starts
        only once the rest is up, so a client waiting for it waits for the whole stack."""
        if fake_last:
            assert self.fake.requested_port, "fake_last needs a fixed port for the fake"
            self.fake.port = self.fake.requested_port
        else:
            self.fake.start()
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CELLMAGE_", "JUPYTER", "OPENAI_"))}
        base_env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
        base_env["PYTHONPATH"] = os.pathsep.join(paths)

        self.gateway_port = self.gateway_port or free_port()
        gateway_env = {
            **base_env,
            "PROVIDER_API_BASE": self.fake.url,
            "PROVIDER_API_KEY": PROVIDER_KEY,
            "LITELLM_MASTER_KEY": self.master_key,
        }
        argv = ["litellm", "--config", str(DOCS / "litellm_config.yaml"), "--host", "127.0.0.1",
                "--port", str(self.gateway_port)]
        if self.with_gateway:
            self._spawn("gateway", argv, gateway_env, self.work)

        config = self.work / "cellmage.toml"
        config.write_text(cellmage_toml(self.gateway_url))
        homes = self.work / "home"
        for user in USERS:
            (homes / user).mkdir(parents=True, exist_ok=True)
        self.hub_port = self.hub_port or free_port()
        hub_env = {
            **base_env,
            "CHP_COMMAND": str(CHP),
            "CELLMAGE_CONFIG": str(config),
            "CELLMAGE_GATEWAY_KEY": self.master_key,
            "HUB_TEST_DOCS_CONFIG": str(DOCS / "jupyterhub_config.py"),
            "HUB_TEST_PASSWORD": self.password,
            "HUB_TEST_HOMES": str(homes),
            "HUB_TEST_PORT": str(self.hub_port),
            "HUB_TEST_HUB_PORT": str(free_port()),
            "HUB_TEST_PROXY_API_PORT": str(free_port()),
            "HUB_TEST_SERVICE_TOKEN": self.service_token,
            "HUB_TEST_CLEANUP_SERVERS": "1" if self.cleanup_servers else "0",
        }
        if self.keys_api is not None:
            hub_env["HUB_TEST_KEYS_CONFIG"] = str(DOCS / "gateway_keys.py")
            hub_env["LITELLM_URL"], hub_env["LITELLM_MASTER_KEY"] = self.keys_api
        self._hub_env = hub_env
        self._start_hub()
        if self.with_gateway:
            self._wait("gateway", f"http://127.0.0.1:{self.gateway_port}/health/liveliness", 90)
        return self

    def _start_hub(self) -> None:
        argv = [sys.executable, "-m", "jupyterhub", "-f", str(HUB_TESTS / "jupyterhub_test_config.py")]
        self._spawn("hub", argv, self._hub_env, self.work)
        self._wait("hub", f"{self.hub_url}/hub/api", 60)

    def restart_hub(self) -> None:
        """Stop the hub process alone (as an upgrade or a crash would), then start it again on the
        same database; with ``cleanup_servers`` False the servers go on running meanwhile."""
        self._remember_children()
        hub = self.procs["hub"]
        hub.send_signal(signal.SIGTERM)
        hub.wait(30)
        self._start_hub()

    def _wait(self, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited ({self.procs[name].returncode}):\n{self.log(name)[-3000:]}")
            try:
                if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{name} did not answer {url} in {timeout} s:\n{self.log(name)[-3000:]}")

    # --- acting through the hub's API --------------------------------------------------------

    def hub_api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.hub_url}/hub/api/", headers={"Authorization": f"token {self.service_token}"},
            timeout=30, trust_env=False,
        )

    def start_servers(self, *users: str, timeout: float = 120) -> None:
        """Ask the hub for each user's server (they start side by side); wait until all are ready."""
        with self.hub_api() as hub:
            for user in users:
                hub.post(f"users/{user}")  # created if new (409 if not)
                response = hub.post(f"users/{user}/server")
                assert response.status_code in (201, 202, 400), response.text
            deadline = time.monotonic() + timeout
            waiting = list(users)
            while waiting and time.monotonic() < deadline:
                waiting = [u for u in waiting if not hub.get(f"users/{u}").json().get("servers", {}).get("", {}).get("ready")]
                if waiting:
                    time.sleep(0.5)
        self._remember_children()
        if waiting:
            raise RuntimeError(f"servers of {waiting} did not start in {timeout} s:\n{self.log('hub')[-4000:]}")

    def token(self, user: str) -> str:
        """A token for ``user``, with the user's own permissions on their server."""
        with self.hub_api() as hub:
            response = hub.post(f"users/{user}/tokens", json={"scopes": [f"access:servers!user={user}"], "note": "tests"})
            assert response.status_code == 201, response.text
            return response.json()["token"]

    def _remember_children(self) -> None:
        hub = self.procs.get("hub")
        if hub is not None:
            try:
                children = psutil.Process(hub.pid).children(recursive=True)
            except psutil.Error:
                return
            # Kept across hub restarts: a server the old hub left running is nobody's child now.
            self.started += [p for p in children if p.pid not in {s.pid for s in self.started}]

    # --- stopping ------------------------------------------------------------------------------

    def stop(self) -> None:
        self._remember_children()
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the hub stops its servers and its proxy
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for child in self.started:  # anything the hub started and left behind
            try:
                if child.is_running():
                    child.kill()
            except psutil.Error:
                pass
        self.fake.stop()
