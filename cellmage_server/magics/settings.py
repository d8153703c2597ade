"""``%llm_config``'s actions on this kernel's defaults and what the server offers: model and model
mappings, persona, parameter overrides, the lists, the status. A mixin of the magics class
(``self.session``, ``self.client()``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..flags import param_value
from ..parameters import ParameterError, check
from .client import CellmageClientError, RequestRefused
from .session import MAPPING_NAME, notebook_path
from .session import say as _say


def _notebook_query() -> str:
    path = notebook_path()
    return f"?notebook={quote(path, safe='')}" if path else ""


def _value(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class SettingsActions:
    session: Any
    client: Any
    _ambient_on: Any

    # --- model and mappings ----------------------------------------------------------------

    def _server_models(self) -> list[str]:
        return [m["name"] for m in self.client().get("models")["models"]]

    def _set_model(self, model: str) -> None:
        alias = self.session.model_for(model)
        names = self._server_models()
        if alias not in names:
            _say(f"no model {model!r} on this server; it has: {', '.join(names) or 'none'} "
                 "(%llm_config --add-mapping ALIAS MODEL gives one a name of your own).")
            return
        self.session.model = alias
        print(f"CellMage: model set to {alias}" + (f" ({model})." if alias != model else "."))

    def _add_mapping(self, alias: str, model: str) -> None:
        if not MAPPING_NAME.fullmatch(alias):
            _say(f"{alias!r} cannot name a model: use letters, digits and . _ : / - (at most 64).")
            return
        names = self._server_models()
        if alias in names:
            _say(f"{alias} is already a model of this server; a mapping gives another name to one.")
            return
        if model not in names:
            _say(f"a mapping names one of the server's models, and {model!r} is not one; it has: "
                 f"{', '.join(names) or 'none'}. The server's cellmage.toml declares its models.")
            return
        self.session.mappings[alias] = model
        print(f"CellMage: {alias} → {model} (in this kernel).")

    def _remove_mapping(self, alias: str) -> None:
        if self.session.mappings.pop(alias, None) is None:
            _say(f"there is no mapping {alias!r}.")
            return
        print(f"CellMage: mapping {alias} removed.")

    def _list_mappings(self) -> None:
        if not self.session.mappings:
            print("CellMage: no model mappings (%llm_config --add-mapping ALIAS MODEL adds one).")
        for alias, model in sorted(self.session.mappings.items()):
            print(f"  {alias} → {model}")

    def _list_models(self) -> None:
        answer = self.client().get("models")
        for m in answer["models"]:
            mark = "*" if m["name"] == (self.session.model or answer["default"]) else " "
            names = [a for a, target in sorted(self.session.mappings.items()) if target == m["name"]]
            also = f"  (here also {', '.join(names)})" if names else ""
            print(f"{mark} {m['name']}" + (f"  {m['description']}" if m.get("description") else "") + also)

    # --- persona ---------------------------------------------------------------------------

    def _persona(self, name: str) -> dict[str, Any] | None:
        """The persona of that name (with its system prompt), or None after saying why not."""
        try:
            return self.client().get(f"personas/{quote(name, safe='')}{_notebook_query()}")
        except RequestRefused as e:
            if e.status != 404:
                raise
            hint = " (--persona none clears it)" if name.lower() == "default" else ""
            _say(f"{str(e).removesuffix(' (HTTP 404)')}{hint}")
            return None

    def _set_persona(self, persona: str) -> None:
        if persona.lower() == "none":
            self.session.persona = None
            print("CellMage: no persona.")
            return
        found = self._persona(persona)
        if found is None:
            return
        self.session.persona = found["name"]
        print(f"CellMage: persona set to {found['name']}.")

    def _show_persona(self) -> None:
        if self.session.persona is None:
            print("CellMage: no persona is set (%llm_config --persona NAME sets one).")
            return
        p = self._persona(self.session.persona)
        if p is None:
            return
        title = f" ({p['title']})" if p.get("title") else ""
        where = {"notebook": "beside the notebook", "built-in": "built in"}.get(p.get("source"), "the server's")
        print(f"{p['name']}{title}: {p['description']}  [{where}]")
        settings = [f"model: {p['model'] or '(server default)'}"]
        settings += [f"{k}: {_value(v)}" for k, v in (("temperature", p["temperature"]), ("max_tokens", p.get("max_tokens"))) if v is not None]
        settings += [f"{k}: {_value(v)}" for k, v in (p.get("parameters") or {}).items()]
        print("  " + " · ".join(settings))
        print("  system prompt:")
        for line in p["system_prompt"].splitlines():
            print(f"    {line}")

    def _list_personas(self) -> None:
        for p in self.client().get(f"personas{_notebook_query()}"):
            mark = "*" if p["name"] == self.session.persona else " "
            where = "  (beside the notebook)" if p.get("source") == "notebook" else ""
            print(f"{mark} {p['name']}  {p['description']}{where}")

    # --- overrides -------------------------------------------------------------------------

    def _set_override(self, key: str, raw: str) -> None:
        try:
            value = check(key, param_value(raw))
        except ParameterError as e:
            _say(str(e))
            return
        self.session.overrides[key] = value
        print(f"CellMage: {key} = {_value(value)} for every cell of this kernel (a cell's own flags win).")

    def _remove_override(self, key: str) -> None:
        if self.session.overrides.pop(key, None) is None:
            _say(f"there is no override {key!r}.")
            return
        print(f"CellMage: override {key} removed.")

    def _clear_overrides(self) -> None:
        self.session.overrides.clear()
        print("CellMage: no overrides.")

    def _show_overrides(self) -> None:
        if not self.session.overrides:
            print("CellMage: no overrides (%llm_config --set-override KEY VALUE sets one).")
        for key, value in self.session.overrides.items():
            print(f"  {key} = {_value(value)}")

    # --- what this kernel and the server say --------------------------------------------------

    def _status(self) -> None:
        s = self.session
        print(f"CellMage in this kernel: model {s.model or '(the server default)'} · persona {s.persona or 'none'} · "
              f"stream by default {'yes' if s.stream_by_default else 'no'} · ambient mode {'on' if self._ambient_on() else 'off'}")
        print("  overrides: " + (", ".join(f"{k}={_value(v)}" for k, v in s.overrides.items()) or "none"))
        print("  model mappings: " + (", ".join(f"{a} → {m}" for a, m in sorted(s.mappings.items())) or "none"))
        snippets = [*(f"{n} (system prompt)" for n in s.snippets.system), *s.snippets.user]
        print("  snippets: " + (", ".join(snippets) or "none"))
        path = notebook_path()
        if path is None:
            print("  conversation: none (this kernel is not attached to a notebook)")
        else:
            totals = self.client().get("conversations/" + quote(path, safe=""))["totals"]
            print(f"  conversation: {totals['turns']} turn(s), {totals['prompt_tokens']} prompt + "
                  f"{totals['completion_tokens']} completion tokens")
        saved = f" (into {s.saved_as})" if s.auto_save and s.saved_as else ""
        print(f"  auto-save: {'on' if s.auto_save else 'off'}{saved}")
        status = self.client().get("status")
        print(f"The server: cellmage-server {status['version']} at {self.client().endpoint.url}")
        print(f"  {status['message']}")
        if status.get("default_model"):
            print(f"  default model: {status['default_model']}")

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
