"""Redaction: configured secrets (and anything key-shaped) never leave the server in what it
writes of its own: messages, logs, stored turns, answer deltas.

Pure, and no heavier than ``re`` to import.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable

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


# A credential in a URL's query (``?token=…``, ``&api_key=…``): what jupyter-server's access log
# scrubs, scrubbed from every line (tornado's own warnings print the whole URL).
_QUERY_CREDENTIAL = re.compile(r"(?i)([?&](?:[a-z_]*token|[a-z_]*key|auth|code|password|secret|xsrf)=)[^&\s#\"']*")


class RedactingFilter(logging.Filter):
    """Redacts secrets, by value, from every record of the loggers it is added to: the configured
    provider keys, and the server's own credentials (the kernels' scoped key, the server's token,
    :meth:`add`); and credentials in any URL query by shape. Not by shape otherwise: a log line's
    stream ids and user ids stay readable."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def add(self, *values: str | None) -> None:
        """Redact these too (credentials known after the configuration: only long ones)."""
        for value in values:
            if value and len(value) >= KEY_RUN and value not in self.secrets:
                self.secrets.append(value)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_values(message, self.secrets) if self.secrets else message
        if "=" in clean:
            clean = _QUERY_CREDENTIAL.sub(r"\1[redacted]", clean)
        if clean != message:
            record.msg, record.args = clean, None
        return True


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
