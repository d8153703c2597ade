"""Who is asking: one stable name per person (the *principal*), whatever client they use.

jupyter-server's own token and password identity providers do not know people: they make a new
anonymous user (a random id) for every request that carries the token without a login cookie, so
the browser, each kernel and each script would look like different people. Everything a user owns
here (running answers, the per-user limit, the usage ledger, attribution at a gateway) is keyed on
the principal instead:

- the server's own identity providers (a single-user server, token or password): every
  authenticated request is the server's owner, named after the operating-system user;
- any other identity provider (JupyterHub's, or a custom one that names users): the user's name.
"""

from __future__ import annotations

import functools
import getpass
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

# Identity providers that authenticate a shared secret (the token, the password), not a person.
# Exact types: a subclass may well name people, and then its names are the principals.
_SINGLE_OWNER = (IdentityProvider, PasswordIdentityProvider)


@functools.cache  # (without USER or LOGNAME set, each call reads the password database)
def owner_name() -> str:
    """The operating-system user this server runs as."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "owner"


def principal(identity_provider: Any, user: Any) -> str:
    """The principal of an authenticated request's ``user`` under ``identity_provider``."""
    if type(identity_provider) in _SINGLE_OWNER:
        return owner_name()
    return str(user.username)
