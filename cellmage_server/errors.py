"""The errors of cellmage-server, and the one place that maps them to HTTP and SSE.

::

    CellmageError                    status  SSE code
    ├── BadRequest                   400     -        a field is missing, wrong or not accepted
    ├── Forbidden                    403     -        the model exists but the admin did not allow it
    ├── NotFound                     404     -        unknown model, persona or stream
    ├── CellBusy                     409     -        the notebook cell is answering already
    ├── PayloadTooLarge              413     -        the body is over ``limits.max_body_bytes``
    ├── TooManyStreams               429     -        this user already has ``limits.max_streams_per_user``
    ├── NotConfigured                503     -        no model is configured on this server
    ├── Internal                     500     internal the server itself failed while relaying
    ├── Shutdown                     503     shutdown the Jupyter server is stopping
    ├── SlowClient                   503     slow_client the client stayed too far behind the answer
    └── UpstreamError                5xx/4xx  code    the provider failed; ``code`` is the contract's
        (codes: upstream, auth, rate_limited, timeout, context_length, content_filter)
    Cancelled                        499     cancelled the answer was stopped by its client

Errors known before a stream starts are raised as :class:`tornado.web.HTTPError` by
:func:`http_error`; once a stream has started, :func:`sse_error` gives the ``error`` event's data.
Every message is a sentence a person can act on; upstream text passes :func:`redact` first.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable

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


class PayloadTooLarge(CellmageError):
    status, code = 413, "too_large"


class TooManyStreams(CellmageError):
    status, code = 429, "too_many_streams"


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


# Anything shaped like a credential: OpenAI/Anthropic-style keys, bearer tokens, and long opaque
# tokens. Masked keys ("sk-abc***xyz") match too, so not even a fragment of a key is passed on.
_KEYLIKE = re.compile(
    r"(?i:\bbearer\s+)\S+"
    r"|\b(?:sk|pk|rk|ak|xai|gsk|hf)[-_][A-Za-z0-9_\-*.]{6,}"
    r"|[A-Za-z0-9_\-]{32,}"
)

# A run this long of a configured key is never written anywhere: a provider that echoes part of
# a key (24 characters from its middle, say) is redacted by value, not only by its shape.
KEY_RUN = 8


@functools.lru_cache(maxsize=8)
def _key_runs(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """Finds where any ``KEY_RUN``-character run of a secret starts (overlapping: a lookahead)."""
    grams = sorted({s[i : i + KEY_RUN] for s in secrets for i in range(len(s) - KEY_RUN + 1)})
    return re.compile("(?=(" + "|".join(map(re.escape, grams)) + "))") if grams else None


def redact_values(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every run of ``KEY_RUN`` or more characters of a configured secret replaced by
    ``[redacted]``. By value only (answer text keeps its hashes and ids), and shorter secrets
    (``api_key = "unused"``) are no secrets here."""
    pattern = _key_runs(tuple(s for s in secrets if len(s) >= KEY_RUN))
    if pattern is not None:
        spans: list[list[int]] = []
        for match in pattern.finditer(text):
            start = match.start()
            if spans and start <= spans[-1][1]:
                spans[-1][1] = start + KEY_RUN
            else:
                spans.append([start, start + KEY_RUN])
        for start, end in reversed(spans):
            text = text[:start] + "[redacted]" + text[end:]
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` (a message: an error, a log line) with configured secrets redacted by value, short
    ones whole, and everything key-shaped too."""
    secrets = [s for s in secrets if s]
    text = redact_values(text, secrets)
    for secret in secrets:
        if len(secret) < KEY_RUN:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


class RedactingFilter(logging.Filter):
    """Redacts configured secrets, by value, from every record of the loggers it is added to
    (not by shape: a log line's stream ids and user ids stay readable)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = redact_values(message, self.secrets)
            if clean != message:
                record.msg, record.args = clean, None
        return True


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


class StreamRedactor:
    """Redacts configured secrets, by value, from text that goes out in pieces (an answer's deltas),
    holding nothing back: it remembers the last ``KEY_RUN - 1`` characters that went out, and a run
    of a key that began in them has its part in the new piece redacted. So at most ``KEY_RUN - 1``
    characters of a run ever reach the client, however the run is split."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._pattern = _key_runs(tuple(s for s in secrets if len(s) >= KEY_RUN))
        self._sent = ""  # the last characters that went out, as the provider wrote them

    def feed(self, text: str) -> str:
        """``text``, with every part of a key run in it redacted."""
        if self._pattern is None:
            return text
        seen = self._sent + text
        offset = len(self._sent)
        self._sent = seen[-(KEY_RUN - 1) :]
        spans: list[list[int]] = []
        for match in self._pattern.finditer(seen):
            start, end = max(match.start(), offset) - offset, match.start() + KEY_RUN - offset
            if spans and start <= spans[-1][1]:
                spans[-1][1] = end
            else:
                spans.append([start, end])
        for start, end in reversed(spans):
            text = text[:start] + "[redacted]" + text[end:]
        return text
