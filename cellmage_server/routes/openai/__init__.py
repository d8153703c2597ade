"""The OpenAI-compatible endpoint ``{base_url}cellmage/v1/``: chat completions, responses, models
and embeddings in OpenAI's wire format, for the libraries people use in notebooks (the openai SDK,
litellm, LangChain, pydantic-ai, the Agents SDK, ...), with the chat endpoint's keys, allow-list,
limits, cancel and ledger.

- fields.py: which Chat Completions fields pass, are dropped or refused (pure);
- wire.py: SSE frames and assembling a whole chat completion from chunks (pure);
- responses_fields.py: a Responses request checked and translated to chat completions (pure);
- responses_wire.py: chat chunks back into Responses events and objects (pure);
- not_served.py: what a 404 says to use instead (pure);
- errors.py: OpenAI-shaped errors, mapped in one place;
- ../../providers/passthrough.py: the requests to both provider paths;
- scoped_key.py: the key kernels get, which opens these routes only;
- answering.py: what the two answer routes share (framing, the end, disconnect);
- handlers.py: the routes.
"""

from __future__ import annotations

from .handlers import default_handlers as v1_handlers
from .scoped_key import ScopedKey

V1_PATH = "cellmage/v1"

__all__ = ["V1_PATH", "ScopedKey", "v1_handlers"]
