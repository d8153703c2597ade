"""OpenAI-shaped errors: the one place where this endpoint's errors get their status, body and
headers. The SDKs act on the status (``BadRequestError`` 400, ``AuthenticationError`` 401,
``PermissionDeniedError`` 403, ``NotFoundError`` 404, ``RateLimitError`` 429 with ``retry-after``
honoured, retries on 408/409/429/5xx), so a provider's status is passed on when it is the
client's to act on, and becomes 502 when it is the server's configuration that is wrong.

::

    CellmageError (../errors.py)       status here
    ├── BadRequest
    │   └── InvalidRequest             400       a field is wrong, unknown or refused; ``param`` names it
    ├── NotFound
    │   └── ModelNotFound              404       not an allowed alias of this route's kind
    ├── PayloadTooLarge                413
    ├── TooManyStreams                 429       this user's running answers are at the limit
    ├── NotConfigured                  503
    ├── UpstreamError                  by code (502, 504, 429, 400)
    │   └── ProviderStatus             the provider's own status, mapped by :func:`client_status`
    └── Cancelled                      499       (written to nobody: the client is gone)
"""

from __future__ import annotations

from typing import Any

from ...errors import BadRequest, CellmageError, NotFound, UpstreamError
from ...providers import classify


class InvalidRequest(BadRequest):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ModelNotFound(NotFound):
    pass


def client_status(provider_status: int) -> int:
    """The status a client sees for a provider's error status."""
    if provider_status in (400, 413, 429, 500, 502, 503, 504):
        return provider_status  # the request's fault, a rate limit, or a provider's own outage
    if provider_status == 422:
        return 400
    if provider_status == 408:
        return 504
    return 502  # 401/403/404 and the rest: this server's credentials or configuration are wrong


class ProviderStatus(UpstreamError):
    """The provider answered an error status before any answer text."""

    def __init__(self, message: str, provider_status: int, kind: str, retry_after: str | None = None) -> None:
        super().__init__(classify(provider_status, f"{kind} {message}"), message)
        self.status = client_status(provider_status)
        self.retry_after = retry_after


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_object(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's ``{"error": {"message", "type", "param", "code"}}``."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def described(error: CellmageError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for a typed error."""
    headers: dict[str, str] = {}
    param = getattr(error, "param", None)
    code: str | None = error.code
    if isinstance(error, ModelNotFound):
        code = "model_not_found"
    elif isinstance(error, InvalidRequest):
        code = "unknown_parameter" if error.message.startswith("Unrecognized") else None
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        headers["retry-after"] = retry_after
    return error.status, error_object(error.status, error.message, param=param, code=code), headers


def stream_error(error: BaseException) -> dict[str, Any]:
    """The ``data:`` of the last event of a stream that failed after it started, as OpenAI sends it."""
    if isinstance(error, CellmageError):
        status, body, _ = described(error)
        return body
    return error_object(500, "The server failed while relaying the answer; see its log.", code="internal")
