"""Turn a validated request into a provider call: which model, persona, parameters and messages.

Precedence for each setting: the request, then the persona, then the server's configuration.
Pure: no I/O beyond the persona store's cached file reads (and the environment, for the message
that says how to configure a provider).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import CONFIG_ENV, CONFIG_FILE_NAME, OPENAI_COMPATIBLE, LoadedConfig
from ..context.assemble import Assembled, with_context
from ..contract import ChatRequest
from ..errors import BadRequest, Forbidden, NotConfigured, NotFound
from ..personas import NotebookFolder, Persona, PersonaStore
from ..providers import ProviderCall
from ..store.history import Turn

TOML_EXAMPLE = "\n".join(
    (
        'default_model = "gpt-4o-mini"',
        "",
        "[models.gpt-4o-mini]",
        'model = "openai/gpt-4o-mini"',
        'api_key_env = "OPENAI_API_KEY"',
    )
)


def _looked(config_file: Path | None) -> tuple[str, str]:
    """Where this server looked for its configuration, and the file to write."""
    from jupyter_core.paths import jupyter_config_dir, jupyter_config_path

    if config_file is not None:  # $CELLMAGE_CONFIG, or the first cellmage.toml on the path
        return f"read {config_file}", str(config_file)
    folders = ", ".join(str(Path(d) / CONFIG_FILE_NAME) for d in jupyter_config_path())
    return f"looked for {folders} (or {CONFIG_ENV})", str(Path(jupyter_config_dir()) / CONFIG_FILE_NAME)


def _under_hub(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("JUPYTERHUB_API_TOKEN") or environ.get("JUPYTERHUB_SERVICE_PREFIX"))


def how_to_configure(config_file: Path | None, environ: Mapping[str, str] | None = None) -> str:
    """What a person reads when no provider is configured: where this server looked for its
    ``cellmage.toml`` (``config_file``: the file it read, if any), a file ready to paste, and who
    can act (a single user edits their file; under JupyterHub the admin does). Plain lines (no HTTP
    status) and a ```toml block, which both clients show as a code block (ending.py
    ``problem_markdown``)."""
    looked, target = _looked(config_file)
    example = f"```toml\n{TOML_EXAMPLE}\n```"
    if _under_hub(os.environ if environ is None else environ):
        return (
            "No LLM provider is configured for this JupyterHub server, so there is nothing to ask yet.\n"
            f"Ask your JupyterHub admin to configure one: the server {looked} and found no model.\n\n"
            "For the admin, a cellmage.toml to start from (the key itself in the servers' environment, "
            f"never in the file):\n\n{example}"
        )
    return (
        "No LLM provider is configured on this Jupyter server, so there is nothing to ask yet.\n"
        f"It {looked} and found no model.\n\n"
        f"Save this as {target}, set OPENAI_API_KEY in the environment Jupyter starts from, "
        f"then restart Jupyter:\n\n{example}"
    )


def how_to_configure_line(config_file: Path | None) -> str:
    """The same, in one sentence for the server's log."""
    looked, target = _looked(config_file)
    return (
        f"cellmage: no LLM provider is configured (this server {looked} and found no model), so every "
        f"ask is refused until {target} has a [models.<alias>] table and the server restarts."
    )


@dataclass(frozen=True)
class Plan:
    alias: str
    persona: Persona | None
    call: ProviderCall
    path: str  # which provider path serves it: "openai" or "litellm"
    history_turns: int = 0  # earlier turns sent with the prompt
    history_dropped: int = 0  # earlier turns left out to keep within limits.history_chars
    context: dict | None = None  # what context went and what was dropped (context/assemble.py)
    context_text: str | None = None  # the context as the provider got it, stored with the turn


def history_messages(turns: list[Turn], budget: int) -> tuple[list[dict[str, str]], int]:
    """Earlier turns as chat messages, oldest dropped first to keep within ``budget`` characters;
    and how many were dropped. Only answered turns count (a stopped or failed one is left out)."""
    kept: list[Turn] = []
    used = 0
    answered = [t for t in turns if t.status == "ok"]
    for turn in reversed(answered):
        size = len(turn.prompt) + len(turn.answer)
        if used + size > budget:
            break
        kept.append(turn)
        used += size
    kept.reverse()
    messages = []
    for turn in kept:
        messages += [{"role": "user", "content": turn.prompt}, {"role": "assistant", "content": turn.answer}]
    return messages, len(answered) - len(kept)


def plan_answer(
    request: ChatRequest,
    config: LoadedConfig,
    personas: PersonaStore,
    earlier: list[Turn] | None = None,
    user: str | None = None,
    notebook: NotebookFolder | None = None,
    context: Assembled | None = None,
) -> Plan:
    """Resolve ``request`` against the configuration, or raise the error a client should see.
    ``user`` is the principal the provider call is made for (OpenAI `user` at a gateway);
    ``notebook`` the persona folder beside the request's notebook, if it has one; ``context``
    what of the notebook goes with the prompt (context/assemble.py), within the budget it shares
    with the earlier turns."""
    settings = config.settings
    if not settings.models:
        raise NotConfigured(how_to_configure(config.path))

    persona = None
    if request.persona is not None:
        persona = personas.get(request.persona, notebook)
        if persona is None:
            names = ", ".join(p.name for p in personas.all(notebook)) or "none"
            raise NotFound(f"Unknown persona '{request.persona}'. Personas on this server: {names}.")

    alias = request.model or (persona.model if persona else None) or settings.resolved_default_model
    if alias is None:  # only embedding models are configured
        raise NotConfigured(how_to_configure(config.path))
    allowed = settings.allowed
    if alias not in settings.models:
        source = f" (set by persona '{persona.name}')" if persona and not request.model else ""
        raise NotFound(f"Unknown model '{alias}'{source}. Models on this server: {', '.join(allowed) or 'none'}.")
    if alias not in allowed:
        raise Forbidden(f"Model '{alias}' is not allowed on this server. Allowed: {', '.join(allowed) or 'none'}.")
    if settings.models[alias].kind != "chat":
        raise BadRequest(f"Model '{alias}' is an embedding model; it answers on cellmage/v1/embeddings only.")
    if alias in config.unavailable:
        others = [a for a in allowed if a not in config.unavailable]
        raise NotConfigured(
            f"Model '{alias}' is unavailable on this server: {config.unavailable[alias]} "
            f"Models that work: {', '.join(others) or 'none'}."
        )

    # Each parameter: the request's own field, then its params, then the persona's.
    params = dict(request.params or {})
    asked_tokens = request.max_tokens if request.max_tokens is not None else params.pop("max_tokens", None)
    params.pop("max_tokens", None)
    cap = settings.limits.max_tokens
    if asked_tokens is not None and asked_tokens > cap:
        raise BadRequest(f"max_tokens {asked_tokens} is over this server's cap of {cap}.")
    if asked_tokens is not None:
        max_tokens = asked_tokens
    elif persona is not None and persona.max_tokens is not None:
        max_tokens = min(persona.max_tokens, cap)
    else:
        max_tokens = cap
    temperature = request.temperature if request.temperature is not None else params.pop("temperature", None)
    params.pop("temperature", None)
    if temperature is None and persona is not None:
        temperature = persona.temperature
    options = (dict(persona.options) if persona is not None else {}) | params

    limits = settings.limits
    budget = context.budget_left if context is not None else limits.context_chars
    history, dropped = history_messages(earlier or [], min(limits.history_chars, budget))
    block = context.block if context is not None else ""
    messages = history + [{"role": "user", "content": with_context(request.prompt, block)}]
    system = "\n\n".join(part for part in (persona.system_prompt if persona else "", context.system if context else "") if part)
    if system:
        messages.insert(0, {"role": "system", "content": system})

    entry = settings.models[alias]
    api_base = entry.api_base
    if entry.path == "openai":
        api_base = api_base or OPENAI_COMPATIBLE[entry.prefix]
    call = ProviderCall(
        model=entry.model,
        api_base=api_base,
        api_key=config.keys.get(alias),
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        alias=alias,
        user=user,
        options=options,
    )
    stored = "\n\n".join(part for part in (context.system if context else "", block) if part) or None
    return Plan(
        alias=alias, persona=persona, call=call, path=entry.path,
        history_turns=len(history) // 2, history_dropped=dropped,
        context=context.report if context is not None else None, context_text=stored,
    )
