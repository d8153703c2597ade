"""``%llm_config``'s actions on this notebook's conversation on the server: show it, one turn in
full, forget it, its tokens. A mixin of the magics class (``self.client()``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..answer.ending import ANSWER_MIME
from .session import notebook_path
from .session import say as _say


class ConversationActions:
    client: Any
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
