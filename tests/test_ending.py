"""How an answer ends, against the table the lab plugin is tested with (ending.ts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellmage_server.answer.ending import ANSWER_MIME, Ending, answer_bundle, final_markdown, problem_bundle
from cellmage_server.safety.safe_markdown import code_regions

TABLE = json.loads((Path(__file__).parent / "ending_cases.json").read_text())
CASES = TABLE["cases"]
PROBLEMS = TABLE["problems"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_both_clients_store_the_same_ending(case):
    assert final_markdown(case["text"], Ending(**case["ending"])) == case["expected"]
    assert answer_bundle(case["text"], Ending(**case["ending"]))["text/html"] == case["expected_html"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_markers_and_status_line_are_never_inside_code(case):
    stored = case["expected"]
    status = stored.rindex("\n\n") + 2 if "\n\n" in stored else 0
    assert all(not (a <= status < b) for a, b in code_regions(stored))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_an_error_is_said_once_and_marks_the_answer_failed(case):
    ending = Ending(**case["ending"])
    is_error = ending.error_code not in (None, "cancelled")
    assert answer_bundle(case["text"], ending)[ANSWER_MIME].get("failed", False) is is_error
    # A stopped answer says so too: the lab plugin then hides the kernel's line after it
    assert answer_bundle(case["text"], ending)[ANSWER_MIME].get("stopped", False) is ending.stopped
    last = case["expected"].split("\n\n")[-1]
    if is_error:
        # The answer ends with one paragraph: what happened in bold, then what to do; no status
        # line, no error code, no HTTP status
        assert last.startswith("**") and last.count("**") == 2, last
        assert "Error \\(" not in case["expected"] and "(HTTP" not in case["expected_html"]
    else:
        assert last.startswith("*") and not last.startswith("**")  # the status line


@pytest.mark.parametrize("case", PROBLEMS, ids=[c["name"] for c in PROBLEMS])
def test_both_clients_show_the_same_problem(case):
    bundle = problem_bundle(case["message"])
    assert bundle[ANSWER_MIME] == {"markdown": case["expected"], "problem": True}
    assert bundle["text/html"] == case["expected_html"]
    assert bundle["text/plain"] == case["message"]


SUMMARIES = json.loads((Path(__file__).parent / "ending_cases.json").read_text())["context_summaries"]


@pytest.mark.parametrize("case", SUMMARIES, ids=[c["expected"] or "none" for c in SUMMARIES])
def test_what_context_went_is_said_in_a_few_words(case):
    from cellmage_server.answer.ending import context_summary

    assert context_summary(case["report"]) == case["expected"]


def test_brackets_parentheses_and_backslashes_in_an_ending_never_open_math():
    from cellmage_server.answer.ending import escape

    text = escape(r"quota [exceeded] (see \(docs\)) \[x\] $5 and $6")
    assert "\\(" not in text.replace("\\\\\u200b", "") and "\\[" not in text and "[" not in text
