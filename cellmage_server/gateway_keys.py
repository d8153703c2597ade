"""Per-user gateway keys for JupyterHub: hooks that mint a LiteLLM Proxy virtual key for each
user's server as it starts (``/key/generate``) and delete it when it stops (``/key/delete``).

Runs in the hub, not in the single-user server. Needs a gateway with its database (virtual keys,
budgets); in ``jupyterhub_config.py``::

    from cellmage_server.gateway_keys import GatewayKeys
    keys = GatewayKeys("http://litellm:4000", os.environ["LITELLM_MASTER_KEY"], max_budget=20.0)
    c.Spawner.pre_spawn_hook = keys.pre_spawn_hook
    c.Spawner.post_stop_hook = keys.post_stop_hook
"""

from __future__ import annotations

from typing import Any

import httpx


class GatewayKeyError(RuntimeError):
    """The gateway did not mint or delete a key; the message says what it answered."""


class GatewayKeys:
    """Mints one virtual key per server start, owned by the hub user (so the gateway's per-user
    budget and spend apply across that user's keys) and expiring after ``duration`` even if the
    hub never deletes it."""

    def __init__(
        self,
        gateway_url: str,
        master_key: str,
        *,
        env_name: str = "CELLMAGE_GATEWAY_KEY",
        duration: str = "7d",
        max_budget: float | None = None,
        budget_duration: str | None = None,
        models: list[str] | None = None,
        rpm_limit: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self._master_key = master_key
        self.env_name = env_name
        self.limits: dict[str, Any] = {
            "duration": duration, "max_budget": max_budget, "budget_duration": budget_duration,
            "models": models, "rpm_limit": rpm_limit,
        }
        self.timeout = timeout

    def _client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._master_key}"}
        return httpx.AsyncClient(base_url=self.gateway_url, headers=headers, timeout=self.timeout, trust_env=False)

    async def pre_spawn_hook(self, spawner: Any) -> None:
        """Mint the user's key and put it in the environment of the server about to start."""
        user = spawner.user.name
        body = {"user_id": user, "key_alias": f"jupyterhub-{user}-{spawner.name or 'default'}",
                "metadata": {"source": "jupyterhub"}}
        body.update({k: v for k, v in self.limits.items() if v is not None})
        try:
            async with self._client() as client:
                response = await client.post("/key/generate", json=body)
        except httpx.HTTPError as e:
            raise GatewayKeyError(f"cannot reach the LLM gateway at {self.gateway_url} to mint {user}'s key: {e}") from e
        if response.status_code != 200:
            raise GatewayKeyError(
                f"the LLM gateway at {self.gateway_url} did not mint {user}'s key (HTTP {response.status_code}: "
                f"{response.text[:300]}); virtual keys need the gateway's database (DATABASE_URL)"
            )
        key = response.json()["key"]
        spawner.environment = {**spawner.environment, self.env_name: key}
        spawner._cellmage_gateway_key = key

    async def post_stop_hook(self, spawner: Any) -> None:
        """Delete the key the server had; it expires anyway if this fails."""
        key = getattr(spawner, "_cellmage_gateway_key", None)
        if key is None:
            return
        spawner._cellmage_gateway_key = None
        try:
            async with self._client() as client:
                response = await client.post("/key/delete", json={"keys": [key]})
        except httpx.HTTPError as e:
            spawner.log.warning("cellmage: could not delete %s's gateway key: %s", spawner.user.name, e)
            return
        if response.status_code != 200:
            spawner.log.warning(
                "cellmage: the gateway did not delete %s's key (HTTP %s)", spawner.user.name, response.status_code
            )
