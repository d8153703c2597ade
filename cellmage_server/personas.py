"""Personas: Markdown files whose YAML front matter sets defaults and whose body is the system prompt.

::

    ---
    name: Data Analyst           # optional: a title; the persona is named by its file name
    description: One line shown in pickers.
    model: gpt-4o                # optional: a model alias of this server
    temperature: 0.2             # optional, 0-2
    max_tokens: 2048             # optional, >= 1
    top_p: 0.9                   # optional: any parameter of parameters.py (stop, seed, ...)
    ---
    You are a senior software engineer...

A persona is named by its file name without ``.md``, as CellMage finds it (``data_analyst.md`` is
``data_analyst``, whatever its ``name:`` says); the front matter's ``name`` also finds it, when no
file has that name. Folders are searched in the configured order, then the built-in personas
shipped in ``builtin_personas/``, then (for a request about a notebook) the ``llm_personas/``
folder beside the notebook: a notebook is untrusted input, so what it brings can add personas but
never change what a name the server already offers means. The first persona of a name wins.

Files are re-read only when they change. A malformed file is reported by its path and skipped;
the others still load. Bounds: a persona file of more than :data:`MAX_PERSONA_BYTES` is skipped,
a folder's first :data:`MAX_FOLDER_FILES` persona files are read, and the cache of parsed files
holds at most :data:`MAX_CACHED` of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .parameters import PARAMETERS, ParameterError, check

BUILTIN_DIR = Path(__file__).parent / "builtin_personas"
NOTEBOOK_FOLDER = "llm_personas"  # beside a notebook, as CellMage names its folder
MAX_PERSONA_BYTES = 64 * 1024
MAX_FOLDER_FILES = 500
MAX_CACHED = 1024
_FIELDS = {"name", "description", "model"} | set(PARAMETERS)

log = logging.getLogger(__name__)


class PersonaError(ValueError):
    """A persona file cannot be used; the message says why."""


@dataclass(frozen=True)
class Persona:
    name: str  # the file name without .md: what --persona takes
    description: str
    system_prompt: str
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    path: Path | None = None
    title: str | None = None  # the front matter's `name`, when it says another
    options: dict[str, Any] = field(default_factory=dict)  # top_p, stop, seed, ... (parameters.py)
    source: str = "server"  # "server" (the configured folders), "built-in" or "notebook"

    def public(self) -> dict[str, object]:
        """What ``GET personas`` lists (the prompt itself is in ``GET personas/{name}``)."""
        return {
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "temperature": self.temperature,
            "title": self.title,
            "source": self.source,
        }

    def detail(self) -> dict[str, object]:
        """What ``GET personas/{name}`` shows: the system prompt and every default it sets."""
        return self.public() | {
            "max_tokens": self.max_tokens, "parameters": dict(self.options), "system_prompt": self.system_prompt,
        }


def parse_persona(text: str, default_name: str, path: Path | None = None, source: str = "server") -> Persona:
    """Parse one persona file's text, or raise :class:`PersonaError`."""
    if not text.startswith("---"):
        raise PersonaError("it does not start with a '---' YAML front matter block")
    try:
        _, header, body = text.split("---", 2)
    except ValueError:
        raise PersonaError("its front matter is not closed by a second '---' line") from None
    try:
        meta = yaml.safe_load(header) or {}
    except yaml.YAMLError as e:
        raise PersonaError(f"its front matter is not valid YAML: {e}") from None
    if not isinstance(meta, dict):
        raise PersonaError("its front matter is not a mapping of fields")
    unknown = sorted(set(map(str, meta)) - _FIELDS)
    if unknown:
        raise PersonaError(f"unknown front matter field(s): {', '.join(unknown)}")
    body = body.strip()
    if not body:
        raise PersonaError("it has no system prompt after the front matter")

    title = meta.get("name", default_name)
    description = meta.get("description", "")
    model = meta.get("model")
    if not isinstance(title, str) or not title.strip():
        raise PersonaError("'name' must be a non-empty string")
    if not isinstance(description, str):
        raise PersonaError("'description' must be a string")
    if model is not None and not isinstance(model, str):
        raise PersonaError("'model' must be a string")
    values: dict[str, Any] = {}
    for name in PARAMETERS:
        if meta.get(name) is not None:
            try:
                values[name] = check(name, meta[name])
            except ParameterError as e:
                raise PersonaError(str(e).rstrip(".")) from None
    temperature = values.pop("temperature", None)
    return Persona(
        name=default_name,
        description=description.strip(),
        system_prompt=body,
        model=model,
        temperature=float(temperature) if temperature is not None else None,
        max_tokens=values.pop("max_tokens", None),
        path=path,
        title=title.strip() if title.strip() != default_name else None,
        options=values,
        source=source,
    )


@dataclass(frozen=True)
class NotebookFolder:
    """The ``llm_personas/`` folder beside a notebook, and the root no file of it may leave
    (through a symbolic link, say): both real paths, checked by the route that names it."""

    path: Path
    root: Path


class PersonaStore:
    """Finds personas in folders, caching each parsed file by its modification time and size."""

    def __init__(self, dirs: Iterable[Path], include_builtin: bool = True) -> None:
        self.dirs = [Path(d).expanduser() for d in dirs] + ([BUILTIN_DIR] if include_builtin else [])
        self._cache: dict[str, tuple[tuple[int, int], Persona | PersonaError]] = {}
        self._reported: set[tuple[str, int]] = set()

    def _source(self, directory: Path) -> str:
        return "built-in" if directory == BUILTIN_DIR else "server"

    def _load(self, path: str, stat: os.stat_result, source: str) -> Persona | PersonaError:
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        p = Path(path)
        result: Persona | PersonaError
        if stat.st_size > MAX_PERSONA_BYTES:
            result = PersonaError(f"it is larger than {MAX_PERSONA_BYTES} bytes")
        else:
            try:
                with open(p, "rb") as f:
                    raw = f.read(MAX_PERSONA_BYTES + 1)  # it may have grown since the stat
                if len(raw) > MAX_PERSONA_BYTES:
                    raise PersonaError(f"it is larger than {MAX_PERSONA_BYTES} bytes")
                result = parse_persona(raw.decode("utf-8"), p.stem, p, source)
            except OSError as e:
                result = PersonaError(f"it cannot be read: {e.strerror or e}")
            except UnicodeDecodeError:
                result = PersonaError("it is not UTF-8 text")
            except PersonaError as e:
                result = e
        self._cache.pop(path, None)
        self._cache[path] = (stamp, result)
        while len(self._cache) > MAX_CACHED:  # the oldest entry goes first
            self._cache.pop(next(iter(self._cache)))
        if isinstance(result, PersonaError) and (path, stamp[0]) not in self._reported:
            self._reported.add((path, stamp[0]))
            log.warning("cellmage: persona file %s is skipped: %s", path, result)
        return result

    def _folder(self, directory: Path, source: str, root: Path | None, found: list[Persona], errors: dict[str, str]) -> None:
        try:
            entries: list[os.DirEntry[str]] = []
            with os.scandir(directory) as scan:
                for entry in scan:
                    if entry.name.endswith(".md") and not entry.name.startswith("."):
                        if len(entries) == MAX_FOLDER_FILES:
                            errors[str(directory)] = f"only {MAX_FOLDER_FILES} persona files of this folder are read"
                            break
                        entries.append(entry)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            errors[str(directory)] = f"the folder cannot be read: {e.strerror or e}"
            return
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                if root is not None and not _inside(Path(os.path.realpath(entry.path)), root):
                    continue  # a link out of the server's root: not the notebook's to offer
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except OSError:
                continue
            result = self._load(entry.path, stat, source)
            if isinstance(result, PersonaError):
                errors[entry.path] = str(result)
            else:
                found.append(result)

    def _scan(self, notebook: NotebookFolder | None = None) -> tuple[list[Persona], dict[str, str]]:
        """Every usable persona in precedence order (a name's first one wins), and the errors."""
        found: list[Persona] = []
        errors: dict[str, str] = {}
        for directory in self.dirs:
            self._folder(directory, self._source(directory), None, found, errors)
        if notebook is not None:
            self._folder(notebook.path, "notebook", notebook.root, found, errors)
        return found, errors

    def all(self, notebook: NotebookFolder | None = None) -> list[Persona]:
        """Every usable persona, one per name, by name."""
        found: dict[str, Persona] = {}
        for persona in self._scan(notebook)[0]:
            found.setdefault(persona.name, persona)
        return sorted(found.values(), key=lambda p: p.name)

    def errors(self, notebook: NotebookFolder | None = None) -> dict[str, str]:
        """Malformed persona files: path -> what is wrong."""
        return self._scan(notebook)[1]

    def get(self, name: str, notebook: NotebookFolder | None = None) -> Persona | None:
        """The persona of file name ``name``; else one whose front matter names it; else the
        one file whose name is ``name`` but for case (as CellMage finds them)."""
        found = self._scan(notebook)[0]
        for persona in found:
            if persona.name == name:
                return persona
        for persona in found:
            if persona.title == name:
                return persona
        folded = {p.name for p in found if p.name.casefold() == name.casefold()}
        if len(folded) == 1:
            return next(p for p in found if p.name in folded)
        return None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
