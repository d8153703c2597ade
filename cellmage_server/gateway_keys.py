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

import hashlib
import json
import re
from typing import Any

import httpx

_UNSAFE = re.compile(r"[^A-Za-z0-9.@-]+")


def key_alias(user: str, server: str, prefix: str = "jupyterhub") -> str:
    """The alias of the key of ``user``'s server ``server`` ("" for the default server).

    LiteLLM refuses a second key with an alias already in use, so no two servers may share one:
    ``bob``'s server ``x-default`` and ``bob-x``'s default server read alike
    (``jupyterhub-bob-x-default-…``) but end in different digests. The digest is sha256 of the
    exact names (a JSON pair, so no two pairs share its input), 64 bits of it: readable for an
    admin in the gateway's UI, and within LiteLLM's strictest alias pattern (letters, digits and
    ``.@-``, starting with the prefix and ending with the digest; no ``/``, so no path segment).
    """
    digest = hashlib.sha256(json.dumps([user, server]).encode()).hexdigest()[:16]
    readable = "-".join(_UNSAFE.sub("-", name)[:60] for name in (user, server or "default"))
    return f"{prefix}-{readable}-{digest}"


class GatewayKeyError(RuntimeError):
    """The gateway did not mint or delete a key; the message says what it answered."""


class GatewayKeys:
    """Mints one virtual key per server start, owned by the hub user (so the gateway's per-user
    budget and spend apply across that user's keys) and expiring after ``duration`` even if the
    hub never deletes it. ``alias_prefix`` starts every key's alias: give each hub that shares a
    gateway its own, since a start deletes the key its alias names when one is left from before."""

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
        alias_prefix: str = "jupyterhub",
        timeout: float = 10.0,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self._master_key = master_key
        self.env_name = env_name
        self.limits: dict[str, Any] = {
            "duration": duration, "max_budget": max_budget, "budget_duration": budget_duration,
            "models": models, "rpm_limit": rpm_limit,
        }
        self.alias_prefix = alias_prefix
        self.timeout = timeout

    def _client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._master_key}"}
        return httpx.AsyncClient(base_url=self.gateway_url, headers=headers, timeout=self.timeout, trust_env=False)

    def alias(self, spawner: Any) -> str:
        return key_alias(spawner.user.name, spawner.name or "", self.alias_prefix)

    async def pre_spawn_hook(self, spawner: Any) -> None:
        """Mint the user's key and put it in the environment of the server about to start."""
        user, alias = spawner.user.name, self.alias(spawner)
        body = {"user_id": user, "key_alias": alias, "metadata": {"source": "jupyterhub"}}
        body.update({k: v for k, v in self.limits.items() if v is not None})
        try:
            async with self._client() as client:
                response = await client.post("/key/generate", json=body)
                if _alias_taken(response):
                    # A key left from an earlier start of this very server (the hub lost track of
                    # it, or could not delete it): no other server has this alias, so it is stale.
                    spawner.log.warning("cellmage: deleting %s's stale gateway key %s", user, alias)
                    await client.post("/key/delete", json={"key_aliases": [alias]})
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


def _alias_taken(response: httpx.Response) -> bool:
    """LiteLLM's answer to a key_alias already in use (``_enforce_unique_key_alias``): 400, param
    ``key_alias``, "... already exists ..."."""
    if response.status_code != 400:
        return False
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return False
    return isinstance(error, dict) and error.get("param") == "key_alias" and "already exists" in str(error.get("message"))
