# jupyterhub_config.py: a small team's hub with cellmage-server in every single-user server.
# The hub tests (tests/hub/) load this file as it is; their own overrides, for a test machine,
# are in tests/hub/jupyterhub_test_config.py.
import os

c = get_config()  # noqa: F821 (defined by JupyterHub when it loads this file)

# Who may log in. With the default authenticator (PAM) and spawner (LocalProcessSpawner) these
# are accounts on this machine, and each single-user server runs as its user.
c.Authenticator.allowed_users = {"ada", "bob"}

# The proxy in front: configurable-http-proxy (npm), started and stopped by the hub. It must not
# buffer: answers stream through it as server-sent events.
c.ConfigurableHTTPProxy.command = [os.environ.get("CHP_COMMAND", "configurable-http-proxy")]

# Every single-user server is JupyterLab with cellmage-server (installed in the same environment:
# pip install cellmage-server; the server extension is enabled by its install).
c.Spawner.cmd = ["jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"

# What each server gets: its cellmage.toml (models at the gateway) and the gateway key. Never a
# provider key: those live in the gateway only. The server removes CELLMAGE_GATEWAY_KEY from
# what its kernels inherit; kernels reach the server with the hub's token instead.
c.Spawner.environment = {
    "CELLMAGE_CONFIG": os.environ.get("CELLMAGE_CONFIG", "/etc/jupyter/cellmage.toml"),
    "CELLMAGE_GATEWAY_KEY": os.environ["CELLMAGE_GATEWAY_KEY"],
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no price-map download at start
}
