"""A cell's outputs as the model reads them, against the table the lab plugin is tested with
(labextension/test/context.test.ts): the magic's --cells and the toolbar's send the same text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellmage_server.context.notebook import outputs_text

CASES = json.loads((Path(__file__).parent / "context_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_both_clients_read_outputs_as_the_same_text(case):
    assert outputs_text(case["outputs"]) == case["expected"]
