"""What kernels started by this server inherit: no provider key, and the way back to this server.

Kernels (and terminals) inherit the server process's environment, so the key variables the
configuration names, and ``CELLMAGE_CONFIG`` (a config file may hold keys inline), are removed
from it once read, and the server's loopback URL and token are added. A client in the kernel
reads them (``CELLMAGE_SERVER_URL``,
``CELLMAGE_SERVER_TOKEN``); under JupyterHub it uses ``JUPYTERHUB_API_TOKEN`` when there is no
server token.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

from .config import CONFIG_ENV

URL_ENV = "CELLMAGE_SERVER_URL"
TOKEN_ENV = "CELLMAGE_SERVER_TOKEN"

_LOOPBACK_V4 = {"", "*", "0.0.0.0", "localhost", "127.0.0.1"}
_LOOPBACK_V6 = {"::", "::1"}


def server_url(serverapp: Any) -> str | None:
    """This server's URL as seen from a process on the same machine, ending in its base URL."""
    if serverapp.sock:
        return None
    ip = serverapp.ip
    host = "127.0.0.1" if ip in _LOOPBACK_V4 else "[::1]" if ip in _LOOPBACK_V6 else f"[{ip}]" if ":" in ip else ip
    scheme = "https" if serverapp.certfile else "http"
    return f"{scheme}://{host}:{serverapp.port}{serverapp.base_url}"


def publish(
    serverapp: Any, key_env_names: Iterable[str], environ: MutableMapping[str, str] = os.environ
) -> None:
    """Remove provider keys and the config file's path from, and add this server's address to,
    what kernels will inherit. (The configuration is read once, at start.)"""
    for name in (*key_env_names, CONFIG_ENV):
        environ.pop(name, None)
    url = server_url(serverapp)
    if url is None:
        environ.pop(URL_ENV, None)
    else:
        environ[URL_ENV] = url
    token = serverapp.identity_provider.token
    if token:
        environ[TOKEN_ENV] = token
    else:
        environ.pop(TOKEN_ENV, None)


OPENAI_BASE_URL_ENV = "OPENAI_BASE_URL"
OPENAI_API_KEY_ENV = "OPENAI_API_KEY"


def give_kernels(serverapp: Any, variables: dict[str, str]) -> None:
    """Add ``variables`` to the environment of each kernel the server starts from now on, and to
    no other process's: not the server's own, where litellm and the openai SDK would read
    ``OPENAI_BASE_URL`` and send the server's own calls back to itself. Calling it again replaces
    the variables (an empty dict gives none)."""
    manager = serverapp.kernel_manager
    given: dict[str, str] | None = getattr(manager, "_cellmage_kernel_variables", None)
    if given is None:
        given = manager._cellmage_kernel_variables = {}
        start = manager.start_kernel

        async def start_kernel(*args: Any, **kwargs: Any) -> Any:
            # Sessions pass the environment (os.environ plus the notebook's path); the kernels
            # API passes none, and then a kernel inherits os.environ.
            kwargs["env"] = {**(kwargs.get("env") or os.environ), **given}
            return await start(*args, **kwargs)

        manager.start_kernel = start_kernel
    given.clear()
    given.update(variables)


def openai_variables(serverapp: Any, key: str) -> dict[str, str]:
    """What the openai SDK (and litellm, LangChain, ...) in a kernel needs to use this server's
    OpenAI-compatible endpoint; nothing when the server has no loopback URL (a Unix socket)."""
    url = server_url(serverapp)
    if url is None:
        return {}
    return {OPENAI_BASE_URL_ENV: url + "cellmage/v1", OPENAI_API_KEY_ENV: key}
PR_SET_DUMPABLE = 4


def make_non_dumpable(log: Any) -> bool:
    """Close this process's memory and ``/proc/<pid>/environ`` to other processes of the same
    user (kernels included), as ssh-agent does; Linux only. True if it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as e:
        log.warning("cellmage: could not make the server non-dumpable (%s); same-user processes can read its memory", e)
        return False
    return True
