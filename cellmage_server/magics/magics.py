"""``%%llm`` and ``%llm_config``: ask this Jupyter server's endpoint from a notebook cell."""

from __future__ import annotations

import re
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..answer.ending import Ending, context_summary, error_line
from ..flags import FlagError, parse_flags
from ..parameters import ParameterError
from .ambient import Ambient
from .client import CellmageClientError, Client, ServerNotFound, find_endpoint
from .context import ContextProblem, context_of
from .conversations import ConversationActions
from .display import AnswerDisplay
from .session import Session, current_cell_id, notebook_path, request_body
from .session import say as _say
from .settings import SettingsActions
from .snippet_actions import SnippetActions

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


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def _unquoted(args: Any) -> Any:
    """IPython's magic argument parser keeps the quotes of a quoted value (``--save "name"`` is
    ``'"name"'``); the tutorials quote names, so a value's one pair of quotes is taken off."""
    for name, value in vars(args).items():
        setattr(args, name, _unquote(value))
    return args


class PythonFailed(Exception):
    """A ``%%py`` cell's code failed (its traceback was shown); one line, so the cell fails too."""

    def _render_traceback_(self) -> list[str]:
        return [f"CellMage: {self}"]


class AnswerFailed(Exception):
    """A cell whose answer failed or was stopped ends in error (so "Run All" stops there), shown as
    one line rather than a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"CellMage: {self}"]


@magics_class
class LlmMagics(Magics, SettingsActions, ConversationActions, SnippetActions):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = Session()
        self.ambient = Ambient(shell)
        self._client: Client | None = None
        self._origins: tuple[str, ...] | None = None

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(find_endpoint())
        return self._client

    @cell_magic
    def llm(self, line: str, cell: str) -> None:
        """Ask the server's LLM with the cell as prompt. Flags: -m/--model, -t/--temperature,
        -p/--persona, --max-tokens, --stream/--no-stream, --no-history, --alone, --no-rollback,
        --param KEY VALUE, -o/--output NAME."""
        try:
            flags = parse_flags(line)
        except FlagError as e:
            _say(str(e))
            return
        prompt = interpolate(cell, self.shell.user_ns)
        if not prompt.strip():
            _say("the cell is empty: write the prompt under the %%llm line.")
            return
        conversation = notebook_path()
        try:
            body = request_body(prompt, flags, self.session, conversation, current_cell_id(self.shell))
        except ParameterError as e:
            _say(str(e))
            return
        try:
            context = context_of(flags, self.shell.user_ns, self.session.snippets, self.shell)
        except ContextProblem as e:
            _say(str(e))
            return
        if context is not None:
            body["context"] = context
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
                        display.start(data["id"], ending.model)
                    elif name == "usage":
                        ending.prompt_tokens = data.get("prompt_tokens")
                        ending.completion_tokens = data.get("completion_tokens")
                        ending.cost_usd = data.get("cost_usd")
                    elif name == "error":
                        ending.error_code, ending.error_message = data.get("code"), data.get("message")
                        ending.stopped = ending.stopped or data.get("code") == "cancelled"  # stopped elsewhere
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
                display.problem(str(e))  # said as the lab plugin says it (which hides the line below)
                raise AnswerFailed(str(e)) from None
            # Text came, then the connection broke: say so, as for a stream that ends without done.
            ending.error_code = "disconnected"
            ending.error_message = None if isinstance(e, ServerNotFound) else str(e)
        ending.elapsed_s = time.monotonic() - started
        display.finish(ending, self._image_origins())
        self.shell.user_ns["_llm"] = display.text
        if flags.output:
            self.shell.user_ns[flags.output] = display.text
        if self.session.auto_save and conversation is not None:
            self._auto_save()
        if ending.stopped:
            raise AnswerFailed("the answer was stopped; the text that arrived is above.")
        if ending.error_code is not None:
            raise AnswerFailed(error_line(ending, bool(display.text.strip())))

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
    @argument("-m", "--model", help="default model for this kernel's %%llm cells (an alias or a mapping)")
    @argument("-p", "--persona", help="default persona for this kernel's %%llm cells ('none' to clear)")
    @argument("--stream-by-default", metavar="True|False", help="stream answers unless a cell says --no-stream")
    @argument("--show-persona", action="store_true", help="show the current persona and its system prompt")
    @argument("--list-personas", action="store_true", help="list the personas (the server's, and beside the notebook)")
    @argument("--list-models", action="store_true", help="list the server's models")
    @argument("--status", action="store_true", help="this kernel's settings and how the server is configured")
    @argument("--set-override", nargs=2, metavar=("KEY", "VALUE"), help="a parameter for every cell (top_p 0.9)")
    @argument("--remove-override", metavar="KEY", help="forget one override")
    @argument("--clear-overrides", action="store_true", help="forget every override")
    @argument("--show-overrides", action="store_true", help="show the overrides")
    @argument("--list-mappings", action="store_true", help="show this kernel's model mappings")
    @argument("--add-mapping", nargs=2, metavar=("ALIAS", "MODEL"), help="a short name for one of the server's models")
    @argument("--remove-mapping", metavar="ALIAS", help="forget a model mapping")
    @argument("--show-history", action="store_true", help="one line per turn of this notebook's conversation")
    @argument("--show-turn", type=int, metavar="N", help="show turn N of the conversation in full")
    @argument("--clear-history", action="store_true", help="forget this notebook's conversation")
    @argument("--tokens", action="store_true", help="tokens and cost of this notebook's conversation so far")
    @argument("--token", action="store_true", help="the same as --tokens")
    @argument("--save", nargs="?", const=True, metavar="NAME", help="save this notebook's conversation as NAME_<time>")
    @argument("--load", metavar="NAME", help="make this notebook's conversation a saved one (enough of its name)")
    @argument("--list-sessions", action="store_true", help="list your saved conversations")
    @argument("--delete-session", metavar="NAME", help="forget one of your saved conversations")
    @argument("--auto-save", action="store_true", help="save the conversation after every answer")
    @argument("--no-auto-save", action="store_true", help="stop saving after every answer")
    @argument("--adapter", metavar="NAME", help="not here: the server chooses how to reach each provider")
    @argument("--base-dir", metavar="DIR", help="not here: the server keeps conversations; personas sit beside the notebook")
    @argument("--snippet", metavar="NAME", action="append", help="send this snippet file before every prompt")
    @argument("--sys-snippet", metavar="NAME", action="append", help="add this snippet file to the system prompt")
    @argument("--list-snippets", action="store_true", help="the snippets every answer of this kernel sends")
    @argument("--remove-snippet", metavar="NAME", action="append", help="stop sending this snippet")
    @argument("--clear-snippets", action="store_true", help="stop sending any snippet")
    @argument("--show-context", action="store_true", help="show the context the next answer would send")
    def llm_config(self, line: str) -> None:
        """Set this kernel's defaults for %%llm, or show what the server offers."""
        self._config_line(line)

    def _config_line(self, line: str) -> bool:
        """Run one %llm_config line; whether its flags could be read."""
        try:
            args = _unquoted(parse_argstring(self.llm_config, line))
        except UsageError as e:
            usage = " ".join(self.llm_config.parser.format_usage().replace("::", "").split())
            _say(f"{e}\nusage: {usage}")
            return False
        try:
            self._configure(args, line)
        except CellmageClientError as e:
            _say(str(e))
        return True

    # --- ambient mode (CellMage's %llm_config_persistent) --------------------------------------

    @line_magic
    def llm_config_persistent(self, line: str) -> None:
        """%llm_config with the same flags, then ambient mode: every following code cell is a
        prompt, as if it began with %%llm (%%py runs one as Python; %disable_llm_config_persistent
        ends it)."""
        if not self._config_line(line):
            return
        if self.ambient.enable():
            print("CellMage: ambient mode is on: every code cell you run is now a prompt, as if it began "
                  "with %%llm. Cells that begin with % or ! run as usual; %%py runs one as Python; "
                  "%disable_llm_config_persistent ends it.")
        else:
            print("CellMage: ambient mode is on already (%disable_llm_config_persistent ends it).")

    @line_magic
    def disable_llm_config_persistent(self, line: str) -> None:
        """End ambient mode: code cells run as Python again."""
        if self.ambient.disable():
            print("CellMage: ambient mode is off: code cells run as Python again.")
        else:
            print("CellMage: ambient mode was not on.")

    @cell_magic
    def py(self, line: str, cell: str) -> None:
        """Run the cell as Python, also in ambient mode."""
        with self.ambient.bypassed():
            result = self.shell.run_cell(cell, store_history=False)
        if not result.success:  # its traceback is shown above; the cell fails too, so Run All stops
            raise PythonFailed("the Python of this %%py cell failed; its error is above.")

    def _ambient_on(self) -> bool:
        return self.ambient.on

    def _configure(self, args: Any, line: str) -> None:
        """The actions of one %llm_config line: settings first, then the conversation, then what
        is shown (so `--add-mapping g4 gpt-4o --model g4` and `--clear-history --status` work)."""
        if args.adapter is not None or args.base_dir is not None:
            flag = "--adapter" if args.adapter is not None else "--base-dir"
            _say(f"{flag} is not offered here: {NOT_OFFERED[flag]}")
        if args.stream_by_default is not None:
            try:
                self.session.stream_by_default = _boolean(args.stream_by_default)
            except ValueError as e:
                _say(f"--stream-by-default: {e}")
                return
            print(f"CellMage: answers stream {'by default' if self.session.stream_by_default else 'only with --stream'}.")
        if args.add_mapping is not None:
            self._add_mapping(*args.add_mapping)
        if args.remove_mapping is not None:
            self._remove_mapping(args.remove_mapping)
        if args.model is not None:
            self._set_model(args.model)
        if args.persona is not None:
            self._set_persona(args.persona)
        if args.clear_overrides:
            self._clear_overrides()
        if args.remove_override is not None:
            self._remove_override(args.remove_override)
        if args.set_override is not None:
            self._set_override(*args.set_override)
        if args.auto_save or args.no_auto_save:
            self._set_auto_save(args.auto_save and not args.no_auto_save)
        for name in args.snippet or ():
            self._add_snippet(name, system=False)
        for name in args.sys_snippet or ():
            self._add_snippet(name, system=True)
        for name in args.remove_snippet or ():
            self._remove_snippet(name)
        if args.clear_snippets:
            self._clear_snippets()
        if args.clear_history:
            self._clear_history()
        if args.load is not None:
            self._load(args.load)
        if args.save is not None:
            self._save(None if args.save is True else args.save)
        if args.delete_session is not None:
            self._delete_session(args.delete_session)
        if args.show_persona:
            self._show_persona()
        if args.show_overrides:
            self._show_overrides()
        if args.list_mappings:
            self._list_mappings()
        if args.list_models:
            self._list_models()
        if args.list_personas:
            self._list_personas()
        if args.list_sessions:
            self._list_sessions()
        if args.list_snippets:
            self._list_snippets()
        if args.show_context:
            self._show_context()
        if args.show_history:
            self._show_history()
        if args.show_turn is not None:
            self._show_turn(args.show_turn)
        if args.tokens or args.token:
            self._tokens()
        if args.status:
            self._status()
        if not line.strip():
            self._summary()


# CellMage's flags that have no meaning here, and why (the README's "Coming from CellMage" says so too).
NOT_OFFERED = {
    "--adapter": "the Jupyter server chooses how each model is reached (its cellmage.toml: the lean "
    "OpenAI-compatible path or litellm); the notebook never holds a key or an API base.",
    "--base-dir": "the Jupyter server keeps every conversation (in its database) and finds personas in "
    "its folders and in llm_personas/ beside the notebook.",
}
