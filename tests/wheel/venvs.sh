#!/usr/bin/env bash
# The wheel (from tests/wheel/build.sh) installed into fresh virtualenvs with no Node on PATH:
#   build/wheel/newest  the wheel with its `lab` extra, pinned by constraints.txt (JupyterLab 4.6)
#   build/wheel/oldest  the same with the oldest JupyterLab the plugin supports
# The oldest JupyterLab is the lower bound of the `lab` extra in pyproject.toml (the plugin is
# built against it: labextension/oldest/). Everything else is pinned by constraints.txt there too.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/build/wheel
wheel=$(ls "$out"/dist/cellmage_server-*.whl)
oldest=$(python - <<'EOF'
import re, tomllib
lab = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["lab"]
print(re.fullmatch(r"jupyterlab>=([0-9.]+),<5", lab[0]).group(1))
EOF
)
grep -v '^jupyterlab==' constraints.txt > "$out/constraints-oldest.txt"

install() {  # name, constraints file, extra requirement
  local venv=$out/$1
  rm -rf "$venv"
  python -m venv "$venv"
  # Only the venv on PATH: nothing here may need Node, and nothing may find it.
  if PATH=$venv/bin command -v node >/dev/null; then
    echo "node is on the venv's PATH" >&2
    exit 1
  fi
  PATH=$venv/bin "$venv/bin/pip" install --quiet --progress-bar off -c "$2" "$wheel[lab]" ${3:+"$3"}
  echo "$1: $("$venv/bin/python" -c 'import jupyterlab; print("JupyterLab", jupyterlab.__version__)')"
}

install newest "$root/constraints.txt"
install oldest "$out/constraints-oldest.txt" "jupyterlab==$oldest"
