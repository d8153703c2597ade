"""The sampling parameters a person may set for an answer, and their rules: one table for the
wire contract (``POST chat``), persona front matter, and the magics' ``%%llm --param`` and
``%llm_config --set-override`` (which check a value before it is sent, with the same words).

Nothing here decides where a request goes or with which credentials: ``api_base``, keys,
providers and the rest are the server's configuration, and asking for one gets a sentence that
says so (:data:`REROUTING`). Pure and light (the kernel loads it with ``%load_ext``).
"""

from __future__ import annotations

from dataclasses import dataclass


class ParameterError(ValueError):
    """A parameter that may not be set, or a value out of its range; the message says which."""


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # "number", "count" (an integer >= 1), "integer", "stop" (a string or up to 4)
    help: str
    lo: float | None = None
    hi: float | None = None


# The same bounds as OpenAI's API and the cellmage/v1 endpoint (routes/openai/fields.py).
PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("temperature", "number", "sampling temperature", 0, 2),
        Parameter("max_tokens", "count", "most tokens to generate (capped by the server)", 1),
        Parameter("top_p", "number", "nucleus sampling: the probability mass to sample from", 0, 1),
        Parameter("presence_penalty", "number", "penalty for tokens already present", -2, 2),
        Parameter("frequency_penalty", "number", "penalty by how often a token appeared", -2, 2),
        Parameter("seed", "integer", "a seed for providers that sample reproducibly", -(2**63), 2**63 - 1),
        Parameter("stop", "stop", "a stop sequence, or a list of up to 4"),
    )
}

# Names that would re-route the call or carry credentials (litellm's, the SDKs' and CellMage's
# own override keys): refused with a sentence that says why, never passed on.
REROUTING = frozenset(
    {
        "api_base", "base_url", "api_key", "api_version", "api_type", "custom_llm_provider", "extra_headers",
        "headers", "extra_body", "extra_query", "organization", "project", "deployment_id", "aws_access_key_id",
        "aws_secret_access_key", "aws_region_name", "vertex_credentials", "vertex_project", "vertex_location",
        "azure_ad_token", "timeout", "num_retries", "callbacks", "success_callback", "failure_callback",
        "mock_response", "litellm_params", "input_cost_per_token", "output_cost_per_token", "client",
        "adapter", "provider", "user",
    }
)

# CellMage override keys that configure its own storage; here the server keeps conversations.
STORAGE = frozenset({"storage_type", "sqlite_path", "conversations_dir", "base_dir", "auto_save"})

MAX_STOP = 4
MAX_STOP_CHARS = 256


def names() -> str:
    return ", ".join(PARAMETERS)


def refusal(name: str) -> str | None:
    """Why ``name`` may not be set (None: it may)."""
    if name in PARAMETERS:
        return None
    if name.lower() in REROUTING or "key" in name.lower() or "secret" in name.lower():
        return (
            f"{name} is not a parameter you may set: where a request goes and with which credentials "
            "is the Jupyter server's cellmage configuration, never the notebook's."
        )
    if name == "model":
        return "model is set with --model (or %llm_config --model), not as a parameter."
    if name in STORAGE:
        return f"{name} is not a parameter here: the Jupyter server stores every conversation."
    return f"{name} is not a parameter you may set; the parameters are: {names()}."


def check(name: str, value: object) -> object:
    """``value`` if parameter ``name`` may take it, else :class:`ParameterError` saying why."""
    why = refusal(name)
    if why is not None:
        raise ParameterError(why)
    p = PARAMETERS[name]
    if p.kind == "stop":
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list) or not 1 <= len(items) <= MAX_STOP
            or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in items)
        ):
            raise ParameterError(f"'{name}' must be a string or a list of 1 to {MAX_STOP} strings (each 1 to {MAX_STOP_CHARS} characters).")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
        raise ParameterError(f"'{name}' must be {_what(p)}, not {value!r}.")
    if p.kind in ("count", "integer") and not (isinstance(value, int) or float(value).is_integer()):
        raise ParameterError(f"'{name}' must be {_what(p)}, not {value!r}.")
    if (p.lo is not None and value < p.lo) or (p.hi is not None and value > p.hi):
        raise ParameterError(f"'{name}' must be {_what(p)}, not {value!r}.")
    return int(value) if p.kind in ("count", "integer") else value


def _what(p: Parameter) -> str:
    if p.kind == "count":
        return "a whole number of at least 1"
    if p.kind == "integer":
        return "a whole number (64-bit)"
    return f"a number from {p.lo:g} to {p.hi:g}"
