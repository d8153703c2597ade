"""Benchmark of the lab plugin in Chromium (Playwright + galata, as the UI tests run): streaming a
4,000- and an 8,000-chunk answer into a cell. Prints one table (median and min-max over repeats).

    python bench/lab_bench.py [--quick]

Needs what `bash .ci/run` installs (ui-tests' node_modules, Chromium); port 8888 must be free.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relay_bench import print_table, summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    repeats = 1 if parser.parse_args().quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lab-bench.json"
        env = {
            **os.environ,
            "NODE_PATH": str(ROOT / "ui-tests" / "node_modules"),
            "CELLMAGE_BENCH_OUT": str(out),
            "CELLMAGE_BENCH_REPEATS": str(repeats),
        }
        playwright = ROOT / "ui-tests" / "node_modules" / ".bin" / "playwright"
        subprocess.run(
            [str(playwright), "test", "--config", str(ROOT / "bench" / "lab" / "playwright.config.js")],
            cwd=ROOT / "ui-tests", env=env, check=True, timeout=1200,
        )
        results = json.loads(out.read_text())

    def of(chunks: int, key: str) -> list[float]:
        return [r[key] for r in results if r["chunks"] == chunks]

    ratios = [b / a for a, b in zip(of(4000, "scriptingMs"), of(8000, "scriptingMs"))]
    longest = of(4000, "longestTaskMs") + of(8000, "longestTaskMs")
    rows = [
        ("output renders per second of streaming, 4,000 chunks", summary(of(4000, "rendersPerSecond"), "/s"), "≤ 30 /s"),
        ("streaming time of the 4,000-chunk answer", summary(of(4000, "seconds"), "s"), "—"),
        ("longest main-thread task during it (long tasks are ≥ 50 ms; 0 = none)", summary(longest, "ms"), "≤ 50 ms"),
        ("main-thread scripting, 4,000 chunks", summary(of(4000, "scriptingMs"), "ms", 0), "—"),
        ("main-thread scripting, 8,000 chunks", summary(of(8000, "scriptingMs"), "ms", 0), "—"),
        ("scripting 8,000 ÷ 4,000 chunks", summary(ratios, "×", 2), "≤ 2.3×"),
    ]
    print_table(rows)
    print(f"\n({statistics.median(of(8000, 'seconds')):.1f} s for the 8,000-chunk answer)")


if __name__ == "__main__":
    main()
