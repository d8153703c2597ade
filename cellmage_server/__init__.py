"""cellmage-server: stream LLM answers into Jupyter notebooks through the Jupyter server.

This module stays light: the server extension's modules load only when Jupyter asks for them,
and ``%load_ext cellmage_server`` in a kernel loads only the magics.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "cellmage-server"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cellmage_server``: the ``%%llm`` and ``%llm_config`` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import CellmageApp

    return [{"module": "cellmage_server.app", "app": CellmageApp}]


__all__ = ["__version__"]
