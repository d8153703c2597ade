"""The kernel's way to this Jupyter server's cellmage endpoint: where it is, which credentials,
and one answer as a stream of events (httpx + httpx-sse). Never a provider, never a key.

httpx is imported on first use, not at ``%load_ext``.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

URL_ENV = "CELLMAGE_SERVER_URL"
TOKEN_ENV = "CELLMAGE_SERVER_TOKEN"


class CellmageClientError(Exception):
    """Something a person must act on; shown as one line, never as a traceback."""


class ServerNotFound(CellmageClientError):
    """No server is known or reachable."""


class RequestRefused(CellmageClientError):
    """The server refused the request before answering (4xx/5xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)  # the server's message says what the status means
        self.status = status


@dataclass(frozen=True)
class Endpoint:
    url: str  # the Jupyter server's URL, with its base URL, ending in "/"
    token: str | None

    @property
    def api(self) -> str:
        return self.url + "cellmage/api/"


def find_endpoint(environ: Mapping[str, str] = os.environ) -> Endpoint:
    """The server this kernel belongs to, from the environment the server extension gave it
    (or an explicit ``CELLMAGE_SERVER_URL`` + ``CELLMAGE_SERVER_TOKEN``); under JupyterHub the
    single-user server's own URL and API token serve as well."""
    url = environ.get(URL_ENV) or environ.get("JUPYTERHUB_SERVICE_URL")
    token = environ.get(TOKEN_ENV) or environ.get("JUPYTERHUB_API_TOKEN") or None
    if not url:
        raise ServerNotFound(
            "this kernel does not know which Jupyter server to ask. Start it from JupyterLab or "
            "Notebook on a server with cellmage-server installed, or set CELLMAGE_SERVER_URL "
            "(e.g. http://127.0.0.1:8888/) and CELLMAGE_SERVER_TOKEN."
        )
    return Endpoint(url.rstrip("/") + "/", token)


class Client:
    """One HTTP connection pool to the server, made on first use."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._http: Any = None

    def _client(self) -> Any:
        if self._http is None:
            import httpx

            headers = {"Authorization": f"token {self.endpoint.token}"} if self.endpoint.token else {}
            # Reads may wait: the server pings a silent stream every 15 s at most.
            timeout = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=5.0)
            self._http = httpx.Client(base_url=self.endpoint.api, headers=headers, timeout=timeout, trust_env=False)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _unreachable(self, error: Exception) -> ServerNotFound:
        return ServerNotFound(
            f"cannot reach the Jupyter server at {self.endpoint.url} ({error}). Is it still running? "
            "Kernels started elsewhere need CELLMAGE_SERVER_URL and CELLMAGE_SERVER_TOKEN."
        )

    @staticmethod
    def _refused(status: int, body: bytes) -> RequestRefused:
        try:
            message = json.loads(body).get("message") or ""
        except (ValueError, AttributeError):
            message = ""
        if status == 404 and not message:
            message = "this Jupyter server has no cellmage endpoint: is cellmage-server installed and enabled there?"
        if status == 403 and not message:
            message = "the Jupyter server refused this kernel's credentials"
        return RequestRefused(status, message or "the server refused the request")

    def get(self, path: str) -> Any:
        import httpx

        try:
            response = self._client().get(path)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        if response.status_code != 200:
            raise self._refused(response.status_code, response.content)
        return response.json()

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """POST or PUT a JSON body; the JSON answer."""
        import httpx

        try:
            response = self._client().request(method, path, json=body)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        if response.status_code not in (200, 201):
            raise self._refused(response.status_code, response.content)
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.send("POST", path, body)

    def delete(self, path: str) -> None:
        import httpx

        try:
            response = self._client().delete(path)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        if response.status_code not in (200, 204):
            raise self._refused(response.status_code, response.content)

    @contextmanager
    def answer(self, body: dict[str, Any]) -> Iterator[Answer]:
        """POST chat; the :class:`Answer` gives its events. Leaving the block closes the stream,
        which makes the server cancel the provider's request if the answer was not done."""
        import httpx

        try:
            with self._client().stream("POST", "chat", json=body) as response:
                if response.status_code != 200:
                    raise self._refused(response.status_code, response.read())
                answer = Answer(response)
                try:
                    yield answer
                finally:
                    answer.abort()
        except httpx.TransportError as e:
            raise self._unreachable(e) from None


Event = tuple[str, dict[str, Any]]


class Answer:
    """One answer's stream, read on a thread so that the kernel's thread can show text on a timer
    while the network is quiet, and stop at once (the stop button) while a read is blocked."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._thread: threading.Thread | None = None

    def events(self, wait: Callable[[], float | None]) -> Iterator[Event | None]:
        """The answer's events as (name, data), in order, and ``None`` whenever ``wait()`` seconds
        pass without one (``wait()`` returning None waits for the next event)."""
        from httpx_sse import EventSource

        inbox: queue.Queue[Event | BaseException | None] = queue.Queue()

        def read() -> None:
            try:
                for sse in EventSource(self._response).iter_sse():
                    inbox.put((sse.event, json.loads(sse.data)))
                inbox.put(None)  # the stream ended
            except BaseException as e:  # handed to the kernel's thread, which raises it
                inbox.put(e)

        self._thread = threading.Thread(target=read, name="cellmage-answer", daemon=True)
        self._thread.start()
        while True:
            try:
                item = inbox.get(timeout=wait())
            except queue.Empty:
                yield None
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def abort(self) -> None:
        """Close the connection now, waking the reading thread; the server then cancels the answer."""
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # close() alone would not wake a blocked recv()
            except OSError:
                pass  # already closed
        if self._thread is not None:
            self._thread.join(timeout=5)
