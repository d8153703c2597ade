"""What every route under ``cellmage/v1/`` shares: authentication by the scoped key or by Jupyter
credentials, OpenAI-shaped errors, the body limit (``openai_endpoint.max_body_bytes``, refused
before the body is held, as on every route: routes/base.py) and the provider call.

:func:`openai_mapped` writes typed errors (errors.py maps them); ``write_error`` the rest
(authentication, tornado's own errors).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from http.client import responses
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import User
from tornado import web

from ...config import OPENAI_COMPATIBLE, LoadedConfig
from ...errors import CellmageError
from ...providers import ProviderCall
from ..base import CellmageHandler
from . import fields
from .errors import described, error_object
from .fields import Translated
from .scoped_key import ScopedKey, key_owner

SETTINGS_KEY = "cellmage_scoped_key"
_UNKNOWN = "Invalid credentials: use the OPENAI_API_KEY this server gives its kernels, or a Jupyter token."
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
                raise self._unknown() from None
            raise
        if not self.current_user:
            # Every verb, GET too: jupyter-server may leave it to @web.authenticated, whose 403
            # the SDKs would take for a permission error.
            raise self._unknown()

    def _unknown(self) -> web.HTTPError:
        """401, as OpenAI answers a wrong key (the SDKs raise AuthenticationError for it); but 403
        for a user JupyterHub knows and does not let onto this server, which its identity provider
        marks by replacing ``redirect`` with a 403 (jupyterhub/singleuser/extension.py)."""
        if "redirect" in vars(self):
            return web.HTTPError(403, "This server belongs to another user; use your own.")
        return web.HTTPError(401, _UNKNOWN)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = responses.get(status_code, "Unknown error")
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and not isinstance(exc, web.HTTPError):
            message = "The server failed; see its log."
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(error_object(status_code, message)))

    def body_limit(self) -> int:
        config = self.cellmage.config
        return config.settings.openai_endpoint.max_body_bytes if config else super().body_limit()

    def refuse_unknown(self) -> None:
        raise self._unknown()

    def check_body(self) -> dict[str, Any]:
        return fields.decode(self.body())

    def provider_call(self, request: Translated, config: LoadedConfig) -> ProviderCall:
        entry = request.entry
        api_base = entry.api_base
        if entry.path == "openai":
            api_base = api_base or OPENAI_COMPATIBLE[entry.prefix]
        return ProviderCall(
            model=entry.model, api_base=api_base, api_key=config.keys.get(request.alias),
            messages=[], max_tokens=config.settings.limits.max_tokens, alias=request.alias,
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
