"""Kernels started by the server hold no provider key and know how to reach the server."""

from __future__ import annotations

from pathlib import Path

import httpx

from cellmage_server.kernel_env import TOKEN_ENV, URL_ENV

from .conftest import KEY_ENV, SECRET


def _environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


async def test_a_kernel_gets_the_servers_address_and_no_key(api, jp_serverapp, jp_http_port, jp_base_url):
    # When a kernel is started through the server's REST API, as JupyterLab does
    async with api.client() as c:
        started = await c.post(api.base + "api/kernels", json={"name": "python3"})
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        try:
            kernel = jp_serverapp.kernel_manager.get_kernel(kernel_id)
            env = _environ_of(kernel.provisioner.process.pid)

            # Then the provider key is nowhere in its environment, nor the config file's path
            assert KEY_ENV not in env and "CELLMAGE_CONFIG" not in env
            assert all(SECRET not in value for value in env.values())
            # And it has this server's URL (with base URL) and token
            assert env[URL_ENV] == f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
            assert env[TOKEN_ENV] == jp_serverapp.identity_provider.token
        finally:
            await c.delete(api.base + f"api/kernels/{kernel_id}")

    # And those are enough to reach the endpoint, as a client in the kernel would
    async with httpx.AsyncClient(trust_env=False) as kernel_client:
        status = await kernel_client.get(
            env[URL_ENV] + "cellmage/api/status", headers={"Authorization": f"token {env[TOKEN_ENV]}"}
        )
    assert status.status_code == 200 and status.json()["configured"] is True
