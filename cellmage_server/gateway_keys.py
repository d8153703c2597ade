"""Per-user gateway keys for JupyterHub: hooks that mint a LiteLLM Proxy virtual key for each
user's server as it starts (``/key/generate``) and delete it when it stops (``/key/delete``).

Runs in the hub, not in the single-user server. Needs a gateway with its database (virtual keys,
budgets); in ``jupyterhub_config.py``::

    from jupyterhub.spawner import LocalProcessSpawner
    from cellmage_server.gateway_keys import GatewayKeys, GatewayKeyState

    class TeamSpawner(GatewayKeyState, LocalProcessSpawner):  # or KubeSpawner, DockerSpawner, ...
        pass

    c.JupyterHub.spawner_class = TeamSpawner
    keys = GatewayKeys("http://litellm:4000", os.environ["LITELLM_MASTER_KEY"], max_budget=20.0)
    c.Spawner.pre_spawn_hook = keys.pre_spawn_hook
    c.Spawner.post_stop_hook = keys.post_stop_hook

Where the key's id lives. What a start mints must outlive the hub process: a hub restarted with
``cleanup_servers = False`` (how Zero to JupyterHub runs) leaves the servers running and builds
new spawner objects for them. JupyterHub keeps each spawner's ``get_state()`` in its database and
gives it to the new object's ``load_state()``; it also overwrites ``orm_spawner.state`` with
``get_state()`` after every start and stop, so a hook cannot write there itself. A mixin on the
spawner class (:class:`GatewayKeyState`) is the way JupyterHub supports, and composes with any
spawner. It keeps the key's hash (LiteLLM's ``token_id``, which ``/key/delete`` takes like the
key) and alias, never the key. Without the mixin the hooks still work, and a stop the hub no
longer remembers deletes the key by the server's alias, which only that server has.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx
from jupyterhub.spawner import SpawnException

from .gateway_state import GatewayKeyState, note

__all__ = ["GatewayKeyError", "GatewayKeyState", "GatewayKeys", "key_alias"]

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


class GatewayKeyError(SpawnException):
    """The gateway did not mint a key. Its message, in words for the user, is what the spawn's
    progress shows ("Spawn failed: ..."), without a traceback in the hub's log."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="gateway", status_code=503)
        self.jupyterhub_message = message

    def say(self, more: str) -> None:
        self.jupyterhub_message += more
        self.message = self.log_message = self.jupyterhub_message


class GatewayKeys:
    """Mints one virtual key per server start, owned by the hub user (so the gateway's per-user
    budget and spend apply across that user's keys) and expiring after ``duration`` even if the
    hub never deletes it. ``alias_prefix`` starts every key's alias: give each hub that shares a
    gateway its own, since a start deletes the key its alias names when one is left from before.

    When the gateway cannot be reached or refuses, the server starts without a key (the spawn's
    progress and the hub's log say why and what to do): a gateway outage costs the team its LLM
    answers, not its notebooks. ``require_key=True`` stops the start instead, with that message.
    """

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
        require_key: bool = False,
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
        self.require_key = require_key
        self.timeout = timeout

    def _client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._master_key}"}
        return httpx.AsyncClient(base_url=self.gateway_url, headers=headers, timeout=self.timeout, trust_env=False)

    def alias(self, spawner: Any) -> str:
        return key_alias(spawner.user.name, spawner.name or "", self.alias_prefix)

    async def pre_spawn_hook(self, spawner: Any) -> None:
        """Mint the user's key and put it in the environment of the server about to start; say in
        the spawn's progress what happened."""
        # A server that gets no key of its own gets none: never a team key from c.Spawner.environment.
        problem = f"{self.env_name}_PROBLEM"  # why there is no key: the server's messages say it
        spawner.environment = {k: v for k, v in spawner.environment.items() if k not in (self.env_name, problem)}
        spawner.cellmage_gateway_key = None
        try:
            minted = await self._mint(spawner)
        except GatewayKeyError as e:
            if self.require_key:
                e.say(" Your server did not start: this hub gives every server an LLM key. Try again in a "
                      "moment; if this stays, tell your JupyterHub admin.")
                note(spawner, e.jupyterhub_message)
                raise
            e.say(" Your server starts without one, so LLM answers fail until it restarts with a key: stop and "
                  "start it from the hub's home page once the gateway is back; if this stays, tell your "
                  "JupyterHub admin.")
            spawner.log.warning("cellmage: %s", e.jupyterhub_message)
            note(spawner, e.jupyterhub_message)
            # A start faster than slow_spawn_timeout shows no progress page: the server's own
            # message for the missing key says it instead (config.py reads <KEY VARIABLE>_PROBLEM).
            spawner.environment = {**spawner.environment, problem: e.jupyterhub_message}
            return
        spawner.environment = {**spawner.environment, self.env_name: minted["key"]}
        # What deletes the key later: its hash (LiteLLM's token_id; /key/delete takes it as it
        # takes the key) and its alias. Never the key itself: this goes to the hub's database.
        token_id = minted.get("token_id") or minted.get("token")
        alias = self.alias(spawner)
        spawner.cellmage_gateway_key = {"token_id": token_id if isinstance(token_id, str) else None, "alias": alias}
        note(spawner, f"Got an LLM key from the gateway ({alias}).")

    async def _mint(self, spawner: Any) -> dict[str, Any]:
        """``/key/generate``'s answer, or :class:`GatewayKeyError` in words for the user."""
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
                    note(spawner, "Deleting an LLM key left from an earlier start of this server.")
                    await client.post("/key/delete", json={"key_aliases": [alias]})
                    response = await client.post("/key/generate", json=body)
        except httpx.HTTPError as e:
            raise GatewayKeyError(
                f"Cannot reach the LLM gateway at {self.gateway_url} to mint {user}'s key "
                f"({type(e).__name__}: {self._redact(str(e)) or 'no answer'})."
            ) from e
        if response.status_code != 200:
            if _alias_taken(response):
                why = f"a key left from before holds this server's alias {alias} and could not be deleted"
            elif response.status_code in (401, 403):
                why = "the hub's master key was refused"
            else:
                why = "virtual keys need the gateway's database (DATABASE_URL)"
            raise GatewayKeyError(
                f"The LLM gateway at {self.gateway_url} did not mint {user}'s key (HTTP {response.status_code}: "
                f"{self._redact(_words(response))}); {why}."
            )
        return response.json()

    def _redact(self, text: str) -> str:
        return text.replace(self._master_key, "[master key]") if self._master_key else text

    async def post_stop_hook(self, spawner: Any) -> None:
        """Delete the key the server had: by its hash when the hub knows it (kept in the spawner's
        state by :class:`GatewayKeyState`), else by the server's alias. It expires anyway if
        this fails, and the server's next start deletes it by its alias."""
        held = getattr(spawner, "cellmage_gateway_key", None) or {}
        spawner.cellmage_gateway_key = None
        user = spawner.user.name
        if held.get("token_id"):
            body, which = {"keys": [held["token_id"]]}, f"key {held.get('alias')}"
        else:
            alias = held.get("alias") or self.alias(spawner)
            body, which = {"key_aliases": [alias]}, f"key under {alias}"
        try:
            async with self._client() as client:
                response = await client.post("/key/delete", json=body)
        except httpx.HTTPError as e:
            spawner.log.warning("cellmage: could not delete %s's gateway %s: %s", user, which, e)
            return
        if response.status_code == 200:
            spawner.log.info("cellmage: deleted %s's gateway %s", user, which)
        elif response.status_code == 404:  # none left: it expired, an admin deleted it, or none was minted
            spawner.log.debug("cellmage: no gateway %s of %s to delete", which, user)
        else:
            status = response.status_code
            spawner.log.warning("cellmage: the gateway did not delete %s's %s (HTTP %s)", user, which, status)


def _words(response: httpx.Response) -> str:
    """The gateway's own words: LiteLLM's ``{"error": {"message": ...}}``, else its text."""
    try:
        error = response.json().get("error")
        text = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        text = None
    return str(text or response.text or response.reason_phrase)[:300]


def _alias_taken(response: httpx.Response) -> bool:
    """LiteLLM's answer to a key_alias already in use (``_enforce_unique_key_alias``): 400, param
    ``key_alias``, "... already exists ..."."""
    if response.status_code != 400:
        return False
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    if not isinstance(error, dict):
        return False
    return error.get("param") == "key_alias" and "already exists" in str(error.get("message"))
