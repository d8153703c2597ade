"""HTTP/1.1 as the lean path speaks it to a provider, as pure functions over bytes (no I/O): the
request it sends, the response head it reads, and a chunked body decoded as it comes.

Every part is bounded: a head by :data:`MAX_HEAD_BYTES`, a chunk's size line by
:data:`MAX_LINE_BYTES`, trailers by :data:`MAX_HEAD_BYTES`; a provider past one is a
:class:`WireError`, which the connection turns into httpx's ``RemoteProtocolError`` (the package's other modules).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_LINE_BYTES = 4 * 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")
MAX_SIZE_DIGITS = 16  # a chunk's size in hexadecimal digits (16: 2**64 - 1)
_BAD_IN_VALUE = ("\r", "\n", "\0")


class WireError(ValueError):
    """The provider broke HTTP/1.1 (the message says how; it never holds a header's value)."""


_PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # what a path keeps as it is (RFC 3986); the rest is %-encoded


@dataclass(frozen=True)
class Target:
    """Where a request goes: the connection's (scheme, host, port), the Host header, the request
    target, and the Basic credentials of a URL's userinfo (as httpx sends them)."""

    scheme: str
    host: str
    port: int
    authority: str
    target: str
    basic: str | None

    @property
    def key(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def target_of(url: str) -> Target:
    """The parts of an http(s) URL a request needs; a space, a non-ASCII character or a NUL in
    its path or query is %-encoded, and its userinfo never reaches the Host header."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in ("http", "https") or not host:
        raise WireError(f"the provider's URL must be http:// or https:// with a host, not {scheme or 'none'}://")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise WireError("the provider's URL has a port that is not a number") from None
    authority = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        authority += f":{port}"
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    basic = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        basic = "Basic " + base64.b64encode(pair).decode()
    return Target(scheme, host, port, authority, target, basic)


def request_head(method: str, target: str, host: str, headers: Mapping[str, str], body_length: int) -> bytes:
    """The head of a request with a body of ``body_length`` bytes; a header name or value that
    could split it (a line break, a NUL) is refused, naming the header, never its value."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if not name.isascii() or not name.replace("-", "").isalnum():
            raise WireError(f"the header name {name!r} is not a token")
        if any(c in value for c in _BAD_IN_VALUE):
            raise WireError(f"the {name} header holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {body_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Headers:
    """A response's headers, by lower-case name; repeated names joined by ``", "``."""

    __slots__ = ("_values",)

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        values: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            values[key] = f"{values[key]}, {value}" if key in values else value
        self._values = values

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __repr__(self) -> str:  # names only: a value may be a provider's secret echo
        return f"Headers({sorted(self._values)})"


@dataclass(frozen=True)
class Head:
    status: int
    headers: Headers
    version: str  # "HTTP/1.1" or "HTTP/1.0"

    @property
    def informational(self) -> bool:  # 1xx: another head follows (101 is never asked for)
        return 100 <= self.status < 200

    @property
    def ambiguous(self) -> bool:
        """Both a Content-Length and a Transfer-Encoding: the body is read as chunked (RFC 9112),
        but a connection whose framing two parties may read differently is not used again."""
        return "transfer-encoding" in self.headers and "content-length" in self.headers

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.headers.get("connection") or "").split(",")}
        return "keep-alive" in tokens if self.version == "HTTP/1.0" else "close" not in tokens

    def framing(self) -> tuple[str, int | None]:
        """How the body ends: ("none", 0), ("chunked", None), ("length", n) or ("close", None)."""
        if self.status in (204, 304):
            return "none", 0
        coding = self.headers.get("transfer-encoding")
        if coding is not None:
            codings = [c.strip().lower() for c in coding.split(",") if c.strip()]
            if codings[-1:] != ["chunked"]:
                return "close", None  # some other coding last: the body ends when the connection does
            if any(c != "chunked" for c in codings[:-1]):
                raise WireError(f"the response's Transfer-Encoding ({', '.join(codings)}) is not one this server reads")
            return "chunked", None
        length = self.headers.get("content-length")
        if length is None:
            return "close", None
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not _digits(value := values.pop()):
            raise WireError("the response's Content-Length is not a number")
        return "length", int(value)


def parse_head(raw: bytes) -> Head:
    """A response head: the status line and header lines, ``raw`` ending with the blank line."""
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError:  # (latin-1 decodes every byte; kept for clarity)
        raise WireError("the response head is not text") from None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not _digits(code) or len(code) != 3 or rest[3:4] not in ("", " "):
        raise WireError("the response does not start with an HTTP/1.1 status line")
    pairs = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise WireError("the response folds a header over two lines")
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise WireError("the response has a header line without a name")
        pairs.append((name, value.strip(" \t")))
    head = Head(int(code), Headers(pairs), version)
    head.framing()  # a head whose body cannot be framed is refused with it
    return head


def _digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes "²" and other digits that ``int`` refuses)."""
    return text.isascii() and text.isdigit()


class ChunkedBody:
    """A chunked body decoded as its bytes come: :meth:`feed` gives the data so far, ``done`` turns
    True at the last chunk's end, and ``extra`` holds what came after it (a connection that
    carries bytes past its response's end is not used again)."""

    def __init__(self) -> None:
        self._line = b""  # a size line (or a trailer line) cut by a read
        self._left = 0  # bytes of the current chunk's data still to come
        self._crlf = 0  # bytes of the CR LF after a chunk's data still to come
        self._trailers = -1  # bytes of trailers read, once the last chunk came; -1 before
        self.done = False
        self.extra = b""

    def feed(self, data: bytes) -> bytes:
        if not (self._line or self._left or self._crlf) and self._trailers < 0:
            # The common read on a paced answer: one whole chunk, its size line, data and CR LF.
            newline = data.find(b"\n", 0, 20)
            if newline > 0:
                size = data[: newline - 1] if data[newline - 1] == 13 else data[:newline]
                if size and len(size) <= MAX_SIZE_DIGITS and _HEX.issuperset(size):
                    n = int(size, 16)
                    if n and len(data) == newline + n + 3 and data.endswith(b"\r\n"):
                        return data[newline + 1 : newline + 1 + n]
        if self.done:
            self.extra += data
            return b""
        out = []
        pos, end = 0, len(data)
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                out.append(data[pos : pos + take])
                self._left -= take
                pos += take
                if not self._left:
                    self._crlf = 2
                continue
            if self._crlf:
                expected = b"\r\n"[2 - self._crlf :]
                got = data[pos : pos + len(expected)]
                if not expected.startswith(got):
                    raise WireError("a chunk's data does not end with CR LF")
                self._crlf -= len(got)
                pos += len(got)
                continue
            newline = data.find(b"\n", pos)
            if newline < 0:
                self._line += data[pos:]
                if len(self._line) > (MAX_HEAD_BYTES if self._trailers >= 0 else MAX_LINE_BYTES):
                    raise WireError("a chunk's size line (or its trailers) has no end")
                break
            line = self._line + data[pos:newline]
            self._line = b""
            pos = newline + 1
            line = line[:-1] if line.endswith(b"\r") else line
            if self._trailers >= 0:  # after the last chunk: trailer lines, then a blank line
                self._trailers += len(line) + 2
                if not line:
                    self.done = True
                    self.extra = data[pos:]
                    break
                if self._trailers > MAX_HEAD_BYTES:
                    raise WireError("the body's trailers have no end")
                continue
            size = line.split(b";", 1)[0].strip(b" \t")
            if not size or len(size) > MAX_SIZE_DIGITS or not _HEX.issuperset(size):
                raise WireError("a chunk's size is not a hexadecimal number")
            self._left = int(size, 16)
            if not self._left:
                self._trailers = 0
        return b"".join(out) if len(out) != 1 else out[0]
