"""What ``%llm_config`` set for this kernel, and what the magics share: where the notebook is,
and how they speak."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass
class Session:
    """What ``%llm_config`` set for this kernel; a cell's own flags never change it."""

    model: str | None = None
    persona: str | None = None
    stream_by_default: bool = False


def notebook_path() -> str | None:
    """The notebook this kernel runs for: Jupyter's session manager names it in JPY_SESSION_NAME."""
    return os.environ.get("JPY_SESSION_NAME") or None


def say(message: str) -> None:
    print(f"CellMage: {message}", file=sys.stderr)
