"""The REST and SSE API under ``{base_url}cellmage/api/`` (wire contract v1 in the README): its
routes as data. Each route is a thin handler (routes/*.py) over the answer lifecycle
(answer/lifecycle.py), the board (answer/board.py) or the store (store/history.py)."""

from __future__ import annotations

from .answers import AnswerHandler, FollowHandler, SettleHandler
from .base import CellmageHandler
from .chat import CancelHandler, ChatHandler
from .context import ContextHandler
from .conversations import ConversationHandler, TurnHandler
from .info import ModelsHandler, PersonaHandler, PersonasHandler, StatusHandler, UsageHandler
from .sessions import LoadHandler, SessionHandler, SessionsHandler

API_PATH = "cellmage/api"

# Routes as data: (pattern under API_PATH, handler).
default_handlers: list[tuple[str, type[CellmageHandler]]] = [
    ("chat", ChatHandler),
    (r"chat/([0-9a-f]{32})/cancel", CancelHandler),
    ("context", ContextHandler),
    (r"answers/([0-9a-f]{32})", AnswerHandler),
    (r"answers/([0-9a-f]{32})/events", FollowHandler),
    (r"answers/([0-9a-f]{32})/settle", SettleHandler),
    ("models", ModelsHandler),
    ("personas", PersonasHandler),
    (r"personas/([^/]+)", PersonaHandler),
    ("status", StatusHandler),
    # The notebook path as the contents API takes it (slashes as written, or URL-encoded).
    (r"conversations/(.+)/turns/([^/]+)", TurnHandler),
    (r"conversations/(.+)", ConversationHandler),
    ("usage", UsageHandler),
    # A person's saved conversations (CellMage's --save, --load, --list-sessions).
    ("sessions", SessionsHandler),
    (r"sessions/([^/]+)", SessionHandler),
    (r"sessions/([^/]+)/load", LoadHandler),
]
