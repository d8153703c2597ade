"""The errors of cellmage-server, and the one place that maps them to HTTP and SSE.

::

    CellmageError                    status  SSE code
    ├── BadRequest                   400     -        a field is missing, wrong or not accepted
    ├── Forbidden                    403     -        the model exists but the admin did not allow it
    ├── NotFound                     404     -        unknown model, persona or stream
    ├── CellBusy                     409     -        the notebook cell is answering already
    ├── Conflict                     409     -        a name means more than one thing, or a bound is reached
    ├── PayloadTooLarge              413     -        the body is over ``limits.max_body_bytes``
    ├── TooManyStreams               429     -        this user already has ``limits.max_streams_per_user``
    ├── TooManyFollowers             429     -        an answer, or a user, has as many followers as allowed
    ├── NotConfigured                503     -        no model is configured on this server
    ├── Internal                     500     internal the server itself failed while relaying
    ├── Shutdown                     503     shutdown the Jupyter server is stopping
    ├── SlowClient                   503     slow_client the client stayed too far behind the answer
    ├── AnswerTooLong                502     too_long the provider sent more than ``limits.max_answer_bytes``
    └── UpstreamError                5xx/4xx  code    the provider failed; ``code`` is the contract's
        (codes: upstream, auth, rate_limited, timeout, context_length, content_filter)
    Cancelled                        499     cancelled the answer was stopped by its client

Errors known before a stream starts are raised as :class:`tornado.web.HTTPError` by
:func:`http_error`; once a stream has started, :func:`sse_error` gives the ``error`` event's data.
Every message is a sentence a person can act on; upstream text passes
:func:`~cellmage_server.safety.redaction.redact` first.
"""

from __future__ import annotations

from collections.abc import Callable

from tornado import web


class CellmageError(Exception):
    """Base class: ``status`` is the HTTP status, ``code`` the contract's error code."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(CellmageError):
    status, code = 400, "bad_request"


class Forbidden(CellmageError):
    status, code = 403, "forbidden"


class NotFound(CellmageError):
    status, code = 404, "not_found"


class CellBusy(CellmageError):
    """One answer per notebook cell, whoever asks (another page, a kernel)."""

    status, code = 409, "cell_busy"


class Conflict(CellmageError):
    """A name that fits more than one saved conversation, or the most that are kept."""

    status, code = 409, "conflict"


class PayloadTooLarge(CellmageError):
    status, code = 413, "too_large"


class TooManyStreams(CellmageError):
    status, code = 429, "too_many_streams"


class TooManyFollowers(CellmageError):
    """``limits.max_followers_per_answer`` or ``limits.max_followers_per_user`` is reached."""

    status, code = 429, "too_many_followers"


class NotConfigured(CellmageError):
    status, code = 503, "not_configured"


class Internal(CellmageError):
    """The server failed while relaying an answer (a bug): the log has the traceback."""

    status, code = 500, "internal"

    def __init__(self, message: str = "The server failed while relaying the answer; see its log.") -> None:
        super().__init__(message)


class Shutdown(CellmageError):
    """The Jupyter server is stopping: running answers end, new ones are refused."""

    status, code = 503, "shutdown"

    def __init__(self, message: str = "The Jupyter server stopped.") -> None:
        super().__init__(message)


class SlowClient(CellmageError):
    """The client read the answer more slowly than ``timeouts.client_behind`` allows."""

    status, code = 503, "slow_client"


class AnswerTooLong(CellmageError):
    """The provider sent more than ``limits.max_answer_bytes`` (it ignored ``max_tokens``, or a
    gateway is misconfigured): the answer ends there, with the text so far, and the provider's
    request is closed."""

    status, code = 502, "too_long"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The provider sent more than this server keeps for one answer (limits.max_answer_bytes, "
            f"{limit} bytes), so the answer was cut there and the provider stopped."
        )


# HTTP status for a provider failure answered without streaming (``stream: false``). A provider's
# 401 is our server's misconfiguration, not the client's: it must not look like a Jupyter login
# failure, hence 502 rather than 401.
_UPSTREAM_STATUS = {
    "upstream": 502,
    "auth": 502,
    "rate_limited": 429,
    "timeout": 504,
    "context_length": 400,
    "content_filter": 400,
}


class UpstreamError(CellmageError):
    """The provider failed; ``code`` is one of the contract's upstream codes."""

    def __init__(self, code: str, message: str) -> None:
        if code not in _UPSTREAM_STATUS:
            raise ValueError(f"unknown upstream error code {code!r}")
        super().__init__(message)
        self.code = code
        self.status = _UPSTREAM_STATUS[code]


class Cancelled(CellmageError):
    """The client cancelled the answer (cancel route or disconnect)."""

    # nginx's "client closed request". A whole (non-streamed) answer's id is not known to its
    # client before it ends, so in practice this status is written to nobody; it keeps the
    # mapping total rather than falling back to 500.
    status, code = 499, "cancelled"

    def __init__(self, message: str = "The answer was stopped by its client.") -> None:
        super().__init__(message)


def http_error(error: CellmageError) -> web.HTTPError:
    """The HTTP error jupyter-server's ``APIHandler.write_error`` turns into JSON."""
    # log_message is what write_error sends; it is formatted with %-args, so escape '%'.
    return web.HTTPError(error.status, error.message.replace("%", "%%"), reason=error.code)


def sse_error(error: BaseException) -> dict[str, str]:
    """The data of an ``error`` event for anything that ended a started stream."""
    if isinstance(error, CellmageError):
        return {"code": error.code, "message": error.message}
    return {"code": "internal", "message": "The server failed while relaying the answer; see its log."}


RequestLog = Callable[[web.RequestHandler], None]


def quiet_expected_errors(log_function: RequestLog | None) -> RequestLog:
    """jupyter-server logs every 5xx at error level with request headers, as for a crash. A 5xx
    this extension answers on purpose (503 unconfigured or unavailable model, 502 provider
    failure: ``mapped`` sets the handler's ``expected_error``) is one warning line; everything
    else is logged as before."""

    def log_request(handler: web.RequestHandler) -> None:
        expected = getattr(handler, "expected_error", None)
        if expected is not None and handler.get_status() >= 500:
            request = handler.request
            handler.log.warning(
                "%d %s %s %.2fms: %s", handler.get_status(), request.method, request.path,
                1000.0 * request.request_time(), expected.code,
            )
        elif log_function is not None:
            log_function(handler)
        else:
            handler.application.__class__.log_request(handler.application, handler)

    if getattr(log_function, "cellmage_quiet", False):
        return log_function  # type: ignore[return-value]  # already wrapped (a second extension load)
    log_request.cellmage_quiet = True  # type: ignore[attr-defined]
    return log_request
