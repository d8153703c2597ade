"""``%llm_config``'s actions on this notebook's conversation on the server: show it, one turn in
full, forget it, its tokens; and your saved copies of it (CellMage's sessions): save, load, list,
delete, auto-save. A mixin of the magics class (``self.session``, ``self.client()``)."""

from __future__ import annotations

import re
import time
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from ..answer.ending import ANSWER_MIME
from ..safety.shapes import session_id, session_name
from .client import CellmageClientError, RequestRefused
from .session import notebook_path
from .session import say as _say

NAME_RULE = "a name is 1 to 48 letters, digits, '_' or '-', beginning with a letter or digit"


def _saved_name(notebook: str) -> str:
    """A saved conversation's name after its notebook (auto-save's first save)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", PurePath(notebook).stem).strip("_-")[:40]
    return name or "notebook"


class ConversationActions:
    client: Any
    session: Any
    _image_origins: Any

    def _conversation_path(self) -> str | None:
        path = notebook_path()
        if path is None:
            _say("this kernel is not attached to a notebook, so it has no conversation.")
        return None if path is None else "conversations/" + quote(path, safe="")

    def _show_history(self) -> None:
        """One line per turn, however long the answers (``--show-turn N`` shows one in full)."""
        path = self._conversation_path()
        if path is None:
            return
        turns = self.client().get(path)["turns"]
        if not turns:
            print("CellMage: this notebook's conversation is empty.")
        for i, turn in enumerate(turns, 1):
            tokens = f"{turn.get('prompt_tokens') or '?'} → {turn.get('completion_tokens') or '?'} tokens"
            mark = "" if turn["status"] == "ok" else f" [{turn['status']}]"
            first = (turn["prompt"].strip().splitlines() or [""])[0]
            first = first if len(first) <= 70 else first[:69] + "…"
            print(f"{i:>3}. {turn['model']} · {tokens}{mark} · cell {turn['cell_id'][:8]} · {first}")
        if turns:
            print("(%llm_config --show-turn N shows turn N in full.)")

    def _show_turn(self, number: int) -> None:
        path = self._conversation_path()
        if path is None:
            return
        turns = self.client().get(path)["turns"]
        if not 1 <= number <= len(turns):
            _say(f"there is no turn {number}; this conversation has {len(turns)}.")
            return
        from IPython.display import display

        from ..answer.ending import escape
        from ..safety.answer_html import answer_html
        from ..safety.safe_markdown import close_open_fence, safe_markdown

        turn = turns[number - 1]
        origins = self._image_origins()
        prompt = "\n".join("> " + escape(line) for line in turn["prompt"].strip().splitlines())
        title = f"#### {number}. {escape(turn['model'] or 'unknown model')}\n\n{prompt}\n\n"
        markdown = title + close_open_fence(safe_markdown(turn["answer"], origins))
        html = answer_html(title + close_open_fence(turn["answer"]), origins)
        display({"text/html": html, ANSWER_MIME: {"markdown": markdown}}, raw=True)

    def _clear_history(self) -> None:
        path = self._conversation_path()
        if path is not None:
            self.client().delete(path)
            print("CellMage: this notebook's conversation is cleared.")

    def _tokens(self) -> None:
        path = self._conversation_path()
        if path is None:
            return
        totals = self.client().get(path)["totals"]
        cost = f", ${totals['cost_usd']:.4f}" if totals["cost_usd"] is not None else ""
        print(
            f"CellMage: {totals['turns']} turn(s), {totals['prompt_tokens']} prompt + "
            f"{totals['completion_tokens']} completion tokens{cost}."
        )

    # --- saved conversations -------------------------------------------------------------------

    def _notebook(self, what: str) -> str | None:
        path = notebook_path()
        if path is None:
            _say(f"this kernel is not attached to a notebook, so it has no conversation to {what}.")
        return path

    def _save(self, name: str | None) -> None:
        if name is not None and session_name(name) is None:
            _say(f"cannot save as {name!r}: {NAME_RULE}.")
            return
        path = self._notebook("save")
        if path is None:
            return
        body: dict[str, Any] = {"conversation": path} | ({"name": name} if name else {})
        saved = self.client().send("POST", "sessions", body)
        self.session.saved_as = saved["id"]
        print(f"CellMage: saved {saved['turns']} turn(s) as {saved['id']} (%llm_config --load {saved['id']} brings them back).")

    def _load(self, wanted: str) -> None:
        if session_id(wanted) is None:
            _say(f"{wanted!r} is not the name of a saved conversation: {NAME_RULE} (and the time).")
            return
        path = self._notebook("load into")
        if path is None:
            return
        try:
            loaded = self.client().send("POST", f"sessions/{wanted}/load", {"conversation": path})
        except RequestRefused as e:
            if e.status not in (404, 409):
                raise
            _say(str(e).rsplit(" (HTTP", 1)[0])
            return
        self.session.saved_as = loaded["id"]
        print(f"CellMage: loaded {loaded['id']}: this notebook's conversation is its {loaded['turns']} turn(s).")

    def _list_sessions(self) -> None:
        answer = self.client().get("sessions")
        saved = answer["sessions"]
        if not saved:
            print("CellMage: you have no saved conversations (%llm_config --save NAME saves this one).")
        for s in saved:
            mark = "*" if s["id"] == self.session.saved_as else " "
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["saved"]))
            print(f"{mark} {s['id']} · {s['turns']} turn(s) · from {s['source']} · {when}")
        if saved:
            print(f"({len(saved)} of at most {answer['most']}; %llm_config --load NAME loads one.)")

    def _delete_session(self, wanted: str) -> None:
        if session_id(wanted) is None:
            _say(f"{wanted!r} is not the name of a saved conversation.")
            return
        try:
            self.client().delete(f"sessions/{wanted}")
        except RequestRefused as e:
            if e.status != 404:
                raise
            _say(str(e).rsplit(" (HTTP", 1)[0])
            return
        if self.session.saved_as == wanted:
            self.session.saved_as = None
        print(f"CellMage: {wanted} deleted.")

    def _set_auto_save(self, on: bool) -> None:
        self.session.auto_save = on
        if not on:
            print("CellMage: auto-save is off.")
            return
        target = self.session.saved_as or "a new saved conversation named after the notebook"
        print(f"CellMage: auto-save is on: after every answer this notebook's conversation is saved into {target}.")

    def _auto_save(self) -> None:
        """Save the conversation into the saved copy this kernel last saved or loaded (a new one
        named after the notebook the first time). A failure is said, and the answer stands."""
        path = notebook_path()
        if path is None:
            return
        try:
            if self.session.saved_as is not None:
                try:
                    self.client().send("PUT", f"sessions/{self.session.saved_as}", {"conversation": path})
                    return
                except RequestRefused as e:
                    if e.status != 404:  # deleted meanwhile: start a new one
                        raise
            saved = self.client().send("POST", "sessions", {"conversation": path, "name": _saved_name(path)})
            self.session.saved_as = saved["id"]
        except CellmageClientError as e:
            _say(f"auto-save failed: {e}")
