# The hub the tests run: docs/jupyterhub/jupyterhub_config.py as it is, then what a test machine
# needs instead of a real deployment's (no OS accounts, no root servers, all on 127.0.0.1, free
# ports). The fixture in tests/hub/stack.py passes the HUB_TEST_* values.
import os

c = get_config()  # noqa: F821
load_subconfig(os.environ["HUB_TEST_DOCS_CONFIG"])  # noqa: F821

# Password logins without OS accounts; servers run as this process's user, in per-user homes.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ["HUB_TEST_PASSWORD"]
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.environ["HUB_TEST_HOMES"] + "/{username}"
c.Spawner.args = ["--allow-root"]  # CI runs as root; a LocalProcessSpawner server never is
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90

c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['HUB_TEST_PORT']}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ["HUB_TEST_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['HUB_TEST_PROXY_API_PORT']}"
# A hub restart either stops the servers (the default) or leaves them running (Zero to JupyterHub).
c.JupyterHub.cleanup_servers = os.environ.get("HUB_TEST_CLEANUP_SERVERS", "1") == "1"

# Per-user keys: docs/jupyterhub/gateway_keys.py as it is, its mixin on this machine's spawner.
if os.environ.get("HUB_TEST_KEYS_CONFIG"):
    load_subconfig(os.environ["HUB_TEST_KEYS_CONFIG"])  # noqa: F821
    from jupyterhub.spawner import SimpleLocalProcessSpawner

    from cellmage_server.gateway_keys import GatewayKeyState

    c.JupyterHub.spawner_class = type("TeamSpawner", (GatewayKeyState, SimpleLocalProcessSpawner), {})

# The tests act for the users through this service (start servers, mint the users' tokens).
c.JupyterHub.services = [{"name": "cellmage-tests", "api_token": os.environ["HUB_TEST_SERVICE_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "cellmage-tests",
        "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"],
        "services": ["cellmage-tests"],
    }
]
