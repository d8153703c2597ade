"""The scoped key: what kernels put in ``OPENAI_API_KEY`` to use ``cellmage/v1/*`` and nothing else.

Minted once per server start with :func:`secrets.token_urlsafe`, held only in this process's
memory and in the environment of the kernels it starts, never logged. Only the handlers of
``cellmage/v1/*`` look for it (as ``Authorization: Bearer <key>``); to the rest of the Jupyter API
it is just a wrong token, refused with 403. Sent to a public provider by mistake it opens nothing:
it names no account there, and this server listens on the user's own machine or hub.
"""

from __future__ import annotations

import hmac
import os
import secrets

from pydantic import SecretStr

from ...principal import owner_name

# Recognisable in a kernel's environment and in a provider's "incorrect API key" message.
PREFIX = "cellmage-kernel-"


class ScopedKey:
    def __init__(self, value: str | None = None) -> None:
        self._value = SecretStr(value or PREFIX + secrets.token_urlsafe(32))

    @property
    def secret(self) -> SecretStr:
        return self._value

    @property
    def random_part(self) -> str:
        """What is secret in it (the prefix is public): what logs redact."""
        return self._value.get_secret_value().removeprefix(PREFIX)

    def opens(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header carries this key (``Bearer <key>``)."""
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential:
            return False
        return hmac.compare_digest(credential.strip().encode(), self._value.get_secret_value().encode())

    def __repr__(self) -> str:
        return "ScopedKey('**********')"


def key_owner() -> str:
    """Who a request with the scoped key speaks for: the person whose kernels hold it.

    Kernels run as the server's user, so that is the server's owner: the hub user under
    JupyterHub, else the operating-system user (the same principal the chat endpoint uses).
    """
    return os.environ.get("JUPYTERHUB_USER") or owner_name()
