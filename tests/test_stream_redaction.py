"""A provider that echoes a configured key in its answer text: no run of it reaches the client, even
split across deltas, and the rest of the text arrives whole and in order."""

from __future__ import annotations

import pytest

from cellmage_server.errors import KEY_RUN, StreamRedactor

from .conftest import SECRET
from .fake_upstream import Script

KEY = "sk-live-0123456789abcdefghijklmnop"


@pytest.mark.parametrize("size", [1, 3, 7, 8, 9, 50])
def test_a_key_split_across_pieces_never_goes_out(size):
    text = f"Here is the key you gave me: {KEY}. And a hash: 0123abcd is fine."
    redactor = StreamRedactor([KEY])
    out = "".join(redactor.feed(text[i : i + size]) for i in range(0, len(text), size)) + redactor.end()
    assert not any(KEY[i : i + KEY_RUN] in out for i in range(len(KEY) - KEY_RUN + 1))
    assert out.startswith("Here is the key you gave me: [redacted]") and out.endswith(". And a hash: 0123abcd is fine.")


def test_without_secrets_nothing_is_held_back():
    redactor = StreamRedactor(["short"])
    assert redactor.feed("word ") == "word "


async def test_the_stream_never_carries_a_run_of_the_servers_key(api, fake_upstream):
    # The provider echoes the middle of the key, cut into 5-character deltas
    middle = SECRET[5:29]
    answer = f"You asked about {middle} — done."
    fake_upstream.script(Script(chunks=[answer[i : i + 5] for i in range(0, len(answer), 5)]))

    result = await api.stream({"prompt": "echo"})

    assert result.names()[-1] == "done"
    raw = "".join(e.data["text"] for e in result.events if e.name == "delta")
    assert not any(SECRET[i : i + KEY_RUN] in raw for i in range(len(SECRET) - KEY_RUN + 1))
    assert raw.startswith("You asked about [redacted]") and raw.endswith(" — done.")
