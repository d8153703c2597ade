"""``%%llm`` and ``%llm_config``: ask this Jupyter server's endpoint from a notebook cell."""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..answer.ending import ANSWER_MIME, Ending, context_summary, error_line
from ..flags import FlagError, parse_flags
from ..safety.shapes import cell_key
from .client import CellmageClientError, Client, ServerNotFound, find_endpoint
from .context import ContextProblem, Snippets, context_of
from .display import AnswerDisplay

_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate(prompt: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}`` by the value of a variable of that name; leave every other brace alone
    (JSON, dict literals, ``{}`` and ``{undefined}`` pass through unchanged)."""
    return _NAME.sub(lambda m: str(namespace[m.group(1)]) if m.group(1) in namespace else m.group(0), prompt)


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected True or False, not {text!r}")


@dataclass
class Session:
    """What ``%llm_config`` set for this kernel; a cell's own flags never change it."""

    model: str | None = None
    persona: str | None = None
    stream_by_default: bool = False
    snippets: Snippets = field(default_factory=Snippets)


def notebook_path() -> str | None:
    """The notebook this kernel runs for: Jupyter's session manager names it in JPY_SESSION_NAME."""
    return os.environ.get("JPY_SESSION_NAME") or None


def current_cell_id(shell: Any) -> str | None:
    """The key of the cell being run: its id, which JupyterLab and Notebook 7 put in the request's
    metadata (or a digest of an id of another shape; see shapes.cell_key)."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:  # an older or non-ipykernel kernel: no cell ids, so every run is a new turn
        return None
    return cell_key(((parent or {}).get("metadata") or {}).get("cellId"))


class AnswerFailed(Exception):
    """A cell whose answer failed or was stopped ends in error (so "Run All" stops there), shown as
    one line rather than a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"CellMage: {self}"]


def _say(message: str) -> None:
    print(f"CellMage: {message}", file=sys.stderr)


@magics_class
class LlmMagics(Magics):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = Session()
        self._client: Client | None = None
        self._origins: tuple[str, ...] | None = None

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(find_endpoint())
        return self._client

    @cell_magic
    def llm(self, line: str, cell: str) -> None:
        """Ask the server's LLM with the cell as prompt. Flags: -m/--model, -t/--temperature,
        -p/--persona, --max-tokens, --stream/--no-stream, --no-history, -o/--output NAME."""
        try:
            flags = parse_flags(line)
        except FlagError as e:
            _say(str(e))
            return
        prompt = interpolate(cell, self.shell.user_ns)
        if not prompt.strip():
            _say("the cell is empty: write the prompt under the %%llm line.")
            return
        body: dict[str, Any] = {"prompt": prompt, "stream": True}
        conversation = notebook_path()
        if conversation is not None:
            body["conversation"] = conversation
            body["history"] = flags.history is not False
            cell_id = current_cell_id(self.shell)
            if cell_id:
                body["cell_id"] = cell_id
        try:
            context = context_of(flags, self.shell.user_ns, self.session.snippets, self.shell)
        except ContextProblem as e:
            _say(str(e))
            return
        if context is not None:
            body["context"] = context
        for key, value in (
            ("model", flags.model or self.session.model),
            ("persona", flags.persona or self.session.persona),
            ("temperature", flags.temperature),
            ("max_tokens", flags.max_tokens),
        ):
            if value is not None:
                body[key] = value
        live = flags.stream if flags.stream is not None else self.session.stream_by_default

        display = AnswerDisplay(live=live)
        ending = Ending(model=body.get("model"))
        started = time.monotonic()
        done = False
        try:
            with self.client().answer(body) as answer:
                for event in answer.events(wait=display.wait):
                    if event is None:  # quiet on the network: show what is pending
                        display.flush()
                        continue
                    name, data = event
                    if name == "delta":
                        display.delta(data["text"])
                    elif name == "start":
                        ending.model = data.get("model")
                        ending.context = context_summary(data.get("context")) or None
                        display.start(data["id"])
                    elif name == "usage":
                        ending.prompt_tokens = data.get("prompt_tokens")
                        ending.completion_tokens = data.get("completion_tokens")
                        ending.cost_usd = data.get("cost_usd")
                    elif name == "error":
                        ending.error_code, ending.error_message = data.get("code"), data.get("message")
                    elif name == "done":
                        done = True
                if not done and ending.error_code is None:
                    ending.error_code = "disconnected"
        except KeyboardInterrupt:
            # The stop button: leaving the block above closed the stream, so the server has
            # cancelled the provider's request. Keep what came, marked as stopped.
            ending.stopped = True
        except CellmageClientError as e:
            if not display.parts:
                raise AnswerFailed(str(e)) from None
            # Text came, then the connection broke: say so, as for a stream that ends without done.
            ending.error_code = "disconnected"
            ending.error_message = None if isinstance(e, ServerNotFound) else str(e)
        ending.elapsed_s = time.monotonic() - started
        display.finish(ending, self._image_origins())
        self.shell.user_ns["_llm"] = display.text
        if flags.output:
            self.shell.user_ns[flags.output] = display.text
        if ending.stopped:
            raise AnswerFailed("the answer was stopped; the text that arrived is above.")
        if ending.error_code is not None:
            raise AnswerFailed(error_line(ending))

    def _image_origins(self) -> tuple[str, ...]:
        """The origins whose images answers may show (the server's ``image_origins``), asked once."""
        if self._origins is None:
            try:
                self._origins = tuple(self.client().get("status").get("image_origins") or ())
            except CellmageClientError:
                return ()  # not known now: images show as links; ask again next time
        return self._origins

    @line_magic
    @magic_arguments()
    @argument("-m", "--model", help="default model alias for this kernel's %%llm cells")
    @argument("-p", "--persona", help="default persona for this kernel's %%llm cells ('none' to clear)")
    @argument("--stream-by-default", metavar="True|False", help="stream answers unless a cell says --no-stream")
    @argument("--show-persona", action="store_true", help="show the current persona")
    @argument("--list-personas", action="store_true", help="list the server's personas")
    @argument("--list-models", action="store_true", help="list the server's models")
    @argument("--status", action="store_true", help="ask the server how it is configured")
    @argument("--show-history", action="store_true", help="one line per turn of this notebook's conversation")
    @argument("--show-turn", type=int, metavar="N", help="show turn N of the conversation in full")
    @argument("--clear-history", action="store_true", help="forget this notebook's conversation")
    @argument("--tokens", action="store_true", help="tokens and cost of this notebook's conversation so far")
    @argument("--snippet", metavar="NAME", action="append", help="send this snippet file before every prompt")
    @argument("--sys-snippet", metavar="NAME", action="append", help="add this snippet file to the system prompt")
    @argument("--list-snippets", action="store_true", help="the snippets every answer of this kernel sends")
    @argument("--remove-snippet", metavar="NAME", action="append", help="stop sending this snippet")
    @argument("--clear-snippets", action="store_true", help="stop sending any snippet")
    @argument("--show-context", action="store_true", help="show the context the next answer would send")
    def llm_config(self, line: str) -> None:
        """Set this kernel's defaults for %%llm, or show what the server offers."""
        try:
            args = parse_argstring(self.llm_config, line)
        except UsageError as e:
            usage = " ".join(self.llm_config.parser.format_usage().replace("::", "").split())
            _say(f"{e}\nusage: {usage}")
            return
        try:
            if args.stream_by_default is not None:
                try:
                    self.session.stream_by_default = _boolean(args.stream_by_default)
                except ValueError as e:
                    _say(f"--stream-by-default: {e}")
                    return
                print(f"CellMage: answers stream {'by default' if self.session.stream_by_default else 'only with --stream'}.")
            if args.model is not None:
                self._set_model(args.model)
            if args.persona is not None:
                self._set_persona(args.persona)
            if args.show_persona:
                self._show_persona()
            if args.list_models:
                self._list_models()
            if args.list_personas:
                self._list_personas()
            if args.status:
                self._status()
            if args.show_history:
                self._show_history()
            if args.show_turn is not None:
                self._show_turn(args.show_turn)
            if args.clear_history:
                self._clear_history()
            if args.tokens:
                self._tokens()
            for name in args.snippet or ():
                self._add_snippet(name, system=False)
            for name in args.sys_snippet or ():
                self._add_snippet(name, system=True)
            for name in args.remove_snippet or ():
                self._remove_snippet(name)
            if args.clear_snippets:
                self.session.snippets = Snippets()
                print("CellMage: no snippets.")
            if args.list_snippets:
                self._list_snippets()
            if args.show_context:
                self._show_context()
            if not line.strip():
                self._summary()
        except CellmageClientError as e:
            _say(str(e))

    # --- %llm_config actions ---------------------------------------------------------------

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

    # --- snippets and context ----------------------------------------------------------------

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
