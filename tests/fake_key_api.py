"""A fake of LiteLLM Proxy's key management API (``/key/generate``, ``/key/delete``) that keeps its
rules, as LiteLLM Proxy 1.106.2 answers them with its database
(``litellm/proxy/management_endpoints/key_management_endpoints.py``):

- only the master key may call it (``Authorization: Bearer <master>``);
- a ``key_alias`` is unique across all keys: a second one is refused with 400 and LiteLLM's words
  (``_enforce_unique_key_alias``);
- ``/key/generate`` answers the key itself (``key``), its hash (``token_id``, and ``token``) and an
  abbreviation (``key_name``); the hash is what the database keeps (sha256 of the key);
- ``/key/delete`` takes ``keys`` (keys or their hashes) or, only when ``keys`` is absent,
  ``key_aliases``; when none of them is found it answers 404 (``No keys found``); it answers the
  list it was given, not what it found.

A real HTTP server on 127.0.0.1 in its own thread and loop, so sync tests (the hub suite) and async
ones both use it. ``keys`` holds what the "database" has now; ``seen`` every request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from tornado import httpserver, web
from tornado.netutil import bind_sockets


def hash_token(key: str) -> str:
    """LiteLLM's ``hash_token``: the key's sha256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def _error(handler: web.RequestHandler, status: int, message: str, type_: str, param: str | None) -> None:
    # ProxyException's body, as litellm's exception handler writes it.
    handler.set_status(status)
    handler.finish({"error": {"message": message, "type": type_, "param": param, "code": str(status)}})


@dataclass
class Seen:
    action: str  # "generate" or "delete"
    body: dict[str, Any]
    authorization: str
    status: int = 0


@dataclass
class FakeKeyAPI:
    master_key: str = "sk-master-for-key-tests"
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # hash -> the key's row
    seen: list[Seen] = field(default_factory=list)
    refuse: tuple[int, str] | None = None  # answer everything so (status, text): a gateway without its database
    delay: float = 0.0  # seconds before each answer
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: httpserver.HTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def aliases(self) -> set[str]:
        return {row["key_alias"] for row in self.keys.values() if row.get("key_alias")}

    def add(self, alias: str, user_id: str) -> str:
        """A key in the database from before (e.g. left by a hub that lost track of it); its hash."""
        key = "sk-" + secrets.token_urlsafe(16)
        self.keys[hash_token(key)] = {"key_alias": alias, "user_id": user_id}
        return hash_token(key)

    def generate(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        alias = body.get("key_alias")
        if alias is not None and alias in self.aliases():
            return 400, {"error": {
                "message": f"Key with alias '{alias}' already exists. Unique key aliases across all keys are required.",
                "type": "bad_request_error", "param": "key_alias", "code": "400"}}
        key = "sk-" + secrets.token_urlsafe(16)
        token = hash_token(key)
        self.keys[token] = {"key_alias": alias, "user_id": body.get("user_id"), "body": body}
        return 200, {"key": key, "key_name": f"sk-...{key[-4:]}", "key_alias": alias, "token_id": token,
                     "token": token, "user_id": body.get("user_id"), "expires": None}

    def delete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not body.get("keys") and not body.get("key_aliases"):
            return 422, {"detail": [{"type": "value_error", "loc": ["body"],
                                     "msg": "Value error, At least one of 'keys' or 'key_aliases' must be provided."}]}
        if body.get("keys"):
            wanted = {k if not k.startswith("sk-") else hash_token(k) for k in body["keys"]}
            found = [t for t in self.keys if t in wanted]
            answered = body["keys"]
        else:
            found = [t for t, row in self.keys.items() if row.get("key_alias") in body["key_aliases"]]
            answered = body["key_aliases"]
        if not found:
            # An HTTPException(404, detail={"error": "No keys found"}) turned into a ProxyException.
            return 404, {"error": {"message": "{'error': 'No keys found'}", "type": "internal_server_error",
                                   "param": None, "code": "404"}}
        for token in found:
            del self.keys[token]
        return 200, {"deleted_keys": answered}

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeKeyAPI:
        sockets = bind_sockets(self.port, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._server = httpserver.HTTPServer(web.Application([(r"/key/(generate|delete)", _Keys, {"fake": self})]))
            self._server.add_sockets(sockets)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-key-api", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake key API did not start")
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.stop()
            await server.close_all_connections()
            loop.stop()

        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shutdown()))
        if self._thread is not None:
            self._thread.join(10)


class _Keys(web.RequestHandler):
    def initialize(self, fake: FakeKeyAPI) -> None:
        self.fake = fake

    async def post(self, action: str) -> None:
        await asyncio.sleep(self.fake.delay)
        body = json.loads(self.request.body or b"{}")
        seen = Seen(action, body, self.request.headers.get("Authorization", ""))
        self.fake.seen.append(seen)
        if self.fake.refuse is not None:
            seen.status, text = self.fake.refuse
            self.set_status(seen.status)
            self.finish(text)
        elif seen.authorization != f"Bearer {self.fake.master_key}":
            seen.status = 401
            _error(self, 401, "Authentication Error, Invalid proxy server token passed.", "auth_error", "None")
        else:
            seen.status, answer = getattr(self.fake, action)(body)
            self.set_status(seen.status)
            self.finish(answer)
