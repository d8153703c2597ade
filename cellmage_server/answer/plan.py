"""Turn a validated request into a provider call: which model, persona, parameters and messages.

Precedence for each setting: the request, then the persona, then the server's configuration.
Pure: no I/O beyond the persona store's cached file reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import OPENAI_COMPATIBLE, LoadedConfig
from ..context.assemble import Assembled, with_context
from ..contract import ChatRequest
from ..errors import BadRequest, Forbidden, NotConfigured, NotFound
from ..personas import NotebookFolder, Persona, PersonaStore
from ..providers import ProviderCall
from ..store.history import Turn

HOW_TO_CONFIGURE = (
    "No LLM provider is configured on this Jupyter server. Create cellmage.toml in ~/.jupyter/ "
    "(or point CELLMAGE_CONFIG at one) with a [models.<alias>] table, e.g. "
    'model = "openai/gpt-4o-mini" and api_key_env = "OPENAI_API_KEY", then restart the server.'
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
        raise NotConfigured(HOW_TO_CONFIGURE)

    persona = None
    if request.persona is not None:
        persona = personas.get(request.persona, notebook)
        if persona is None:
            names = ", ".join(p.name for p in personas.all(notebook)) or "none"
            raise NotFound(f"Unknown persona '{request.persona}'. Personas on this server: {names}.")

    alias = request.model or (persona.model if persona else None) or settings.resolved_default_model
    if alias is None:  # only embedding models are configured
        raise NotConfigured(HOW_TO_CONFIGURE)
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
