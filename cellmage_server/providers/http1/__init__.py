"""The lean path's streaming requests: HTTP/1.1 on an asyncio protocol, with a keep-alive pool.

On a paced answer every chunk is its own network read, and through httpx each read went through
httpx's and httpcore's stream layers and h11's state machine: a quarter of the server's CPU at 200
paced streams, in a profile (py-spy under bench/relay_bench.py), more than the relay's own work.
Here a read is one ``data_received`` into a buffer and one pass of :class:`ChunkedBody`
(wire.py). Only the requests that stream (``chat/completions`` on both endpoints) come
here; the rest (embeddings) stay on httpx.

Failures are httpx's exception types (``ConnectError``, ``ConnectTimeout``, ``ReadError``,
``RemoteProtocolError``, ``WriteError``, ``WriteTimeout``, ``LocalProtocolError``), so the
providers word them as before. What is held is bounded: the read buffer pauses the socket past
:data:`HIGH_WATER` (a reader that stops reading stops the provider: back-pressure), a response
head and an error body have their bounds, and at most ``max_idle`` connections wait in the pool,
each for ``idle_seconds``. A connection goes back to the pool only when its response ended exactly
where its framing said, and it is checked (no bytes waiting, not closed) before it is used again.
"""

from .connection import HIGH_WATER
from .pool import StreamPool
from .response import DECODED_PIECE, ERROR_BODY_BYTES, Response

__all__ = ["DECODED_PIECE", "ERROR_BODY_BYTES", "HIGH_WATER", "Response", "StreamPool"]
