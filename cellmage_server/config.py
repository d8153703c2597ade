"""Team configuration: one pydantic-settings model, read once when the server starts.

Precedence, highest first: environment variables ``CELLMAGE_*`` (nested fields with ``__``, e.g.
``CELLMAGE_LIMITS__MAX_TOKENS=2048``), then the TOML file (``$CELLMAGE_CONFIG``, else the first
``cellmage.toml`` on the Jupyter config path that ``jupyter --paths`` lists), then the defaults
below. ``python -m cellmage_server.config`` prints the reference in docs/config.md.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILE_NAME = "cellmage.toml"
CONFIG_ENV = "CELLMAGE_CONFIG"

# litellm-style provider prefixes served by the lean OpenAI-compatible path, with their default
# API base (None: the model entry must give ``api_base``).
OPENAI_COMPATIBLE = {"openai": "https://api.openai.com/v1", "hosted_vllm": None}


# What a variable name looks like when echoed: letters, digits and underscores, not a key's length.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the field."""


class ModelEntry(BaseModel):
    """One model alias: what clients ask for, mapped to a provider model and its credentials."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="The provider's model name as litellm writes it: `openai/gpt-4o-mini`, "
        "`openai/llama3.2` (with `api_base`)."
    )
    api_base: str | None = Field(
        None,
        description="Base URL of the provider's API, e.g. `http://127.0.0.1:11434/v1` for Ollama "
        "or a LiteLLM Proxy's URL. None: the provider's public API.",
    )
    api_key: SecretStr | None = Field(
        None, description="The key itself. Never logged or returned. Prefer `api_key_env`."
    )
    api_key_env: str | None = Field(
        None,
        description="Name of the environment variable holding the key, read when the server "
        "starts and then removed from the environment its kernels inherit.",
    )
    provider: Literal["auto", "openai", "litellm"] = Field(
        "auto",
        description="Which provider path serves this model. `openai`: the lean OpenAI-compatible "
        "path (its own HTTP/1.1 client, keep-alive, TLS). `litellm`: litellm, for every provider it knows (needs the `litellm` extra). "
        "`auto`: `openai` for OpenAI-compatible prefixes (`openai/`, `hosted_vllm/`), else `litellm`.",
    )
    description: str = Field("", description="Shown to users in the model list.")
    kind: Literal["chat", "embedding"] = Field(
        "chat",
        description="`chat`: answers prompts (`cellmage/api/chat`, `cellmage/v1/chat/completions`, "
        "`cellmage/v1/responses`). "
        "`embedding`: served on `cellmage/v1/embeddings` only.",
    )
    input_cost_per_mtok: float | None = Field(
        None, ge=0, description="USD per million prompt tokens. None: litellm's price data, if it prices the model."
    )
    output_cost_per_mtok: float | None = Field(
        None, ge=0, description="USD per million completion tokens. None: litellm's price data, if it prices the model."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelEntry:
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("give api_key or api_key_env, not both")
        if (self.input_cost_per_mtok is None) != (self.output_cost_per_mtok is None):
            raise ValueError("give both input_cost_per_mtok and output_cost_per_mtok, or neither")
        return self

    @property
    def path(self) -> Literal["openai", "litellm"]:
        """The provider path that serves this model."""
        if self.provider != "auto":
            return self.provider
        return "openai" if self.prefix in OPENAI_COMPATIBLE else "litellm"

    @property
    def prefix(self) -> str:
        """The litellm provider prefix (`openai` in `openai/gpt-4o`)."""
        return self.model.split("/", 1)[0] if "/" in self.model else "openai"


class Limits(BaseModel):
    """What one request and one user may use."""

    model_config = ConfigDict(extra="forbid")

    max_prompt_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest request body in bytes (the prompt and its fields); larger gets 413."
    )
    max_tokens: int = Field(
        4096, ge=1, description="Cap on `max_tokens`; also sent when neither request nor persona sets it."
    )
    max_streams_per_user: int = Field(
        4, ge=1, description="Answers one user may have running at once; one more gets 429."
    )
    ping_interval: float = Field(
        15.0, gt=0, le=15, description="Seconds of silence after which the stream sends a `: ping` comment."
    )
    history_chars: int = Field(
        24_000, ge=0, description="Most characters of earlier turns sent with a prompt; the oldest go first."
    )
    context_chars: int = Field(
        48_000,
        ge=1000,
        description="Most characters of context (cells, error, variables, snippets) and earlier turns sent "
        "with a prompt, together. Context comes first (it was asked for), then the turns that fit, newest "
        "first. Past it, the oldest turns are left out first, then context: the cells farthest from the "
        "prompt, then snippets, then variables, then the error. `start` reports what was dropped.",
    )
    stream_buffer_bytes: int = Field(
        1024 * 1024,
        ge=16 * 1024,
        description="Most bytes of one answer the server holds for a client that reads slowly (an "
        "asker's stream, a follower's, a `cellmage/v1` stream); past it the server stops reading the "
        "provider, or the board, until the client catches up (the last events of a `responses` "
        "stream: it holds one piece more).",
    )
    max_answer_bytes: int = Field(
        8 * 1024 * 1024,
        ge=64 * 1024,
        description="Most bytes one answer may have (its text in UTF-8; on `cellmage/v1`, the chunks as "
        "the provider sent them, or a streamed `responses` answer's delta events as written; such an "
        "answer keeps its text for its last events, so this bounds that too). A provider that sends "
        "more (it ignored `max_tokens`) is stopped there: the answer ends with an `error` of code "
        "`too_long`, keeping the text so far. One event of a provider's stream read by this server "
        "(the lean path) may have this and 64 KiB more.",
    )
    max_followers_per_answer: int = Field(
        16, ge=1, description="Pages that may follow one running answer at once (`GET answers/{id}/events`); one more gets 429."
    )
    max_followers_per_user: int = Field(
        32, ge=1, description="Followers one user may have open at once, over all answers; one more gets 429."
    )


class Timeouts(BaseModel):
    """Seconds to wait on the provider; each ends the answer with an `error` of code `timeout`."""

    model_config = ConfigDict(extra="forbid")

    connect: float = Field(10.0, gt=0, description="Connecting to the provider.")
    first_token: float = Field(
        120.0, gt=0, description="From the request to the provider's first answer text."
    )
    chunk_gap: float = Field(
        60.0, gt=0, description="Longest silence of the provider between two chunks of an answer."
    )
    total: float = Field(900.0, gt=0, description="One whole answer.")
    client_behind: float = Field(
        30.0,
        gt=0,
        description="Longest a client may stay `limits.stream_buffer_bytes` behind the answer; "
        "then its answer ends with an `error` of code `slow_client` and the provider is closed.",
    )


class OpenAIEndpoint(BaseModel):
    """The OpenAI-compatible endpoint `cellmage/v1/*` and what kernels get to use it."""

    model_config = ConfigDict(extra="forbid")

    kernel_variables: bool = Field(
        True,
        description="Give kernels started by the server `OPENAI_BASE_URL` (this endpoint) and "
        "`OPENAI_API_KEY` (a key minted at server start that opens `cellmage/v1/*` only).",
    )
    max_n: int = Field(1, ge=1, le=16, description="Largest `n` (answers per request) a client may ask for.")
    max_body_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Largest request body in bytes (messages may carry images as data URLs); larger gets 413.",
    )


def default_snippets_dirs() -> list[Path]:
    """`cellmage/snippets` under each Jupyter config directory, system (team) first, user last."""
    from jupyter_core.paths import jupyter_config_path

    return [Path(d) / "cellmage" / "snippets" for d in reversed(jupyter_config_path())]


ContextKind = Literal["cells", "error", "var", "snippet"]


class ContextSettings(BaseModel):
    """What of the notebook an answer may see (README "Context"): which kinds, and each one's cap."""

    model_config = ConfigDict(extra="forbid")

    allowed: list[ContextKind] = Field(
        default_factory=lambda: ["cells", "error", "var", "snippet"],
        description="The kinds of context clients may send: `cells` (`--cells N`), `error` (`--error`), "
        "`var` (`--var NAME`), `snippet` (`--snippet`, `--sys-snippet`). A kind left out is refused with "
        "400, saying so.",
    )
    max_cells: int = Field(20, ge=1, le=100, description="Most cells `--cells N` may send.")
    cell_chars: int = Field(
        4000, ge=200, description="Most characters of one cell (its code, then its outputs); the rest is cut, saying so."
    )
    error_chars: int = Field(
        6000, ge=200, description="Most characters of an error's traceback; its end (the error itself) is kept."
    )
    var_chars: int = Field(4000, ge=200, description="Most characters of one variable's description.")
    snippet_chars: int = Field(20_000, ge=200, description="Most characters of one snippet file.")
    snippets_dirs: list[Path] = Field(
        default_factory=default_snippets_dirs,
        description="Team folders of snippet files, searched after `llm_snippets/` beside the notebook. "
        "Default: `cellmage/snippets` in each Jupyter config directory, system (team) before user.",
    )


def default_personas_dirs() -> list[Path]:
    """`cellmage/personas` under each Jupyter config directory, system (team) first, user last."""
    from jupyter_core.paths import jupyter_config_path

    return [Path(d) / "cellmage" / "personas" for d in reversed(jupyter_config_path())]


class CellmageSettings(BaseSettings):
    """The whole configuration of one Jupyter server's cellmage extension."""

    model_config = SettingsConfigDict(
        env_prefix="CELLMAGE_", env_nested_delimiter="__", extra="forbid", hide_input_in_errors=True
    )

    default_model: str | None = Field(
        None, description="Alias used when neither request nor persona names a model. None: the first allowed alias."
    )
    allowed_models: list[str] | None = Field(
        None, description="Aliases clients may use. None: every alias in `models`."
    )
    models: dict[str, ModelEntry] = Field(
        default_factory=dict, description="Model aliases, as `[models.<alias>]` tables."
    )
    personas_dirs: list[Path] = Field(
        default_factory=default_personas_dirs,
        description="Folders of persona files, searched in order (the first file of a name wins), "
        "then the built-in personas. Default: `cellmage/personas` in each Jupyter config "
        "directory, system (team) before user.",
    )
    history_db: Path | None = Field(
        None,
        description="SQLite file of conversations and the usage ledger. None: "
        "`cellmage/conversations.sqlite3` in the Jupyter data directory.",
    )
    image_origins: list[str] = Field(
        default_factory=list,
        description="Origins (`https://host[:port]`) whose images an answer may show; an image from "
        "anywhere else shows as a link. Empty: none, so no answer makes a browser fetch a URL the "
        "model chose (the way a prompt injection sends what the prompt held to someone else). An "
        "allowed origin sees every viewing of such an image and whatever its URL carries.",
    )
    limits: Limits = Field(default_factory=Limits, description="Per-request and per-user limits.")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Provider timeouts, in seconds.")
    context: ContextSettings = Field(
        default_factory=ContextSettings, description="What of the notebook an answer may see (`[context]`)."
    )
    openai_endpoint: OpenAIEndpoint = Field(
        default_factory=OpenAIEndpoint, description="The OpenAI-compatible endpoint for kernels' libraries."
    )
    non_dumpable: bool = Field(
        True,
        description="On Linux, make the server process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`, as "
        "ssh-agent does), so other processes of the same user, kernels included, cannot read its "
        "memory or `/proc/<pid>/environ`. Turn off only to debug the server (core dumps, gdb, py-spy).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file's contents arrive as init arguments (see load_config); the environment
        # overrides them.
        return (env_settings, init_settings)

    @field_validator("image_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?", origin):
                raise ValueError(f"{origin!r} is not an origin such as https://images.example.org (no path)")
        return [o.lower() for o in origins]

    @model_validator(mode="after")
    def _aliases_resolve(self) -> CellmageSettings:
        for alias, entry in self.models.items():
            if entry.path == "openai" and entry.api_base is None and OPENAI_COMPATIBLE.get(entry.prefix) is None:
                raise ValueError(f"models.{alias}: api_base is required for {entry.prefix!r} models")
            if entry.path == "litellm" and importlib.util.find_spec("litellm") is None:
                raise ValueError(
                    f"models.{alias}: {entry.model!r} is served through litellm, which is not installed: "
                    "pip install 'cellmage-server[litellm]' (or route it through an OpenAI-compatible "
                    'gateway with model = "openai/<name>" and api_base)'
                )
        for alias in self.allowed_models or ():
            if alias not in self.models:
                raise ValueError(f"allowed_models: {alias!r} is not declared under [models]")
        if self.default_model is not None:
            if self.default_model not in self.models:
                raise ValueError(f"default_model: {self.default_model!r} is not declared under [models]")
            if self.default_model not in self.allowed:
                raise ValueError(f"default_model: {self.default_model!r} is not in allowed_models")
            if self.models[self.default_model].kind != "chat":
                raise ValueError(f"default_model: {self.default_model!r} is an embedding model")
        return self

    @property
    def resolved_history_db(self) -> Path:
        if self.history_db is not None:
            return self.history_db.expanduser()
        from jupyter_core.paths import jupyter_data_dir

        return Path(jupyter_data_dir()) / "cellmage" / "conversations.sqlite3"

    @property
    def allowed(self) -> list[str]:
        """The aliases clients may use, in declaration order."""
        if self.allowed_models is None:
            return list(self.models)
        return [a for a in self.models if a in self.allowed_models]

    @property
    def resolved_default_model(self) -> str | None:
        chat = [a for a in self.allowed if self.models[a].kind == "chat"]
        return self.default_model or (chat[0] if chat else None)


@dataclass(frozen=True)
class LoadedConfig:
    """Settings plus where they came from and the keys they resolved."""

    settings: CellmageSettings
    path: Path | None
    keys: Mapping[str, SecretStr]  # alias -> key (absent: the model needs none)
    key_env_names: frozenset[str]  # env variables the keys were read from
    unavailable: Mapping[str, str] = field(default_factory=dict)  # alias -> why it cannot answer
    # api_key_env values that do not look like a variable's name: perhaps a key pasted there.
    suspect_names: frozenset[str] = frozenset()

    def secret_values(self) -> list[str]:
        """Every configured key (and anything that may be one), for redaction."""
        return [k.get_secret_value() for k in self.keys.values()] + sorted(self.suspect_names)


def find_config_file(environ: Mapping[str, str] = os.environ) -> Path | None:
    """``$CELLMAGE_CONFIG``, else the first ``cellmage.toml`` on the Jupyter config path."""
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    from jupyter_core.paths import jupyter_config_path

    for directory in jupyter_config_path():
        candidate = Path(directory) / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read the cellmage config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"the cellmage config file {path} is not valid TOML: {e}") from None


def _describe(error: ValidationError, where: str) -> str:
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
        lines.append(f"  {name}: {message}.")
    return (
        f"invalid cellmage configuration in {where}:\n" + "\n".join(lines)
        + "\nFix it there (docs/config.md lists every field) and restart the server."
    )


def load_config(environ: Mapping[str, str] = os.environ) -> LoadedConfig:
    """Read, validate and resolve the configuration, or raise :class:`ConfigError`."""
    path = find_config_file(environ)
    data = _read_toml(path) if path is not None else {}
    where = f"{path} (or CELLMAGE_* environment variables)" if path else "CELLMAGE_* environment variables"
    try:
        settings = CellmageSettings(**data)
    except ValidationError as e:
        raise ConfigError(_describe(e, where)) from None
    except ValueError as e:  # raised by a source, e.g. a CELLMAGE_* value that is not valid JSON
        raise ConfigError(f"invalid cellmage configuration in {where}: {e}") from None

    keys: dict[str, SecretStr] = {}
    unavailable: dict[str, str] = {}
    suspect: set[str] = set()
    for alias, entry in settings.models.items():
        if entry.api_key is not None:
            keys[alias] = entry.api_key
        elif entry.api_key_env is not None:
            name = entry.api_key_env
            if not ENV_NAME.fullmatch(name):
                suspect.add(name)
            value = environ.get(name)
            if value:
                keys[alias] = SecretStr(value)
            elif name in suspect:  # never echoed: it may be the key itself
                unavailable[alias] = (
                    f"models.{alias}.api_key_env does not name an environment variable that is set, and "
                    "does not look like a variable's name, so it is not repeated here. If it is the key "
                    "itself, put the key's variable name there instead (or the key in api_key)."
                )
            else:
                unavailable[alias] = (
                    f"models.{alias}.api_key_env: the environment variable {name} is not set. "
                    f"Set it before starting Jupyter, in {where}."
                )
                # Whoever should have set it may say why not (JupyterHub's gateway_keys does).
                why = environ.get(f"{name}_PROBLEM")
                if why:
                    unavailable[alias] += f" Why it is not set: {why[:500]}"
    key_env_names = frozenset(e.api_key_env for e in settings.models.values() if e.api_key_env)
    return LoadedConfig(
        settings=settings, path=path, keys=keys, key_env_names=key_env_names,
        unavailable=unavailable, suspect_names=frozenset(suspect),
    )


def reference() -> str:
    """The configuration reference (docs/config.md), generated from the model's fields."""
    out = [
        "# Configuration reference",
        "",
        "Generated by `python -m cellmage_server.config` from the settings model; a test keeps "
        "this file and the model in step.",
        "",
        __doc__.split("\n\n", 1)[0].replace("\n", " ").strip(),
        "",
    ]

    def table(model: type[BaseModel], prefix: str) -> None:
        out.extend(["| field | type | default | meaning |", "|---|---|---|---|"])
        for name, field in model.model_fields.items():
            default = "required" if field.is_required() else _default_text(field)
            annotation = _type_text(field.annotation)
            out.append(f"| `{prefix}{name}` | {annotation} | {default} | {field.description} |")
        out.append("")

    out += ["## Top level", ""]
    table(CellmageSettings, "")
    out += ["## `[models.<alias>]`", ""]
    table(ModelEntry, "")
    out += ["## `[limits]`", ""]
    table(Limits, "limits.")
    out += ["## `[timeouts]`", ""]
    table(Timeouts, "timeouts.")
    out += ["## `[context]`", ""]
    table(ContextSettings, "context.")
    out += ["## `[openai_endpoint]`", ""]
    table(OpenAIEndpoint, "openai_endpoint.")
    return "\n".join(out)


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        if field.default_factory in (default_personas_dirs, default_snippets_dirs):
            return "see meaning"
        value = field.default_factory()
        return "`{}`" if value == {} else "see table below" if isinstance(value, BaseModel) else f"`{value!r}`"
    return f"`{field.default!r}`".replace("`None`", "None")


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, type) and not hasattr(annotation, "__args__"):
        return annotation.__name__
    text = re.sub(r"\b[\w]+\.(?=\w)", "", str(annotation))  # drop module paths
    return text.replace("|", "or")


if __name__ == "__main__":
    print(reference())
