"""A provider that echoes a configured key in its answer text: no run of it reaches the client, even
split across deltas, and the rest of the text arrives whole and in order."""

from __future__ import annotations

import pytest

from cellmage_server.safety.redaction import KEY_RUN, StreamRedactor

from .conftest import SECRET
from .fake_upstream import Script

KEY = "sk-live-0123456789abcdefghijklmnop"


@pytest.mark.parametrize("size", [1, 3, 7, 8, 9, 50])
def test_a_key_split_across_pieces_never_goes_out(size):
    text = f"Here is the key you gave me: {KEY}. And a hash: 0123abcd is fine."
    redactor = StreamRedactor([KEY])
    out = "".join(redactor.feed(text[i : i + size]) for i in range(0, len(text), size))
    assert not any(KEY[i : i + KEY_RUN] in out for i in range(len(KEY) - KEY_RUN + 1))
    assert out.startswith("Here is the key you gave me: ") and out.endswith(". And a hash: 0123abcd is fine.")
    assert "[redacted]" in out


def test_nothing_is_held_back_and_at_most_seven_characters_of_a_run_go_out():
    redactor = StreamRedactor([KEY])
    # Each piece goes out at once; the one that would make a run of 8 is redacted
    assert [redactor.feed(p) for p in ("a", "b", "sk-live", "-0", " word ")] == ["a", "b", "sk-live", "[redacted]", " word "]


async def test_the_stream_never_carries_a_run_of_the_servers_key(api, fake_upstream):
    # The provider echoes the middle of the key, cut into 5-character deltas
    middle = SECRET[5:29]
    answer = f"You asked about {middle} — done."
    fake_upstream.script(Script(chunks=[answer[i : i + 5] for i in range(0, len(answer), 5)]))

    result = await api.stream({"prompt": "echo"})

    assert result.names()[-1] == "done"
    raw = "".join(e.data["text"] for e in result.events if e.name == "delta")
    assert not any(SECRET[i : i + KEY_RUN] in raw for i in range(len(SECRET) - KEY_RUN + 1))
    assert raw.startswith("You asked about ") and "[redacted]" in raw and raw.endswith(" — done.")
