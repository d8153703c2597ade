"""The installed package: both halves of the extension are enabled, and nothing heavy loads."""

from __future__ import annotations

import re
import subprocess
import sys

from cellmage_server import __version__

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return ANSI.sub("", done.stdout + done.stderr)


def test_the_server_extension_is_enabled_and_valid():
    out = _jupyter("server", "extension", "list")

    assert re.search(r"cellmage_server\s+enabled", out), out
    assert f"cellmage_server {__version__} OK" in out


def test_the_lab_extension_is_installed_prebuilt_and_enabled():
    out = _jupyter("labextension", "list")

    assert re.search(rf"cellmage-server v{re.escape(__version__)}\s+enabled\s+OK", out), out


def test_loading_the_server_extension_imports_no_provider_sdk():
    code = (
        "import sys, cellmage_server.app, cellmage_server.routes.api\n"
        "heavy = {'litellm', 'openai', 'anthropic', 'tiktoken', 'tokenizers'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    assert done.stdout.strip() == "[]"
