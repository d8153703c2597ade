"""``%llm_config``'s snippet actions (CellMage's ``--snippet``, ``--sys-snippet``,
``--list-snippets``, ``--remove-snippet``, ``--clear-snippets``) and ``--show-context``: the files
this kernel sends with every answer, found by the server (context/snippets.py), which says where
it looked when it finds none."""

from __future__ import annotations

from typing import Any

from ..answer.ending import context_summary
from .context import Snippets
from .session import current_cell_id, notebook_path
from .session import say as _say


class SnippetActions:
    """Mixed into LlmMagics: uses its ``session``, ``shell`` and ``client()``."""

    session: Any
    shell: Any
    client: Any

    def _preview(self, context: dict[str, Any]) -> dict[str, Any]:
        """What the server would send with this context (POST context), for this cell's notebook."""
        body: dict[str, Any] = {"context": context}
        if notebook_path() is not None:
            body["conversation"] = notebook_path()
            cell = current_cell_id(self.shell)
            if cell:
                body["cell_id"] = cell
        return self.client().post("context", body)

    def _add_snippet(self, name: str, *, system: bool) -> None:
        into = self.session.snippets.system if system else self.session.snippets.user
        key = "sys_snippets" if system else "snippets"
        found = self._preview({key: [name]})  # the server finds it now, or says where it looked
        if name not in into:
            into.append(name)
        chars = sum(item["chars"] for item in found["context"])
        where = "the system prompt" if system else "every prompt"
        print(f"CellMage: snippet {name} ({chars} characters) goes with {where} of this kernel.")

    def _clear_snippets(self) -> None:
        self.session.snippets = Snippets()
        print("CellMage: no snippets.")

    def _remove_snippet(self, name: str) -> None:
        snippets = self.session.snippets
        if name not in snippets.user and name not in snippets.system:
            _say(f"no snippet {name!r} is set; %llm_config --list-snippets lists them.")
            return
        snippets.user = [s for s in snippets.user if s != name]
        snippets.system = [s for s in snippets.system if s != name]
        print(f"CellMage: snippet {name} removed.")

    def _list_snippets(self) -> None:
        snippets = self.session.snippets
        if not snippets.user and not snippets.system:
            print("CellMage: no snippets (%llm_config --snippet NAME adds one).")
        for name in snippets.system:
            print(f"  {name}  (system prompt)")
        for name in snippets.user:
            print(f"  {name}")

    def _show_context(self) -> None:
        """What the next answer sends besides its own flags: this kernel's snippets."""
        snippets = self.session.snippets
        context = {k: v for k, v in (("snippets", snippets.user), ("sys_snippets", snippets.system)) if v}
        if not context:
            print("CellMage: the next answer sends no context but its cell's own flags "
                  "(--cells N, --error, --var NAME, --snippet NAME).")
            return
        preview = self._preview(context)
        print(f"CellMage: the next answer sends {context_summary(preview['context']) or 'no context'}.")
        for label, text in (("System prompt, after the persona's", preview["system"]), ("Before the prompt", preview["block"])):
            if text:
                print(f"--- {label} ---\n{text}")
