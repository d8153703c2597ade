"""``%llm_config``'s actions on this kernel's defaults and what the server offers: model, persona,
the lists, the status. A mixin of the magics class (``self.session``, ``self.client()``)."""

from __future__ import annotations

from typing import Any

from .client import CellmageClientError
from .session import say as _say


class SettingsActions:
    session: Any
    client: Any

    def _set_model(self, model: str) -> None:
        names = [m["name"] for m in self.client().get("models")["models"]]
        if model not in names:
            _say(f"no model {model!r} on this server; it has: {', '.join(names) or 'none'}.")
            return
        self.session.model = model
        print(f"CellMage: model set to {model}.")

    def _set_persona(self, persona: str) -> None:
        if persona.lower() == "none":
            self.session.persona = None
            print("CellMage: no persona.")
            return
        names = [p["name"] for p in self.client().get("personas")]
        if persona not in names:
            _say(f"no persona {persona!r} on this server; it has: {', '.join(names) or 'none'}.")
            return
        self.session.persona = persona
        print(f"CellMage: persona set to {persona}.")

    def _show_persona(self) -> None:
        if self.session.persona is None:
            print("CellMage: no persona is set (%llm_config --persona NAME sets one).")
            return
        found = [p for p in self.client().get("personas") if p["name"] == self.session.persona]
        if not found:
            _say(f"the persona {self.session.persona!r} is no longer on the server.")
            return
        p = found[0]
        print(f"{p['name']}: {p['description']}")
        print(f"  model: {p['model'] or '(server default)'}  temperature: {p['temperature'] if p['temperature'] is not None else '(default)'}")

    def _list_models(self) -> None:
        answer = self.client().get("models")
        for m in answer["models"]:
            mark = "*" if m["name"] == (self.session.model or answer["default"]) else " "
            print(f"{mark} {m['name']}" + (f"  {m['description']}" if m.get("description") else ""))

    def _list_personas(self) -> None:
        for p in self.client().get("personas"):
            mark = "*" if p["name"] == self.session.persona else " "
            print(f"{mark} {p['name']}  {p['description']}")

    def _status(self) -> None:
        status = self.client().get("status")
        print(f"cellmage-server {status['version']} at {self.client().endpoint.url}")
        print(status["message"])
        if status.get("default_model"):
            print(f"server default model: {status['default_model']}")

    def _summary(self) -> None:
        try:
            where = self.client().endpoint.url
        except CellmageClientError as e:
            where = f"unknown ({e})"
        print(
            f"CellMage: server {where} · model {self.session.model or '(server default)'} · "
            f"persona {self.session.persona or 'none'} · "
            f"stream by default {'yes' if self.session.stream_by_default else 'no'}"
        )
