"""Ids read from a notebook (or a kernel's request metadata) against the table the lab plugin is
tested with; and what the server does with one of another shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellmage_server.safety.shapes import CELL_ID, answer_id, cell_id, cell_key

TABLE = json.loads((Path(__file__).parent / "shape_cases.json").read_text())


def _value(case: dict) -> object:
    return case["value"] * case["repeat"] if "repeat" in case else case["value"]


def _label(case: dict) -> str:
    return json.dumps(case["value"])[:50] + (f" x{case['repeat']}" if "repeat" in case else "")


@pytest.mark.parametrize("case", TABLE["answer_id"], ids=[_label(c) for c in TABLE["answer_id"]])
def test_an_answer_id_is_taken_only_in_its_shape(case):
    assert answer_id(_value(case)) == (_value(case) if case["ok"] else None)


@pytest.mark.parametrize("case", TABLE["cell_id"], ids=[_label(c) for c in TABLE["cell_id"]])
def test_a_cell_id_is_taken_only_in_its_shape(case):
    assert cell_id(_value(case)) == (_value(case) if case["ok"] else None)


@pytest.mark.parametrize("case", TABLE["cell_id"], ids=[_label(c) for c in TABLE["cell_id"]])
def test_a_kernels_cell_key_is_the_id_or_a_digest_in_the_same_shape(case):
    key = cell_key(_value(case))
    if case["ok"]:
        assert key == _value(case)
    elif isinstance(_value(case), str) and _value(case):
        assert key is not None and CELL_ID.fullmatch(key) and key == cell_key(_value(case))
        assert key != _value(case)
    else:
        assert key is None
