"""The lean provider on its own, over plain HTTP and TLS, on its own HTTP/1.1 pool (http1.py)."""

from __future__ import annotations

import ssl

import pytest
import trustme

from cellmage_server.contract import Finish, Usage
from cellmage_server.providers import ProviderCall
from cellmage_server.providers.openai_compat import OpenAICompatProvider

from .fake_upstream import FakeUpstream, Script


@pytest.fixture
def tls():
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    fake = FakeUpstream(ssl_context=server_context).start()
    yield fake, client_context
    fake.stop()


def _call(url: str) -> ProviderCall:
    return ProviderCall(
        model="openai/fake", api_base=url, api_key=None, messages=[{"role": "user", "content": "hi"}], max_tokens=10
    )


async def _answer(provider: OpenAICompatProvider, url: str) -> list:
    return [event async for event in provider.stream(_call(url))]


async def test_it_streams_over_tls_and_reuses_the_connection(tls):
    fake, client_context = tls
    fake.script(Script(chunks=["sé", "cu", "re"]), Script(chunks=["again"]))
    provider = OpenAICompatProvider(connect_timeout=5, verify=client_context)
    try:
        first = await _answer(provider, fake.url)
        second = await _answer(provider, fake.url)
    finally:
        await provider.aclose()

    assert fake.url.startswith("https://")
    assert first == ["sé", "cu", "re", Usage(7, 3, 10), Finish("stop")]
    assert second[0] == "again" and second[-1] == Finish("stop")
    assert fake.received[0].peer == fake.received[1].peer  # one TLS connection, kept


async def test_an_untrusted_certificate_is_a_clear_connect_error(tls):
    fake, _ = tls
    provider = OpenAICompatProvider(connect_timeout=5)  # the system's trust store: no test CA
    try:
        with pytest.raises(Exception) as raised:
            await _answer(provider, fake.url)
    finally:
        await provider.aclose()

    assert getattr(raised.value, "code", None) == "upstream"
    assert "Cannot connect to the provider" in str(raised.value) and "CERTIFICATE" in str(raised.value).upper()
    assert fake.received == []
