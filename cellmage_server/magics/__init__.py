"""The kernel side: ``%%llm`` and ``%llm_config``, calling this Jupyter server's endpoint.

Loaded by ``%load_ext cellmage_server``. Imports only IPython and the standard library here;
httpx and httpx-sse on the first answer.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    from .magics import LlmMagics

    ipython.register_magics(LlmMagics)
