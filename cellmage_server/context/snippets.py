"""Finding a snippet file as CellMage finds it: a file of that name (``.md`` added when the name
has no extension) in ``llm_snippets/`` beside the notebook, then in the team's snippet folders
(``[context] snippets_dirs``), then as a path under the server's root. Never a file outside the
root or the team's folders (symbolic links resolved), nor a hidden one: the contents API's rules.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from ..errors import NotFound


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def candidates(name: str, notebook: str | None, root: Path, team: list[Path]) -> list[tuple[Path, Path]]:
    """(file, the folder it must stay inside), in the order they are tried. ``name`` has the shape
    contract.ContextRequest checks (no hidden or parent segments, no absolute path)."""
    file = name if posixpath.splitext(name)[1] else name + ".md"
    found: list[tuple[Path, Path]] = []
    if notebook is not None:
        folder = root / posixpath.dirname(notebook) / "llm_snippets"
        found.append((folder / file, folder))
    found += [(folder / file, folder) for folder in team]
    found.append((root / name, root))
    if file != name:
        found.append((root / file, root))
    return found


def read_snippet(name: str, notebook: str | None, root: Path, team: list[Path], most_chars: int) -> str:
    """The snippet's text (at most about ``most_chars`` characters are read), or NotFound saying
    where it was looked for."""
    tried = candidates(name, notebook, root, team)
    for path, folder in tried:
        if path.is_file() and _inside(path, folder):
            with path.open("rb") as f:
                data = f.read(most_chars * 4 + 4)  # UTF-8: at most 4 bytes a character
            return data.decode("utf-8", errors="replace")
    where = ", ".join(str(folder) for _, folder in tried[:-1]) or "the server's folders"
    raise NotFound(f"No snippet {name!r}: looked in {where} and under the server's root.")
