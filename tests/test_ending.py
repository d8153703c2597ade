"""How an answer ends, against the table the lab plugin is tested with (ending.ts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellmage_server.answer.ending import Ending, answer_bundle, final_markdown
from cellmage_server.safety.safe_markdown import code_regions

CASES = json.loads((Path(__file__).parent / "ending_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_both_clients_store_the_same_ending(case):
    assert final_markdown(case["text"], Ending(**case["ending"])) == case["expected"]
    assert answer_bundle(case["text"], Ending(**case["ending"]))["text/html"] == case["expected_html"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_markers_and_status_line_are_never_inside_code(case):
    stored = case["expected"]
    status = stored.rindex("\n\n") + 2 if "\n\n" in stored else 0
    assert all(not (a <= status < b) for a, b in code_regions(stored))
