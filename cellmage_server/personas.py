"""Personas: Markdown files whose YAML front matter sets defaults and whose body is the system prompt.

::

    ---
    name: code_expert            # optional; default: the file name without .md
    description: One line shown in pickers.
    model: gpt-4o                # optional: a model alias of this server
    temperature: 0.2             # optional, 0-2
    max_tokens: 2048             # optional, >= 1
    ---
    You are a senior software engineer...

Folders are searched in the configured order, then the built-in personas shipped in
``builtin_personas/``; the first persona of a name wins. Files are re-read only when they change.
A malformed file is reported by its path and skipped; the others still load.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

BUILTIN_DIR = Path(__file__).parent / "builtin_personas"
_FIELDS = {"name", "description", "model", "temperature", "max_tokens"}

log = logging.getLogger(__name__)


class PersonaError(ValueError):
    """A persona file cannot be used; the message says why."""


@dataclass(frozen=True)
class Persona:
    name: str
    description: str
    system_prompt: str
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    path: Path | None = None

    def public(self) -> dict[str, object]:
        """What ``GET personas`` shows (the prompt itself stays on the server)."""
        return {
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "temperature": self.temperature,
        }


def parse_persona(text: str, default_name: str, path: Path | None = None) -> Persona:
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

    name = meta.get("name", default_name)
    description = meta.get("description", "")
    model = meta.get("model")
    temperature = meta.get("temperature")
    max_tokens = meta.get("max_tokens")
    if not isinstance(name, str) or not name.strip():
        raise PersonaError("'name' must be a non-empty string")
    if not isinstance(description, str):
        raise PersonaError("'description' must be a string")
    if model is not None and not isinstance(model, str):
        raise PersonaError("'model' must be a string")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
    ):
        raise PersonaError("'temperature' must be a number from 0 to 2")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise PersonaError("'max_tokens' must be a whole number >= 1")
    return Persona(
        name=name.strip(),
        description=description.strip(),
        system_prompt=body,
        model=model,
        temperature=float(temperature) if temperature is not None else None,
        max_tokens=max_tokens,
        path=path,
    )


class PersonaStore:
    """Finds personas in folders, caching each parsed file by its modification time and size."""

    def __init__(self, dirs: Iterable[Path], include_builtin: bool = True) -> None:
        self.dirs = [Path(d).expanduser() for d in dirs] + ([BUILTIN_DIR] if include_builtin else [])
        self._cache: dict[str, tuple[tuple[int, int], Persona | PersonaError]] = {}
        self._reported: set[tuple[str, int]] = set()

    def _load(self, path: str, stat: os.stat_result) -> Persona | PersonaError:
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        p = Path(path)
        try:
            result: Persona | PersonaError = parse_persona(p.read_text(encoding="utf-8"), p.stem, p)
        except OSError as e:
            result = PersonaError(f"it cannot be read: {e.strerror or e}")
        except UnicodeDecodeError:
            result = PersonaError("it is not UTF-8 text")
        except PersonaError as e:
            result = e
        self._cache[path] = (stamp, result)
        if isinstance(result, PersonaError) and (path, stamp[0]) not in self._reported:
            self._reported.add((path, stamp[0]))
            log.warning("cellmage: persona file %s is skipped: %s", path, result)
        return result

    def _scan(self) -> tuple[dict[str, Persona], dict[str, str]]:
        found: dict[str, Persona] = {}
        errors: dict[str, str] = {}
        for directory in self.dirs:
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                errors[str(directory)] = f"the folder cannot be read: {e.strerror or e}"
                continue
            for entry in entries:
                if not entry.name.endswith(".md") or not entry.is_file():
                    continue
                result = self._load(entry.path, entry.stat())
                if isinstance(result, PersonaError):
                    errors[entry.path] = str(result)
                elif result.name not in found:
                    found[result.name] = result
        return found, errors

    def all(self) -> list[Persona]:
        """Every usable persona, by name."""
        found, _ = self._scan()
        return sorted(found.values(), key=lambda p: p.name)

    def errors(self) -> dict[str, str]:
        """Malformed persona files: path -> what is wrong."""
        return self._scan()[1]

    def get(self, name: str) -> Persona | None:
        return self._scan()[0].get(name)
