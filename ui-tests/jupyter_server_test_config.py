"""The Jupyter server the browser tests run against: galata's settings, and the cellmage
extension configured to a fake OpenAI-compatible upstream on 127.0.0.1 (tests/fake_upstream.py),
which runs in a thread of this server process and ends with it.
"""

import os
import sys
import tempfile
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fake_upstream import FakeUpstream  # noqa: E402

configure_jupyter_server(c)  # noqa: F821 (c is the config object Jupyter passes in)
c.ServerApp.allow_root = True  # noqa: F821
# JupyterLab's server on 8888 (fake provider on 8891); Notebook 7's on 8889 (fake on 8892).
c.ServerApp.port = int(os.environ.get("CELLMAGE_UI_PORT", "8888"))  # noqa: F821
c.ServerApp.port_retries = 0  # noqa: F821

# A fixed port: the browser tests script the fake and read what it received at /_fake/.
fake = FakeUpstream(port=int(os.environ.get("CELLMAGE_UI_FAKE_PORT", "8891"))).start()
config_dir = Path(tempfile.mkdtemp(prefix="cellmage-ui-tests-"))
(config_dir / "cellmage.toml").write_text(
    f"""
default_model = "fake-fast"
history_db = "{config_dir / 'conversations.sqlite3'}"  # fresh for every run: no stale turns

[models.fake-fast]
model = "openai/fake-fast"
api_base = "{fake.url}"
api_key = "sk-ui-tests-not-a-real-key"
description = "The fake upstream of the UI tests"

[models.fake-other]
model = "openai/fake-other"
api_base = "{fake.url}"
api_key = "sk-ui-tests-not-a-real-key"
"""
)

os.environ["CELLMAGE_CONFIG"] = str(config_dir / "cellmage.toml")

# Real-time collaboration (jupyter-collaboration, the `collab` extra) is installed with the test
# needs. These tests run without it, as a single user's JupyterLab does (its switch: the pages open
# notebooks through the contents API); playwright.collab.config.js runs the collaboration tests.
c.YDocExtension.disable_rtc = os.environ.get("CELLMAGE_UI_COLLAB") != "1"  # noqa: F821

if os.environ.get("CELLMAGE_UI_COLLAB") == "1":
    # The collaboration tests (playwright.collab.config.js): a room saves its notebook half a second
    # after the last change, and its stores live in this run's temporary folder, not in the
    # working directory or the user's data directory (shared with other servers).
    c.YDocExtension.document_save_delay = 0.5  # noqa: F821
    c.YDocExtension.session_store_path = str(config_dir / "collaboration_sessions.json")  # noqa: F821
    c.SQLiteYStore.db_path = str(config_dir / "ystore.db")  # noqa: F821
    c.BaseFileIdManager.db_path = str(config_dir / "fileid.db")  # noqa: F821
