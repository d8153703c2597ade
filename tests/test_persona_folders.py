"""With no `personas_dirs` configured, persona files come from `cellmage/personas/` under each
Jupyter config directory, the team's (the system's) before the user's: a team persona cannot be
replaced by a user's file of the same name, and the user's own personas are there too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .fake_upstream import FakeUpstream


def _persona(folder: Path, name: str, description: str, prompt: str) -> None:
    (folder / "cellmage" / "personas").mkdir(parents=True, exist_ok=True)
    (folder / "cellmage" / "personas" / f"{name}.md").write_text(f"---\ndescription: {description}\n---\n{prompt}\n")


@pytest.fixture
def jp_server_config(cellmage_config: Any, jp_system_config_path: Path, jp_config_dir: Path) -> dict[str, Any]:
    # pytest-jupyter's stand-ins for /etc/jupyter (the team's) and ~/.jupyter (the user's)
    _persona(jp_system_config_path, "house_style", "the team's", "Write as the team writes.")
    _persona(jp_config_dir, "house_style", "the user's", "Write as I like.")
    _persona(jp_config_dir, "mine", "only mine", "My own prompt.")
    return {"ServerApp": {"jpserver_extensions": {"cellmage_server": True}, "allow_unauthenticated_access": False}}


async def test_a_team_persona_comes_before_the_users_file_of_the_same_name(api, fake_upstream: FakeUpstream):
    personas = {p["name"]: p for p in (await api.get("personas")).json()}

    assert personas["house_style"]["description"] == "the team's"
    assert personas["mine"]["description"] == "only mine"  # the user's own folder is read too
    assert "code_expert" in personas  # and the built-ins follow

    result = await api.stream({"prompt": "x", "persona": "house_style"})

    assert result.names()[-1] == "done" and "error" not in result.names()
    system = [m["content"] for m in fake_upstream.received[-1].body["messages"] if m["role"] == "system"]
    assert system == ["Write as the team writes."]
