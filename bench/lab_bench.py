"""Benchmark of the lab plugin in Chromium (Playwright + galata, as the UI tests run; the page's side is
bench/lab/render.bench.ts). Two workloads:

- plain text: a 4,000- and an 8,000-chunk answer (``abc ``, 1 ms apart) into a new notebook's cell
  (after an unmeasured 200-chunk one: a page's first answer also loads and compiles the renderer);
- Markdown: a Markdown-heavy answer (headings, lists, tables, fenced Python/JavaScript/Bash, inline
  code, math) of 30 and of 60 KB, in ~100-byte chunks 30 ms apart, streamed by the toolbar command
  into cell 69 of a 70-cell notebook (bench/lab/content.ts).

The Markdown workload runs twice in the same run, with JupyterLab's table of contents at its
defaults (outputs' headings included) both times: once with the answer's headings given to it by
this extension as the answer streams (src/toc.ts, the setting ``answerHeadings``, on by default)
and once with that setting off, as before src/toc.ts (JupyterLab finds the headings in the stored
answer's HTML at its end, and adds them all at once).

Prints one table (median and min-max over repeats; ``--quick``: one repeat), then the end of the
60 KB answer with the setting off and on side by side. How each figure is measured:
bench/lab/render.bench.ts, probe.ts (a delta's arrival and its pixels) and trace.ts (the tasks' CPU
time: their wall time, all the longtask API gives, includes waiting for a busy machine's cores).
Total blocking time is, over the long tasks, the sum of what each took past 50 ms. ``--profile``
adds one more 60 KB Markdown answer per setting under Chromium's sampling profiler (not in the
tables) and prints which functions the main thread spent its long tasks in.

    python bench/lab_bench.py [--quick] [--rtc] [--profile [FILE.cpuprofile]]

Needs what `bash .ci/run` installs (ui-tests' node_modules, Chromium). Runs its own JupyterLab on
port 8895 and fake provider on 8896 (CELLMAGE_BENCH_PORT, CELLMAGE_BENCH_FAKE_PORT), which must be
free; the browser tests' 8888 and 8891 may be in use meanwhile. Real-time collaboration is off, as in
the browser tests, unless ``--rtc``; the output says which was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relay_bench import print_table, summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL, LARGE = 30000, 60000  # the Markdown answers' sizes (render.bench.ts: SIZES), bytes
# How the table of contents gets an answer's headings (render.bench.ts: HEADINGS)
HEADINGS = {
    "jupyterlab": "JupyterLab's, from the HTML at the end (answerHeadings off)",
    "answer": "from the answer as it streams (answerHeadings on)",
}


def free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat instead of three")
    parser.add_argument(
        "--profile", nargs="?", const="", metavar="FILE.cpuprofile",
        help="profile one more 60 KB Markdown answer per setting (and save the one with answerHeadings on, for DevTools' Performance panel)",
    )
    parser.add_argument(
        "--rtc", action="store_true",
        help="real-time collaboration on (needs jupyter-collaboration; ui-tests/jupyter_server_test_config.py)",
    )
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    ports = {
        "CELLMAGE_BENCH_PORT": os.environ.get("CELLMAGE_BENCH_PORT", "8895"),
        "CELLMAGE_BENCH_FAKE_PORT": os.environ.get("CELLMAGE_BENCH_FAKE_PORT", "8896"),
    }
    busy = [p for p in ports.values() if not free(int(p))]
    if busy:
        sys.exit(f"port(s) {', '.join(busy)} in use: free them or set CELLMAGE_BENCH_PORT / CELLMAGE_BENCH_FAKE_PORT")
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            **ports,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "NODE_PATH": str(ROOT / "ui-tests" / "node_modules"),
            "CELLMAGE_BENCH_OUT": tmp,
            "CELLMAGE_BENCH_REPEATS": str(repeats),
            "CELLMAGE_BENCH_PROFILE": "1" if args.profile is not None else "",
            "CELLMAGE_UI_COLLAB": "1" if args.rtc else "",
            "CELLMAGE_BENCH_HEADINGS": ",".join(HEADINGS),
        }
        playwright = ROOT / "ui-tests" / "node_modules" / ".bin" / "playwright"
        subprocess.run(
            [str(playwright), "test", "--config", str(ROOT / "bench" / "lab" / "playwright.config.js")],
            cwd=ROOT / "ui-tests", env=env, check=True, timeout=1200,
        )
        plain = json.loads((Path(tmp) / "plain.json").read_text())
        markdown = {h: json.loads((Path(tmp) / f"markdown-{h}.json").read_text()) for h in HEADINGS}
        profiles = (
            {h: json.loads((Path(tmp) / f"markdown-profile-{h}.json").read_text()) for h in HEADINGS}
            if args.profile is not None
            else {}
        )
    if profiles and args.profile:
        Path(args.profile).write_text(json.dumps(profiles["answer"]["profile"]))
    report(plain, markdown["answer"])
    compare(markdown["jupyterlab"], markdown["answer"])
    for headings, profile in profiles.items():
        print(f"\n--- profile, headings: {HEADINGS[headings]}")
        print_profile(profile)


def report(plain: list[dict], markdown: list[dict]) -> None:
    """The table, from what render.bench.ts wrote."""

    def of(chunks: int, key: str) -> list[float]:
        return [r[key] for r in plain if r["chunks"] == chunks]

    def md(size: int, key: str) -> list[Any]:
        """One figure of each repeat's answer of about `size` bytes (cut between blocks: a little over)."""
        return [r[key] for r in markdown if abs(r["bytes"] - size) < 0.1 * size]

    def p95(size: int, key: str = "latencies") -> list[float]:
        return [percentile(latencies, 0.95) for latencies in md(size, key)]

    def median_of(key: str, of_run: Callable[[Any], float] = statistics.median) -> list[float]:
        """For 30 and for 60 KB: the median over repeats of `of_run` of each repeat's figure."""
        return [statistics.median(of_run(run) for run in md(size, key)) for size in (SMALL, LARGE)]

    def both(values: list[float], unit: str = "") -> str:
        return " and ".join(f"{v:,.0f}{unit}" for v in values)

    ratios = [b / a for a, b in zip(of(4000, "scriptingMs"), of(8000, "scriptingMs"))]
    longest = of(4000, "longestTaskMs") + of(8000, "longestTaskMs")
    md_ratios = [b / a for a, b in zip(md(SMALL, "scriptingMs"), md(LARGE, "scriptingMs"))]
    rows = [
        ("output renders per second of streaming, 4,000 chunks", summary(of(4000, "rendersPerSecond"), "/s"), "≤ 30 /s"),
        ("streaming time of the 4,000-chunk answer", summary(of(4000, "seconds"), "s"), "—"),
        ("longest main-thread task during it (long tasks are ≥ 50 ms; 0 = none)", summary(longest, "ms"), "≤ 50 ms"),
        ("main-thread scripting, 4,000 chunks", summary(of(4000, "scriptingMs"), "ms", 0), "—"),
        ("main-thread scripting, 8,000 chunks", summary(of(8000, "scriptingMs"), "ms", 0), "—"),
        ("scripting 8,000 ÷ 4,000 chunks", summary(ratios, "×", 2), "≤ 2.3×"),
        ("Markdown into cell 69 of 70: streaming time of the 60 KB answer", summary([t / 1000 for t in md(LARGE, "streamingMs")], "s"), "—"),
        ("longest main-thread task while it streams (wall time, longtask API), 30 KB", summary(md(SMALL, "longestStreamingMs"), "ms"), "≤ 50 ms"),
        ("same, 60 KB", summary(md(LARGE, "longestStreamingMs"), "ms"), "≤ 50 ms"),
        ("longest main-thread task at its end (from the done event on), 30 KB", summary(md(SMALL, "longestEndMs"), "ms"), "≤ 50 ms"),
        ("same, 60 KB", summary(md(LARGE, "longestEndMs"), "ms"), "≤ 50 ms"),
        ("the most CPU time of one task while it streams (trace), 30 KB", summary(md(SMALL, "longestStreamingCpuMs"), "ms"), "≤ 50 ms"),
        ("same, 60 KB", summary(md(LARGE, "longestStreamingCpuMs"), "ms"), "≤ 50 ms"),
        ("the most CPU time of one task at its end (trace), 30 KB", summary(md(SMALL, "longestEndCpuMs"), "ms"), "≤ 50 ms"),
        ("same, 60 KB", summary(md(LARGE, "longestEndCpuMs"), "ms"), "≤ 50 ms"),
        ("final render: done event's arrival → its pixels, 60 KB", summary(md(LARGE, "finalMs"), "ms", 0), "—"),
        ("main-thread scripting, Markdown 30 KB", summary(md(SMALL, "scriptingMs"), "ms", 0), "—"),
        ("main-thread scripting, Markdown 60 KB", summary(md(LARGE, "scriptingMs"), "ms", 0), "—"),
        ("scripting 60 ÷ 30 KB", summary(md_ratios, "×", 2), "≤ 2.3×"),
        ("a delta's arrival in the page → its pixels, p95, 30 KB", summary(p95(SMALL), "ms", 0), "≤ 100 ms"),
        ("same, 60 KB", summary(p95(LARGE), "ms", 0), "≤ 100 ms"),
    ]
    print_table(rows)
    print(f"\n({statistics.median(of(8000, 'seconds')):.1f} s for the 8,000-chunk answer)")
    print(
        f"(Markdown answers: {both(median_of('bytes', int))} bytes, {both(median_of('chunks', int))} chunks "
        f"{md(LARGE, 'intervalMs')[0]:.0f} ms apart, {both(median_of('latencies', len))} markers; "
        f"real-time collaboration {'on' if markdown[0]['rtc'] else 'off'})"
    )
    print(
        f"(a delta's arrival → its pixels: median {both(median_of('latencies'), ' ms')}; "
        f"p95 of its arrival → in the DOM {both([statistics.median(p95(s, 'toDom')) for s in (SMALL, LARGE)], ' ms')})"
    )


def compare(before: list[dict], after: list[dict]) -> None:
    """The 60 KB answer's long tasks, with the table of contents given its headings by
    JupyterLab (before) and by this extension (after): side by side, from the same run."""

    def large(runs: list[dict], key: str) -> list[float]:
        return [r[key] for r in runs if abs(r["bytes"] - LARGE) < 0.1 * LARGE]

    rows = [
        ("longest main-thread task at its end (wall, longtask API)", "longestEndMs", 1, "< 100 ms"),
        ("the most CPU time of one task at its end (trace)", "longestEndCpuMs", 1, "—"),
        ("total blocking time at its end", "blockedEndMs", 0, "—"),
        ("long tasks at its end", "longTasksEnd", 0, "—"),
        ("longest main-thread task while it streams (wall)", "longestStreamingMs", 1, "≤ 50 ms"),
        ("the most CPU time of one task while it streams (trace)", "longestStreamingCpuMs", 1, "—"),
        ("total blocking time while it streams", "blockedStreamingMs", 0, "—"),
        ("table of contents entries once it settled", "tocEntries", 0, "the same"),
    ]
    units = {"longTasksEnd": "", "tocEntries": ""}
    table = [
        (name, summary(large(before, key), units.get(key, "ms"), digits), summary(large(after, key), units.get(key, "ms"), digits), goal)
        for name, key, digits, goal in rows
    ]
    heads = ("60 KB Markdown answer into cell 69 of 70", "headings: JupyterLab's (off)", "from the answer (on)", "goal")
    widths = [max(len(heads[i]), *(len(r[i]) for r in table)) for i in range(3)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths)) + "  " + heads[3])
    print("  ".join("-" * w for w in widths) + "  ----")
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[3])
    print(f"(off: {HEADINGS['jupyterlab']}; on: {HEADINGS['answer']})")


def print_profile(run: dict) -> None:
    """Where the profiled answer's long tasks went: for each task, its heavy path (from the task's
    root, the callee that holds at least half of its samples, and so on: the last frames say what
    dominated it); then, per phase (while streaming, after the `done` event), the functions with
    the most inclusive and the most self time in those tasks."""
    profile = run["profile"]
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}

    def key(node_id: int) -> str:
        frame = nodes[node_id]["callFrame"]
        file = frame["url"].rsplit("/", 1)[-1].split("?", 1)[0]
        file = file if len(file) <= 32 else file[:28] + "…"
        return (frame["functionName"] or "(anonymous)") + (f" {file}:{frame['lineNumber'] + 1}" if file else "")

    chains: dict[int, list[int]] = {}

    def chain(node_id: int) -> list[int]:
        """The sampled node first, then its callers up to the root."""
        if node_id not in chains:
            ids, at = [], node_id
            while at in nodes:
                ids.append(at)
                at = parent.get(at, -1)
            chains[node_id] = ids
        return chains[node_id]

    # Sample times in ms; the page's clock starts where the busy-wait `cellmageBenchStart` ends.
    times, t = [], profile["startTime"]
    for delta in profile["timeDeltas"]:
        t += delta
        times.append(t / 1000)
    durations = [b - a for a, b in zip(times, times[1:])] + [0.0]
    marks = [at for at, s in zip(times, profile["samples"]) if any(key(i).startswith("cellmageBenchStart") for i in chain(s))]
    if not marks:
        print("\n(profile: the start mark was not sampled)")
        return
    origin = marks[-1]

    def samples_in(a: float, b: float) -> list[tuple[int, float]]:
        return [(s, ms) for s, at, ms in zip(profile["samples"], times, durations) if a <= at - origin <= b]

    skip = {"(root)", "(program)", "(idle)"}
    for phase, tasks in (
        ("while streaming", [(a, b) for a, b in run["longTasks"] if b <= run["doneAtMs"]]),
        ("at the end", [(a, b) for a, b in run["longTasks"] if b > run["doneAtMs"]]),
    ):
        print(f"\nprofiled 60 KB answer, long tasks {phase}: {len(tasks) or 'none'}")
        inclusive: dict[str, float] = defaultdict(float)
        own: dict[str, float] = defaultdict(float)
        for a, b in tasks:
            per_node: dict[int, float] = defaultdict(float)
            total = 0.0
            for sample, ms in samples_in(a, b):
                ids = chain(sample)
                total += ms
                own[key(ids[0])] += ms
                for k in {key(i) for i in ids}:
                    inclusive[k] += ms
                for i in ids:
                    per_node[i] += ms
            path, at = [], next((i for i in nodes if i not in parent), None)  # the root
            while at is not None:
                path.append(at)
                heavy = max(nodes[at].get("children", []), key=lambda c: per_node.get(c, 0.0), default=None)
                at = heavy if heavy is not None and per_node.get(heavy, 0.0) >= total / 2 else None
            share = per_node.get(path[-1], 0.0) / total if total else 0.0
            # "(program)": the renderer's native work (style, layout, parsing HTML) outside script
            frames = " → ".join(key(i) for i in path[-4:] if key(i) != "(root)")
            print(f"  {b - a:4.0f} ms at {a / 1000:5.1f} s: {frames or '(no dominant function)'} ({share:.0%})")
        if not tasks:
            continue
        print("  inclusive ms  function")
        for k, v in [kv for kv in sorted(inclusive.items(), key=lambda kv: -kv[1]) if kv[0] not in skip][:10]:
            print(f"  {v:12.1f}  {k}")
        print("  self ms       function")
        for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:8]:
            print(f"  {v:12.1f}  {k}")


if __name__ == "__main__":
    main()
