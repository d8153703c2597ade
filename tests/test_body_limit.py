"""A body over ``limits.max_prompt_bytes`` (4096 here) is refused before the server holds it: by
its Content-Length before any of it is read, and as it streams in when it has none."""

from __future__ import annotations

import asyncio

import httpx

BIG = 400 * 1024 * 1024  # what the client claims, and would send


async def _raw(port: int, request: bytes, body_pieces: int, piece: bytes) -> tuple[bytes, int]:
    """Send ``request`` then up to ``body_pieces`` pieces while the server lets us; return what it
    answered and how many body bytes got out before it closed or answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        writer.write(request)
        for _ in range(body_pieces):
            writer.write(piece)
            try:
                await asyncio.wait_for(writer.drain(), 2)
            except (ConnectionError, asyncio.TimeoutError):
                break
            sent += len(piece)
            if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]  # the answer came
                break
        answer = await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
    return answer, sent


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(api, fake_upstream, jp_http_port, jp_base_url, jp_auth_header):
    head = (
        f"POST {jp_base_url}cellmage/api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {jp_auth_header['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {BIG}\r\n\r\n"
    ).encode()

    # When the client sends nothing of its body yet
    answer, _ = await _raw(jp_http_port, head, 0, b"")

    # Then the answer is already 413, with the contract's JSON error
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 413 " in status_line, answer[:200]
    assert b"at most 4096" in rest
    assert fake_upstream.received == []


async def test_a_chunked_body_is_cut_off_as_it_grows_past_the_limit(api, fake_upstream, jp_http_port, jp_base_url, jp_auth_header):
    head = (
        f"POST {jp_base_url}cellmage/api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {jp_auth_header['Authorization']}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"1000\r\n" + b"x" * 0x1000 + b"\r\n"  # 4 KiB chunks

    # When the client keeps sending (up to 400 MB)
    answer, sent = await _raw(jp_http_port, head, BIG // 0x1000, piece)

    # Then the server answered 413 and stopped reading long before the end
    assert b" 413 " in answer.partition(b"\r\n")[0], answer[:200]
    assert sent < 32 * 1024 * 1024
    assert fake_upstream.received == []


async def test_a_body_within_the_limit_still_works(api, fake_upstream):
    async with httpx.AsyncClient(trust_env=False, headers=api.headers) as c:
        response = await c.post(api.url("chat"), json={"prompt": "y" * 3000, "stream": False})
    assert response.status_code == 200 and response.json()["text"] == "Hello, world"
    assert fake_upstream.received[0].body["messages"][-1]["content"] == "y" * 3000
