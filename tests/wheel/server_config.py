"""The Jupyter server of an installed wheel (`jupyter server` or `jupyter lab --config` this file),
run by a virtualenv's Python: the cellmage extension configured to a fake OpenAI-compatible
provider (tests/fake_upstream.py) in a thread of this process.

The fake is loaded from its file: putting the repository on sys.path would let `cellmage_server`
import from the clone instead of the installed package, which is what these tests are about.
Auth stays on (a token from CELLMAGE_WHEEL_TOKEN): the browser opens `/lab?token=...`.
"""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import cellmage_server

# The tests read where the server's extension comes from: the venv's site-packages, not the clone.
print(f"cellmage-wheel: cellmage_server from {cellmage_server.__file__}", file=sys.stderr)

_spec = importlib.util.spec_from_file_location(
    "cellmage_wheel_fake_upstream", Path(__file__).resolve().parents[1] / "fake_upstream.py"
)
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module  # its dataclasses look their module up there
_spec.loader.exec_module(_module)

c.ServerApp.allow_root = True  # noqa: F821 (c is the config object Jupyter passes in)
c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = int(os.environ["CELLMAGE_WHEEL_PORT"])  # noqa: F821
c.ServerApp.port_retries = 0  # noqa: F821
c.ServerApp.open_browser = False  # noqa: F821
c.IdentityProvider.token = os.environ["CELLMAGE_WHEEL_TOKEN"]  # noqa: F821

run_dir = Path(tempfile.mkdtemp(prefix="cellmage-wheel-"))
(run_dir / "notebooks").mkdir()
c.ServerApp.root_dir = str(run_dir / "notebooks")  # noqa: F821
# Nothing from the user's own Jupyter setup: no workspace left open by an earlier run.
c.LabApp.user_settings_dir = str(run_dir / "settings")  # noqa: F821
c.LabApp.workspaces_dir = str(run_dir / "workspaces")  # noqa: F821

fake = _module.FakeUpstream(port=int(os.environ["CELLMAGE_WHEEL_FAKE_PORT"])).start()
(run_dir / "cellmage.toml").write_text(
    f"""
default_model = "fake-fast"
history_db = "{run_dir / 'conversations.sqlite3'}"

[models.fake-fast]
model = "openai/fake-fast"
api_base = "{fake.url}"
api_key = "sk-wheel-tests-not-a-real-key"
"""
)
os.environ["CELLMAGE_CONFIG"] = str(run_dir / "cellmage.toml")
