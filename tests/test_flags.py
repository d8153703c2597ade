"""The flag grammar against the shared table of cases (the lab plugin reads the same table)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from cellmage_server.flags import USAGE, FlagError, split_cell

CASES = json.loads((Path(__file__).parent / "flag_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["cell"].split("\n")[0][:50] for c in CASES])
def test_the_grammar_reads_every_case_of_the_shared_table(case):
    if "error" in case:
        with pytest.raises(FlagError) as raised:
            split_cell(case["cell"])
        assert case["error"] in str(raised.value)
        assert str(raised.value).endswith(USAGE)  # a bad flag gets the usage line
        return
    flags, prompt = split_cell(case["cell"])
    # (What was not given is None, or an empty tuple for a repeatable flag; tuples read as lists.)
    set_ = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(flags).items() if v not in (None, ()) and k != "given"}
    assert set_ == case["flags"]
    assert prompt == case["prompt"]


def test_flags_do_not_import_anything_heavy():
    import subprocess
    import sys

    code = "import sys, cellmage_server.flags; print(sorted(m for m in ('httpx', 'pydantic', 'jupyter_server', 'tornado') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
