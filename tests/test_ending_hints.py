"""Every error code the server can send has a hint, the same in both clients."""

from __future__ import annotations

import re
from pathlib import Path

from cellmage_server.answer.ending import HINTS
from cellmage_server.errors import CellmageError


def _codes() -> set[str]:
    codes = set()
    stack = [CellmageError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        codes.add(cls.code)
    return codes


def test_every_error_code_a_stream_can_end_with_has_a_hint():
    from cellmage_server.errors import _UPSTREAM_STATUS

    streamed = set(_UPSTREAM_STATUS) | {"internal", "shutdown", "slow_client"}
    assert streamed <= set(HINTS) | {"cancelled"}
    assert streamed <= _codes() | set(_UPSTREAM_STATUS)


def test_the_lab_plugin_has_the_same_hints():
    ts = (Path(__file__).parents[1] / "labextension" / "src" / "ending.ts").read_text()
    table = dict(re.findall(r"^\s+(\w+): ['\"](.+)['\"],?$", ts.split("export const HINTS")[1].split("};")[0], re.M))
    assert table == HINTS
