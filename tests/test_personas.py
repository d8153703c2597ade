"""Persona files: parsing, search order, built-ins, and malformed files reported by name."""

from __future__ import annotations

import logging

import pytest

from cellmage_server.personas import PersonaError, PersonaStore, parse_persona

GOOD = """---
name: reviewer
description: Reviews code.
model: fast
temperature: 0.1
max_tokens: 500
---
You review code carefully.
"""


def test_a_persona_file_is_front_matter_and_a_system_prompt():
    persona = parse_persona(GOOD, "file-stem")

    assert persona.name == "file-stem"  # named by its file, as CellMage finds personas
    assert persona.title == "reviewer"  # the front matter's name is its title
    assert persona.description == "Reviews code."
    assert persona.model == "fast" and persona.temperature == 0.1 and persona.max_tokens == 500
    assert persona.system_prompt == "You review code carefully."


def test_the_name_defaults_to_the_file_name():
    assert parse_persona("---\ndescription: d\n---\nBe brief.\n", "brief").name == "brief"


@pytest.mark.parametrize(
    "text,why",
    [
        ("no front matter", "front matter"),
        ("---\nname: x\nBody without closing", "not closed"),
        ("---\nname: [unclosed\n---\nbody", "not valid YAML"),
        ("---\n- a list\n---\nbody", "mapping"),
        ("---\nnmae: typo\n---\nbody", "unknown front matter field(s): nmae"),
        ("---\nname: x\n---\n   \n", "no system prompt"),
        ("---\ntemperature: 3\n---\nbody", "'temperature' must be a number from 0 to 2"),
        ("---\nmax_tokens: -1\n---\nbody", "'max_tokens'"),
        ("---\nmodel: 3\n---\nbody", "'model' must be a string"),
    ],
)
def test_malformed_persona_files_say_what_is_wrong(text, why):
    with pytest.raises(PersonaError, match=why.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_persona(text, "x")


def test_folders_are_searched_in_order_then_the_builtins(tmp_path):
    team, user = tmp_path / "team", tmp_path / "user"
    team.mkdir()
    user.mkdir()
    (team / "code_expert.md").write_text("---\ndescription: team's own\n---\nTeam prompt.\n")
    (user / "code_expert.md").write_text("---\ndescription: user's\n---\nUser prompt.\n")
    (user / "mine.md").write_text("---\ndescription: only mine\n---\nMine.\n")

    store = PersonaStore([team, user])

    assert store.get("code_expert").description == "team's own"  # first folder wins
    assert store.get("mine").system_prompt == "Mine."
    assert store.get("teacher") is not None  # built-in still there
    assert [p.name for p in store.all()] == sorted(p.name for p in store.all())


def test_a_malformed_file_is_reported_by_name_and_the_others_still_load(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    (tmp_path / "broken.md").write_text("---\ntemperature: hot\n---\nx\n")
    (tmp_path / "fine.md").write_text("---\ndescription: ok\n---\nFine.\n")

    store = PersonaStore([tmp_path])

    assert store.get("fine") is not None
    assert store.get("broken") is None
    errors = store.errors()
    assert list(errors) == [str(tmp_path / "broken.md")]
    assert "temperature" in errors[str(tmp_path / "broken.md")]
    assert str(tmp_path / "broken.md") in caplog.text


def test_an_edited_file_is_read_again(tmp_path):
    path = tmp_path / "p.md"
    path.write_text("---\ndescription: one\n---\nOne.\n")
    store = PersonaStore([tmp_path], include_builtin=False)
    assert store.get("p").description == "one"

    path.write_text("---\ndescription: two, longer\n---\nTwo.\n")

    assert store.get("p").description == "two, longer"


def test_the_builtin_code_expert_persona_exists():
    persona = PersonaStore([]).get("code_expert")
    assert persona is not None and persona.description and persona.system_prompt
