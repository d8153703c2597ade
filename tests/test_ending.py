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


SUMMARIES = json.loads((Path(__file__).parent / "ending_cases.json").read_text())["context_summaries"]


@pytest.mark.parametrize("case", SUMMARIES, ids=[c["expected"] or "none" for c in SUMMARIES])
def test_what_context_went_is_said_in_a_few_words(case):
    from cellmage_server.answer.ending import context_summary

    assert context_summary(case["report"]) == case["expected"]


def test_brackets_parentheses_and_backslashes_in_an_ending_never_open_math():
    from cellmage_server.answer.ending import escape

    text = escape(r"quota [exceeded] (see \(docs\)) \[x\] $5 and $6")
    assert "\\(" not in text.replace("\\\\\u200b", "") and "\\[" not in text and "[" not in text
