"""The litellm provider path: every provider litellm knows (Anthropic, Bedrock, Vertex, ...).

litellm costs seconds to import and a few hundred milliseconds on its first call, so it is loaded
and warmed in a background thread when the server starts (only if a configured model needs it):
the server answers at once, and the first litellm answer does not wait for the import unless it
comes in the first seconds. Nothing here imports litellm at module load.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx

from ..contract import Finish, ProviderEvent, checked_usage
from ..errors import UpstreamError
from ..safety.redaction import redact
from . import ProviderCall, classify, close_shielded, failure_message

log = logging.getLogger(__name__)


def _import_and_warm() -> Any:
    """Import litellm offline, make its first call once, and freeze the objects it created."""
    started = time.monotonic()
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch the price map at import
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # a parameter a provider does not take is dropped, not an error
    litellm.telemetry = False

    async def first_call() -> None:
        # The first acompletion imports the streaming machinery lazily; pay for it here.
        response = await litellm.acompletion(
            model="openai/warm-up", messages=[{"role": "user", "content": "hi"}], stream=True, mock_response="ok"
        )
        async for _ in response:
            pass

    asyncio.run(first_call())
    # litellm leaves hundreds of thousands of long-lived objects; keeping them out of the
    # collector's generations stops full collections from pausing the event loop for 100+ ms.
    gc.collect()
    gc.freeze()
    log.info("cellmage: litellm %s loaded in %.1f s", getattr(litellm, "__version__", ""), time.monotonic() - started)
    return litellm


def provider_finished(response: Any) -> bool:
    """Whether the provider itself said the answer was finished. litellm ends a stream that closes
    cleanly with a finish reason even when the provider sent none (a stream cut short by a proxy
    or a crash), inventing "stop"; its stream wrapper records whether the provider sent one, and
    uses that record itself to tell a broken stream from a finished one. A litellm without that
    record is trusted as it is."""
    received = getattr(response, "received_finish_reason", _UNRECORDED)
    if received is _UNRECORDED:
        return True
    return received is not None or getattr(response, "intermittent_finish_reason", None) is not None


_UNRECORDED = object()


def _error_code(error: BaseException, exceptions: Any, detail: str) -> str:
    if isinstance(error, exceptions.ContextWindowExceededError):
        return "context_length"
    if isinstance(error, exceptions.ContentPolicyViolationError):
        return "content_filter"
    if isinstance(error, (exceptions.AuthenticationError, exceptions.PermissionDeniedError)):
        return "auth"
    if isinstance(error, exceptions.RateLimitError):
        return "rate_limited"
    if isinstance(error, exceptions.Timeout):
        return "timeout"
    kind = " ".join(str(getattr(error, name, None) or "") for name in ("code", "type", "body"))
    return classify(getattr(error, "status_code", None), f"{kind} {detail}")


class LiteLLMProvider:
    """Streams through ``litellm.acompletion``; the same events and errors as the lean path."""

    def __init__(self, *, connect_timeout: float, secrets: Iterable[str] = ()) -> None:
        self._connect_timeout = connect_timeout
        self._secrets = [s for s in secrets if s]
        self._loaded: concurrent.futures.Future[Any] | None = None
        self._lock = threading.Lock()

    def start_loading(self) -> None:
        """Import litellm in a background thread (once); returns at once."""
        with self._lock:
            if self._loaded is not None:
                return
            self._loaded = concurrent.futures.Future()

        def load(future: concurrent.futures.Future[Any] = self._loaded) -> None:
            try:
                future.set_result(_import_and_warm())
            except BaseException as e:  # reported to every request that needs litellm
                future.set_exception(e)

        threading.Thread(target=load, name="cellmage-litellm-import", daemon=True).start()

    async def loaded(self) -> Any:
        """litellm, once the background import has finished (starting it if need be)."""
        self.start_loading()
        assert self._loaded is not None
        try:
            # Shielded: a cancelled answer must not cancel the import every later answer needs.
            return await asyncio.shield(asyncio.wrap_future(self._loaded))
        except ImportError as e:
            raise UpstreamError("upstream", f"litellm cannot be loaded on this server: {e}") from None

    async def aclose(self) -> None:
        pass  # litellm owns its HTTP clients

    async def stream(self, call: ProviderCall) -> AsyncIterator[ProviderEvent]:
        litellm = await self.loaded()
        kwargs: dict[str, Any] = {
            "model": call.model,
            "messages": call.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": call.max_tokens,
            # A connect timeout only: the relay watches first-token, gap and total time itself.
            "timeout": httpx.Timeout(None, connect=self._connect_timeout),
            "num_retries": 0,
        }
        kwargs.update(call.options)
        if call.temperature is not None:
            kwargs["temperature"] = call.temperature
        if call.user:
            kwargs["user"] = call.user
        if call.api_base is not None:
            kwargs["api_base"] = call.api_base
        if call.api_key is not None:
            kwargs["api_key"] = call.api_key.get_secret_value()

        response = None
        finish: str | None = None
        answered = False
        try:
            response = await litellm.acompletion(**kwargs)
            async for chunk in response:
                choices = chunk.choices
                if choices:
                    choice = choices[0]
                    text = choice.delta.content
                    if text:
                        answered = True
                        yield text
                    if choice.finish_reason:
                        finish = choice.finish_reason
                usage = getattr(chunk, "usage", None)
                if usage:
                    try:
                        counts = (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
                        yield checked_usage(*counts)
                    except (AttributeError, ValueError):
                        detail = "it sent token counts that are not counts"
                        message = failure_message("upstream", call, None, detail, mid_answer=True)
                        raise UpstreamError("upstream", redact(message, self._secrets)) from None
        except UpstreamError:
            raise
        except Exception as e:  # litellm's exceptions, and plain ones from some provider transforms
            raise self._fail(call, e, litellm.exceptions, answered) from None
        finally:
            if response is not None and hasattr(response, "aclose"):
                await close_shielded(response.aclose())  # the provider's HTTP response, also on cancel
        if finish is None or not provider_finished(response):
            raise UpstreamError("upstream", "The provider's stream ended before the answer was finished.")
        yield Finish(finish)

    def _fail(self, call: ProviderCall, error: BaseException, exceptions: Any, mid_answer: bool) -> UpstreamError:
        detail = str(getattr(error, "message", "") or error)
        code = _error_code(error, exceptions, detail)
        # litellm gives connection failures and broken streams a made-up status 500.
        connection = isinstance(error, exceptions.APIConnectionError) or "Connection error" in detail
        status = None if mid_answer or connection else getattr(error, "status_code", None)
        if connection and not mid_answer:
            where = call.api_base or "its public API"
            detail = f"cannot connect to the provider at {where}: {detail}"
        message = failure_message(code, call, status, detail, mid_answer=mid_answer)
        return UpstreamError(code, redact(message, self._secrets))
