"""Answers with awkward text come out byte-exact through the relay, read by httpx-sse and by a
parser written from the SSE spec, however the bytes are split on the wire."""

from __future__ import annotations

import json

import pytest

from .conftest import PROVIDER_PATHS
from .fake_upstream import Script
from .sse_spec import parse

# The contract holds on both provider paths, against the same fake upstream.
pytestmark = pytest.mark.parametrize("provider_path", PROVIDER_PATHS)

AWKWARD = [
    "line one\r\nline two",
    "carriage\rreturn",
    "blank\n\nlines\n\n\n",
    "\n leading newline and  spaces",
    "   indented",
    "data: looks like a field\ndata: again",
    ": looks like a comment\n:another",
    "event: fake\nid: 7\nretry: 1",
    "unicode separators \u2028 and \u2029 and next-line \u0085 here",
    "multibyte: héllo wörld — 日本語 テキスト 🙂👩‍💻",
    "tabs\tand\x0bvertical\x0cform feed",
    "a NUL\x00in the middle",
    "trailing backslash \\",
    '{"json": "inside", "n": [1, 2]}',
]


@pytest.mark.parametrize("split", [None, 1], ids=["whole writes", "1-byte upstream writes"])
async def test_awkward_text_survives_the_relay_byte_exact(api, fake_upstream, split):
    fake_upstream.script(Script(chunks=AWKWARD, split_bytes=split))
    expected = "".join(AWKWARD)

    # Read by httpx-sse
    result = await api.stream({"prompt": "x"})
    assert result.text().encode() == expected.encode()

    # Read by the spec parser, fed the raw response one byte at a time
    fake_upstream.script(Script(chunks=AWKWARD, split_bytes=split))
    async with api.open_stream({"prompt": "x"}) as response:
        raw = await response.aread()
    events = parse(raw[i : i + 1] for i in range(len(raw)))
    text = "".join(json.loads(data)["text"] for name, data in events if name == "delta")
    assert text.encode() == expected.encode()
    assert [name for name, _ in events][-1] == "done"


@pytest.mark.parametrize("text", [*AWKWARD, "", "\ud800 lone surrogate", '"quoted" \\ back', "x" * 10_000])
def test_the_delta_frame_is_the_sse_encoders_byte_for_byte(text, provider_path):
    from cellmage_server.contract import delta_frame, frame

    assert delta_frame(text) == frame("delta", {"text": text})
