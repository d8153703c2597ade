"""What a 404 of ``cellmage/v1`` says for an OpenAI route this server does not serve: the route
and what to use instead, so that a library's error names both (pydantic-ai, for one, reports a
404 as a model that does not exist). Pure."""

from __future__ import annotations

SERVED = "this endpoint serves chat/completions, responses, embeddings and models of OpenAI's API"

# By the route's first segment (and the Responses API's own sub-routes by their full path).
INSTEAD = {
    "completions": "the legacy Completions API is not served: use chat/completions or responses.",
    "responses/input_tokens": "counting tokens is not served: each answer's usage comes with it "
    "(response.usage, or the usage chunk of chat/completions).",
    "responses": "responses are not stored here (it is stateless): keep a response's output items and "
    "send them back in 'input' of the next POST responses.",
    "conversations": "conversations are not stored here: send the earlier turns' items in 'input' of POST responses.",
    "assistants": "the Assistants API is not served: use responses or chat/completions with function tools.",
    "threads": "the Assistants API is not served: use responses or chat/completions with function tools.",
    "files": "files are not stored here: send images and files inline (data: URLs, file_data) in responses "
    "or chat/completions.",
    "uploads": "files are not stored here: send images and files inline (data: URLs, file_data) in responses "
    "or chat/completions.",
    "vector_stores": "file search is not served: put the text the model needs in the request.",
    "batches": "batches are not served: send the requests one by one (each user may have "
    "limits.max_streams_per_user answers running at once).",
    "realtime": "the Realtime API is not served: stream with chat/completions or responses (stream: true).",
}


def not_served(route: str) -> str:
    """The 404's message for ``cellmage/v1/{route}``."""
    route = route.strip("/")
    key = "/".join(route.split("/")[:2])
    advice = INSTEAD.get(key) if key in INSTEAD else INSTEAD.get(route.split("/", 1)[0])
    message = f"cellmage/v1/{route} is not served here: {SERVED}."
    return f"{message} {advice[0].upper()}{advice[1:]}" if advice else message
