"""``POST context``: what an answer asked so would send, without asking (``%llm_config
--show-context``): the context as the provider would get it, what of it went and what was
dropped, and the earlier turns that would fit beside it."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..answer.plan import history_messages
from ..contract import ContextPreview, dumps, parse_request
from .base import PromptBodyHandler, mapped


class ContextHandler(PromptBodyHandler):
    @web.authenticated
    @authorized
    @mapped
    async def post(self) -> None:
        """The context an answer would send, as ``{"context", "dropped", "system", "block", "history"}``."""
        state = self.cellmage
        settings = state.require_config().settings
        request = parse_request(self.body(), ContextPreview)
        conversation = self.conversation_id(request.conversation) if request.conversation else None
        assembled = await self.assembled(request.context, conversation, request.cell_id)
        assert assembled is not None
        earlier = await state.store.earlier_turns(conversation, request.cell_id) if conversation and state.store else []
        messages, dropped = history_messages(earlier, min(settings.limits.history_chars, assembled.budget_left))
        self.finish(
            dumps(
                {
                    **assembled.report, "system": assembled.system, "block": assembled.block,
                    "history": {"turns": len(messages) // 2, "dropped": dropped},
                }
            )
        )
