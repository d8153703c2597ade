"""The wire contract v1 on the server side: the request a client sends, the events a provider
yields, and the SSE frames the server writes.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sse_starlette.event import ServerSentEvent

from .errors import BadRequest
from .parameters import ParameterError
from .parameters import check as _check_parameter
from .safety.shapes import cell_id as _cell_id
from .safety.shapes import session_name as _session_name

# Fields a client might send to steer the provider call itself. They are never accepted: the
# server's configuration alone decides where a request goes and with which credentials.
PASS_THROUGH_FIELDS = frozenset(
    {
        "api_base", "base_url", "api_key", "api_version", "custom_llm_provider", "extra_headers",
        "headers", "extra_body", "callbacks", "success_callback", "failure_callback",
        "organization", "deployment_id", "aws_access_key_id", "aws_secret_access_key",
        "vertex_credentials", "metadata", "mock_response", "tools", "functions",
    }
)


_TEXT = 200_000  # the longest text one context item may carry on the wire (the server cuts it to its caps)


class PageCell(BaseModel):
    """A cell above the prompt as the asking page sees it (unsaved edits and all)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: str = Field(max_length=_TEXT)
    outputs: str = Field("", max_length=_TEXT)  # its outputs as text (images as "[image]")
    label: str | None = Field(None, max_length=40)  # how the page shows it: "In [12]"


class ErrorText(BaseModel):
    """An error with its traceback, as plain text (the kernel's last one, or an error output)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(min_length=1, max_length=_TEXT)


class VariableText(BaseModel):
    """A kernel variable, described by the kernel (never dumped: see magics/describe.py)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    text: str = Field(max_length=_TEXT)


_SNIPPET = r"^(?!.*(^|/)\.)[^\x00\\]{1,200}$"  # no hidden or parent segments, no backslash or NUL


class ContextRequest(BaseModel):
    """What of the notebook the answer sees (README "Context"). ``cells``: the server reads that
    many code cells above the asking cell from the notebook (a kernel's ask); ``page_cells``: the
    page sends the ones it shows (the toolbar's ask)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cells: int | None = Field(None, ge=1, le=100)
    page_cells: list[PageCell] | None = Field(None, max_length=100)
    error: ErrorText | None = None
    vars: list[VariableText] = Field(default_factory=list, max_length=20)
    snippets: list[str] = Field(default_factory=list, max_length=20)
    sys_snippets: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("snippets", "sys_snippets")
    @classmethod
    def _snippet_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(_SNIPPET, name) or name.startswith("/") or ".." in name.split("/"):
                raise ValueError(f"{name[:80]!r} is not a snippet name (a file name, or a path under the server's root)")
        return names

    def kinds(self) -> list[str]:
        """The kinds of context asked for, as ``[context] allowed`` names them."""
        asked = []
        if self.cells is not None or self.page_cells is not None:
            asked.append("cells")
        if self.error is not None:
            asked.append("error")
        if self.vars:
            asked.append("var")
        if self.snippets or self.sys_snippets:
            asked.append("snippet")
        return asked


class ChatRequest(BaseModel):
    """The body of ``POST chat``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(min_length=1)
    model: str | None = Field(None, min_length=1)
    persona: str | None = Field(None, min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    stream: bool = True
    conversation: str | None = Field(None, min_length=1, max_length=4096)
    cell_id: str | None = Field(None, min_length=1, max_length=64)
    history: bool = True
    # The exchange is kept as the cell's turn (false: CellMage's --no-history; a re-run still
    # takes the cell's earlier turn away, unless rollback is false).
    remember: bool = True
    # A re-run replaces the cell's earlier turn (false: that turn stays, is sent, and this one is
    # added after it).
    rollback: bool = True
    # Other sampling parameters (parameters.py): top_p, stop, seed, ...; temperature and
    # max_tokens above win over theirs here.
    params: dict[str, Any] | None = Field(None, strict=False)
    context: ContextRequest | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the prompt is empty")
        return value

    @field_validator("params")
    @classmethod
    def _parameters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return {name: _check_parameter(name, v) for name, v in value.items()}
        except ParameterError as e:
            raise ValueError(str(e).rstrip(".")) from None

    @field_validator("cell_id")
    @classmethod
    def _a_cell_id(cls, value: str | None) -> str | None:
        if value is not None and _cell_id(value) is None:
            raise ValueError("not a notebook cell id (1 to 64 of the letters A-Z a-z, digits, '-' and '_')")
        return value


class SessionRequest(BaseModel):
    """The body of ``POST sessions`` (save), ``PUT sessions/{id}`` (save over) and ``POST
    sessions/{id}/load``: the notebook whose conversation is saved or loaded into."""

    model_config = ConfigDict(extra="forbid", strict=True)

    conversation: str = Field(min_length=1, max_length=4096)
    name: str | None = Field(None, min_length=1)

    @field_validator("name")
    @classmethod
    def _a_name(cls, value: str | None) -> str | None:
        if value is not None and _session_name(value) is None:
            raise ValueError(
                "a saved conversation's name is 1 to 48 of the letters A-Z a-z, digits, '_' and '-', "
                "beginning with a letter or digit"
            )
        return value


class ContextPreview(BaseModel):
    """The body of ``POST context``: what an answer asked so would send, without asking."""

    model_config = ConfigDict(extra="forbid", strict=True)

    context: ContextRequest
    conversation: str | None = Field(None, min_length=1, max_length=4096)
    cell_id: str | None = Field(None, min_length=1, max_length=64)

    _cell = field_validator("cell_id")(ChatRequest._a_cell_id.__func__)  # type: ignore[attr-defined]


def parse_chat_request(body: bytes) -> ChatRequest:
    """Decode and validate a ``POST chat`` body, or raise :class:`BadRequest` saying what is wrong."""
    return parse_request(body, ChatRequest)


def parse_session_request(body: bytes) -> SessionRequest:
    """Decode and validate a ``sessions`` body, or raise :class:`BadRequest` saying what is wrong."""
    return parse_request(body, SessionRequest)


def parse_request(body: bytes, model: type[M]) -> M:
    """Decode and validate a request body as ``model``, or raise :class:`BadRequest` saying what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    except RecursionError:  # JSON nested deeper than Python's parser recurses
        raise BadRequest("The request body is nested too deeply.") from None
    if not isinstance(data, dict):
        wanted = {ChatRequest: " with a 'prompt'", SessionRequest: " with a 'conversation'"}.get(model, "")
        raise BadRequest(f"The request body must be a JSON object{wanted}.")
    injected = sorted(PASS_THROUGH_FIELDS.intersection(data))
    if injected:
        raise BadRequest(
            f"Field(s) {', '.join(injected)} are not accepted: where a request goes and with which "
            "credentials is set in the server's cellmage configuration."
        )
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadRequest(_describe(e)) from None


M = TypeVar("M", bound=BaseModel)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in item["loc"]) or "body"
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown field '{field}'")
        elif item["type"] == "missing":
            parts.append(f"'{field}' is required")
        else:
            message = item["msg"].removeprefix("Value error, ")
            parts.append(f"'{field}': {message}")
    return "Invalid request: " + "; ".join(parts) + "."


# --- what a provider yields: answer text as plain ``str`` (the hot path), and these two ---------


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None = None


def checked_usage(prompt: object, completion: object, total: object) -> Usage:
    """A provider's token counts, or ValueError when one is not a count (providers send anything)."""
    for count in (prompt, completion, total):
        if count is not None and (type(count) is not int or count < 0):
            raise ValueError("token counts that are not counts")
    return Usage(prompt, completion, total)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str


ProviderEvent = str | Usage | Finish


# --- SSE frames ---------------------------------------------------------------------------------

def dumps(data: Any) -> str:
    """Compact JSON, UTF-8 kept as is (the SSE encoder never sees a raw newline from it)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# A surrogate code point in a Python str is always a lone one (a pair decodes to one character):
# a provider can send one as a JSON escape ("\ud800"), and it cannot be written as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it can be written as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


def frame(event: str, data: Any) -> bytes:
    """One SSE frame: ``event: <name>`` and ``data: <json>``, encoded by sse-starlette."""
    text = dumps(data)
    try:
        return ServerSentEvent(text, event=event, sep="\n").encode()
    except UnicodeEncodeError:  # rare: pay for the scan only then
        return ServerSentEvent(well_formed(text), event=event, sep="\n").encode()


_DELTA_HEAD = b'event: delta\ndata: {"text":'


def delta_frame(text: str) -> bytes:
    """``frame("delta", {"text": text})``, byte for byte (a test holds the two equal), without
    building an event object: the one frame of the hot path, written once per delta."""
    try:
        return _DELTA_HEAD + json.dumps(text, ensure_ascii=False).encode() + b"}\n\n"
    except UnicodeEncodeError:  # a lone surrogate: as frame() writes it
        return frame("delta", {"text": text})


def comment(text: str) -> bytes:
    """An SSE comment frame (``: text``) that clients ignore, used to flush and to keep alive."""
    return ServerSentEvent(comment=text, sep="\n").encode()


def usage_data(usage: Usage) -> dict[str, Any]:
    return asdict(usage)
