"""The kernel side: ``%%llm`` and ``%llm_config``, calling this Jupyter server's endpoint.

Loaded by ``%load_ext cellmage_server``, which says in one line whether it is ready: which server
it asks and its default model, or what to do first. Imports only IPython and the standard library
here (the line's one request uses urllib); httpx and httpx-sse on the first answer.
"""

from __future__ import annotations

import json
from typing import Any

# How long %load_ext waits for the server's status before it says it could not reach it.
STATUS_TIMEOUT_S = 3.0


def ready_line(environ: Any = None) -> str:
    """One line: ready (which server, the default model), or what to configure first."""
    import os
    import urllib.error
    import urllib.request

    from .client import ServerNotFound, find_endpoint

    try:
        endpoint = find_endpoint(os.environ if environ is None else environ)
    except ServerNotFound as e:
        return f"CellMage loaded, but {e}"
    request = urllib.request.Request(endpoint.api + "status")
    if endpoint.token:
        request.add_header("Authorization", f"token {endpoint.token}")
    try:
        with urllib.request.urlopen(request, timeout=STATUS_TIMEOUT_S) as response:  # noqa: S310 (the server's own URL)
            status = json.loads(response.read(64 * 1024))
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return f"CellMage loaded, but the Jupyter server at {endpoint.url} has no cellmage endpoint: is cellmage-server installed and enabled there?"
        return f"CellMage loaded, but the Jupyter server at {endpoint.url} refused its status ({e.reason}); %%llm will say why."
    except (OSError, ValueError):
        return f"CellMage loaded, but this kernel cannot reach the Jupyter server at {endpoint.url}; check that it runs."
    if not status.get("configured"):
        return (
            f"CellMage loaded, but the Jupyter server at {endpoint.url} has no LLM provider configured yet: "
            "%%llm shows what to write in its cellmage.toml."
        )
    return f"CellMage ready: %%llm asks {endpoint.url} (default model {status.get('default_model')})."


def load_ipython_extension(ipython: Any) -> None:
    from .magics import LlmMagics

    ipython.register_magics(LlmMagics)
    print(ready_line())
