#!/usr/bin/env bash
# The release files, built as from a fresh clone, and checked:
#   1. `python -m build` on a copy of the tracked files (uncommitted edits included; nothing
#      ignored, so no node_modules and no earlier build of the lab extension): the sdist, then
#      the wheel built from that sdist, with the prebuilt lab extension the sdist carries;
#   2. `twine check --strict` of both;
#   3. the sdist rebuilds: its lab extension deleted, the wheel built again from its sources
#      (Node needed), and that wheel holds the same files, byte for byte, as the first.
# Writes build/wheel/dist/ (the sdist and the wheel) and build/wheel/tools/ (build and twine,
# pinned by tests/wheel/tools.txt; constraints.txt pins what the isolated builds install).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/build/wheel
rm -rf "$out/dist" "$out/rebuilt"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -x "$out/tools/bin/twine" ]; then
  python -m venv "$out/tools"
  "$out/tools/bin/pip" install --quiet --progress-bar off -c tests/wheel/tools.txt build twine
fi
export PIP_CONSTRAINT=$root/constraints.txt  # what the isolated build environments install

# Both builds run in $work/src: the bundler's module ids depend on where it builds.
echo "--- python -m build, from the tracked files"
mkdir "$work/src"
# A commit of the working tree (git stash create makes one without touching it), else HEAD.
tree=$(git stash create)
git archive --format=tar "${tree:-HEAD}" | tar -x -C "$work/src"
"$out/tools/bin/python" -m build --outdir "$out/dist" "$work/src"

echo "--- twine check"
"$out/tools/bin/twine" check --strict "$out"/dist/*

echo "--- the sdist rebuilds: its lab extension built again from its sources"
rm -rf "$work/src" && mkdir "$work/src"
tar -xzf "$out"/dist/*.tar.gz -C "$work/src" --strip-components=1
rm -rf "$work/src/cellmage_server/labextension"
"$out/tools/bin/python" -m build --wheel --outdir "$out/rebuilt" "$work/src"
"$out/tools/bin/python" - "$out"/dist/*.whl "$out"/rebuilt/*.whl <<'EOF'
import sys
import zipfile


def contents(path: str) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist() if not name.endswith("/RECORD")}


first, again = contents(sys.argv[1]), contents(sys.argv[2])
differ = sorted(name for name in first.keys() | again.keys() if first.get(name) != again.get(name))
if differ:
    sys.exit("the wheel rebuilt from the sdist differs: " + ", ".join(differ))
assert any("/labextensions/cellmage-server/static/remoteEntry." in name for name in first), "no lab extension"
print(f"the wheel rebuilt from the sdist holds the same {len(first)} files")
EOF
ls -l "$out"/dist
