"""The Node.js the README asks for runs every npm package the project installs: each installed
package's `engines.node` admits the oldest release of each Node line the README names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where the project installs npm packages: the lab plugin's build, the browser tests, the hub's proxy.
PROJECTS = ["labextension", "ui-tests", "tests/hub"]


def claimed_minimums() -> list[str]:
    """'Node.js 20.19+ or 22.13+' in the README's Quickstart -> ['20.19.0', '22.13.0']."""
    readme = (ROOT / "README.md").read_text()
    claim = re.search(r"Node\.js ((?:\d+\.\d+\+(?: or )?)+)", readme)
    assert claim, "the README no longer says which Node.js it needs"
    return [f"{v}.0" for v in re.findall(r"(\d+\.\d+)\+", claim.group(1))]


def engines(node_modules: Path) -> dict[str, str]:
    found = {}
    for manifest in node_modules.glob("**/package.json"):
        try:
            data = json.loads(manifest.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        node = data.get("engines", {}).get("node") if isinstance(data.get("engines"), dict) else None
        if isinstance(data.get("name"), str) and isinstance(data.get("version"), str) and isinstance(node, str):
            found[f"{data['name']}@{data['version']}"] = node
    return found


def test_the_readme_names_node_lines():
    assert claimed_minimums() == ["20.19.0", "22.13.0"]


@pytest.mark.parametrize("project", PROJECTS)
def test_every_installed_package_runs_on_the_node_the_readme_asks_for(project: str):
    node_modules = ROOT / project / "node_modules"
    semver = ROOT / "labextension" / "node_modules" / "semver"
    if not node_modules.is_dir() or not semver.is_dir() or not shutil.which("node"):
        pytest.skip(f"{project}/node_modules is not installed (bash .ci/run installs it)")
    ranges = engines(node_modules)
    script = (
        f"const semver = require({json.dumps(str(semver))});"
        "const {versions, ranges} = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const refused = Object.entries(ranges).flatMap(([pkg, range]) =>"
        "  versions.filter(v => !semver.satisfies(v, range)).map(v => `${pkg} (engines.node ${range}) refuses ${v}`));"
        "console.log(JSON.stringify(refused));"
    )
    done = subprocess.run(
        ["node", "-e", script],
        input=json.dumps({"versions": claimed_minimums(), "ranges": ranges}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert ranges, f"no package in {node_modules} declares engines.node"
    assert json.loads(done.stdout) == []
