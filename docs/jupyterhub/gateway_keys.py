# Per-user gateway keys (a gateway with its database): add this to jupyterhub_config.py. The hub
# tests load it as it is, against a fake of LiteLLM's key API (tests/hub/jupyterhub_test_config.py).
import os

from jupyterhub.spawner import LocalProcessSpawner

from cellmage_server.gateway_keys import GatewayKeys, GatewayKeyState

c = get_config()  # noqa: F821 (defined by JupyterHub when it loads this file)


class TeamSpawner(GatewayKeyState, LocalProcessSpawner):  # or KubeSpawner, DockerSpawner, ...
    """Keeps each server's key's hash in the hub's database, so a restarted hub deletes it."""


c.JupyterHub.spawner_class = TeamSpawner
keys = GatewayKeys(
    os.environ.get("LITELLM_URL", "http://127.0.0.1:4000"), os.environ["LITELLM_MASTER_KEY"],
    max_budget=20.0, budget_duration="30d", rpm_limit=60, models=["gpt-4o-mini", "gpt-4o"],
)
c.Spawner.pre_spawn_hook = keys.pre_spawn_hook  # POST /key/generate {"user_id": "ada", ...}
c.Spawner.post_stop_hook = keys.post_stop_hook  # POST /key/delete {"keys": [<the key's hash>]}
