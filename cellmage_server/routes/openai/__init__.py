"""The OpenAI-compatible endpoint ``{base_url}cellmage/v1/``: chat completions, models and
embeddings in OpenAI's wire format, for the libraries people use in notebooks (the openai SDK,
litellm, LangChain, ...), with the chat endpoint's keys, allow-list, limits, cancel and ledger.

- fields.py: which request fields pass, are dropped or refused (pure);
- wire.py: SSE frames and assembling a whole answer from chunks (pure);
- errors.py: OpenAI-shaped errors, mapped in one place;
- ../../providers/passthrough.py: the requests to both provider paths;
- scoped_key.py: the key kernels get, which opens these routes only;
- answering.py: what the answer routes share (framing, the end, disconnect);
- handlers.py: the routes.
"""

from __future__ import annotations

from .handlers import default_handlers as v1_handlers
from .scoped_key import ScopedKey

V1_PATH = "cellmage/v1"

__all__ = ["V1_PATH", "ScopedKey", "v1_handlers"]
