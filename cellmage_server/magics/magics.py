"""``%%llm`` and ``%llm_config``: ask this Jupyter server's endpoint from a notebook cell."""

from __future__ import annotations

import re
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..answer.ending import Ending, error_line
from ..flags import FlagError, parse_flags
from ..safety.shapes import cell_key
from .client import CellmageClientError, Client, ServerNotFound, find_endpoint
from .conversations import ConversationActions
from .display import AnswerDisplay
from .session import Session, notebook_path
from .session import say as _say
from .settings import SettingsActions

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


@magics_class
class LlmMagics(Magics, SettingsActions, ConversationActions):
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
            if not line.strip():
                self._summary()
        except CellmageClientError as e:
            _say(str(e))
