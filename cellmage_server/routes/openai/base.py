"""What every route under ``cellmage/v1/`` shares: authentication by the scoped key or by Jupyter
credentials, OpenAI-shaped errors, the body limit, the provider call and the ledger entry.

:func:`openai_mapped` writes typed errors (errors.py maps them); ``write_error`` the rest
(authentication, tornado's own errors).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Awaitable, Callable
from http.client import responses
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import User
from tornado import web

from ...config import OPENAI_COMPATIBLE, LoadedConfig
from ...contract import Usage
from ...errors import CellmageError, PayloadTooLarge
from ...providers import ProviderCall
from ...store.history import LedgerEntry
from ..api import CellmageHandler
from . import fields
from .errors import described, error_object
from .fields import Translated
from .scoped_key import ScopedKey, key_owner

SETTINGS_KEY = "cellmage_scoped_key"
DROPPED_HEADER = "x-cellmage-dropped"


def openai_mapped(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Typed errors raised before a response started become OpenAI-shaped error responses."""

    @functools.wraps(method)
    async def wrapper(self: V1Handler, *args: str) -> None:
        try:
            await method(self, *args)
        except CellmageError as e:
            status, body, headers = described(e)
            self.clear()
            self.set_status(status)
            for name, value in headers.items():
                self.set_header(name, value)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))

    return wrapper


def authorized_or_scoped(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The scoped key is its own authorization: it opens these routes and no other. Jupyter
    credentials go through the server's authorizer, as on every other route."""
    checked = authorized(method)

    @functools.wraps(method)
    async def wrapper(self: V1Handler, *args: str) -> None:
        if self.scoped:
            return await method(self, *args)
        return await checked(self, *args)

    return wrapper


class V1Handler(CellmageHandler):
    scoped = False  # authenticated by the scoped key

    @property
    def scoped_key(self) -> ScopedKey:
        return self.settings[SETTINGS_KEY]

    @property
    def identity_provider(self) -> Any:
        server = super().identity_provider
        return _KeyIdentity(server) if self.scoped else server

    async def prepare(self) -> None:  # type: ignore[override]
        # Decided before jupyter-server's prepare asks the identity provider who this is.
        self.scoped = self.scoped_key.opens(self.request.headers.get("Authorization", ""))
        try:
            await super().prepare()
        except web.HTTPError as e:
            if e.status_code == 403 and not self.current_user:
                # 401, as OpenAI answers a wrong key: the SDKs raise AuthenticationError for it.
                raise web.HTTPError(
                    401, "Invalid credentials: use the OPENAI_API_KEY this server gives its kernels, or a Jupyter token."
                ) from None
            raise

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = responses.get(status_code, "Unknown error")
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and not isinstance(exc, web.HTTPError):
            message = "The server failed; see its log."
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(error_object(status_code, message)))

    def check_body(self, config: LoadedConfig) -> dict[str, Any]:
        limit = config.settings.openai_endpoint.max_body_bytes
        if len(self.request.body) > limit:
            raise PayloadTooLarge(f"The request is {len(self.request.body)} bytes; this server accepts at most {limit}.")
        return fields.decode(self.request.body)

    def provider_call(self, request: Translated, config: LoadedConfig) -> ProviderCall:
        entry = request.entry
        api_base = entry.api_base
        if entry.path == "openai":
            api_base = api_base or OPENAI_COMPATIBLE[entry.prefix]
        return ProviderCall(
            model=entry.model, api_base=api_base, api_key=config.keys.get(request.alias),
            messages=[], max_tokens=config.settings.limits.max_tokens, alias=request.alias,
        )

    async def record(self, alias: str, usage: Usage | None, elapsed_ms: int, outcome: str) -> None:
        store = self.cellmage.store
        if store is None:
            return
        entry = LedgerEntry(
            user=self.username, model=alias, elapsed_ms=elapsed_ms, outcome=outcome,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cost_usd=usage.cost_usd if usage else None,
        )
        try:
            await store.record(entry)
        except sqlite3.Error as e:  # the answer itself stands; the log says what was not kept
            self.log.warning("cellmage: could not store the answer in %s: %s", store.path, e)

    def log_answer(self, route: str, alias: str, finish: str, error: CellmageError | None, usage: Usage | None, ms: int) -> None:
        self.log.info(
            "cellmage: %s user=%s model=%s finish=%s error=%s tokens=%s/%s cost=%s %d ms",
            route, self.username, alias, finish, error.code if error else "-",
            usage.prompt_tokens if usage else "?", usage.completion_tokens if usage else "?",
            usage.cost_usd if usage and usage.cost_usd is not None else "?", ms,
        )


class _KeyIdentity:
    """The identity provider of a request that carries the scoped key: it speaks for the key's
    owner; it is a header credential like the token (no login cookie, no XSRF cookie, no origin
    check); everything else is the server's own provider. jupyter-server's prepare runs as for
    any request, so host checks and CORS stay the server's."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def get_user(self, handler: web.RequestHandler) -> User:
        return User(key_owner())

    def is_token_authenticated(self, handler: web.RequestHandler) -> bool:
        return True

    def should_check_origin(self, handler: web.RequestHandler) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
