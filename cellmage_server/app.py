"""The server extension: configuration in, handlers registered, kernels' environment set, clean stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
from dataclasses import dataclass, field

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join

from . import kernel_env
from .answer.board import AnswerBoard
from .answer.lifecycle import AnswerService
from .answer.plan import how_to_configure_line
from .answer.pricing import Pricing
from .answer.streams import Streams
from .collab import SharedNotebooks
from .config import ConfigError, LoadedConfig, load_config
from .errors import NotConfigured, Shutdown, quiet_expected_errors
from .personas import PersonaStore
from .providers import Provider
from .providers.openai_compat import OpenAICompatProvider
from .routes.api import API_PATH, default_handlers
from .routes.base import touch
from .routes.openai import V1_PATH, ScopedKey, v1_handlers
from .routes.openai.base import SETTINGS_KEY as SCOPED_KEY_SETTING
from .safety.redaction import RedactingFilter
from .store.history import Store, conversation_path


@dataclass
class CellmageState:
    """Everything the handlers share, built once per server in ``initialize_settings``."""

    config: LoadedConfig | None
    config_error: str | None
    personas: PersonaStore
    streams: Streams
    providers: dict[str, Provider]  # by path: "openai", and "litellm" when a model needs it
    pricing: Pricing
    store: Store | None  # conversations and the usage ledger
    board: AnswerBoard = field(default_factory=AnswerBoard)  # who follows what; busy cells
    shared: SharedNotebooks | None = None  # the live shared notebooks (real-time collaboration)
    answers: AnswerService | None = None  # every answer's lifecycle (None without a usable config)
    stopped: bool = False

    def require_config(self) -> LoadedConfig:
        """The configuration, or 503 saying why there is none usable."""
        if self.config is None:
            raise NotConfigured(
                f"CellMage is not available: {self.config_error} Fix the configuration and restart the server."
            )
        return self.config


# Loggers whose lines may carry a provider's words (besides the server's own, self.log).
REDACTED_LOGGERS = ("cellmage_server", "tornado.access", "tornado.application", "tornado.general", "LiteLLM")

SHUTDOWN_GRACE = 10.0  # seconds running answers get to write their end and be stored

FREEZE_AFTER = 10.0  # seconds after start: the other extensions' start-up work is done by then




CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"


class CellmageApp(ExtensionApp):
    """Streams LLM answers to notebooks; holds the team's provider keys."""

    name = "cellmage_server"
    load_other_extensions = True

    def initialize_settings(self) -> None:
        try:
            config: LoadedConfig | None = load_config()
            error = None
        except ConfigError as e:
            config, error = None, str(e)
            # One message, no traceback; the rest of Jupyter goes on starting.
            self.log.error("cellmage: the extension is disabled: %s", e)
        if config is None or config.settings.non_dumpable:
            kernel_env.make_non_dumpable(self.log)
        # Secrets are redacted from every line these loggers write, whoever writes it.
        self._redacting = RedactingFilter(config.secret_values() if config else ())
        for logger in self._redacted_loggers():
            logger.addFilter(self._redacting)

        if config is not None:
            settings = config.settings
            personas = PersonaStore(settings.personas_dirs)
            streams = Streams(settings.limits.max_streams_per_user)
            providers = self._providers(config)
            kernel_env.publish(self.serverapp, config.key_env_names)
            where = config.path or "CELLMAGE_* environment variables"
            if settings.models:
                self.log.info(
                    "cellmage: %d model(s) from %s; default %s",
                    len(settings.models), where, settings.resolved_default_model,
                )
            else:
                self.log.warning("%s", how_to_configure_line(config.path))
            for alias, problem in config.unavailable.items():
                self.log.warning("cellmage: model %s is unavailable: %s", alias, problem)
            for path, problem in personas.errors().items():
                self.log.warning("cellmage: persona file %s is skipped: %s", path, problem)
        else:
            personas, streams, providers = PersonaStore([]), Streams(1), {}
            kernel_env.publish(self.serverapp, ())

        pricing = Pricing()
        pricing.load_in_background()
        store = Store(config.settings.resolved_history_db) if config is not None else None
        scoped = self.settings[SCOPED_KEY_SETTING] = ScopedKey()  # minted per server start, never logged
        self._redacting.add(scoped.random_part, *self._server_credentials())
        state = CellmageState(
            config=config, config_error=error, personas=personas, streams=streams,
            providers=providers, pricing=pricing, store=store, shared=SharedNotebooks(self.serverapp),
        )
        if config is not None:
            limits = config.settings.limits
            state.board = AnswerBoard(
                max_per_answer=limits.max_followers_per_answer, max_per_user=limits.max_followers_per_user
            )
            state.answers = AnswerService(
                config=config, streams=streams, board=state.board, pricing=pricing, store=store, shared=state.shared,
                touch=lambda: touch(self.serverapp.web_app.settings),
            )
        self.settings["cellmage"] = state
        self._give_kernels_the_endpoint()
        # (self.settings holds the web app's settings here, and goes back into them after.)
        self.settings["log_function"] = quiet_expected_errors(self.settings.get("log_function"))
        if store is not None:
            # Renamed or moved notebooks keep their conversations; deleted ones lose them.
            self.serverapp.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=self._on_contents_event)

    async def _on_contents_event(self, logger: object, schema_id: str, data: dict) -> None:
        """Conversations follow their notebooks: moved with a rename, forgotten with a delete."""
        store = self.settings["cellmage"].store
        if store is None or not data.get("path"):
            return
        action, path = data.get("action"), data["path"]
        try:
            path = conversation_path(path)
            if action == "rename" and data.get("source_path"):
                await store.rename(conversation_path(data["source_path"]), path)
            elif action == "delete":
                await store.forget(path)
        except (sqlite3.Error, RuntimeError, ValueError) as e:
            self.log.warning("cellmage: could not %s the conversation of %s: %s", action, path, e)

    def _providers(self, config: LoadedConfig) -> dict[str, Provider]:
        timeouts, secrets = config.settings.timeouts, config.secret_values()
        providers: dict[str, Provider] = {
            "openai": OpenAICompatProvider(
                connect_timeout=timeouts.connect,
                secrets=secrets,
                max_answer_bytes=config.settings.limits.max_answer_bytes,
            )
        }
        if any(entry.path == "litellm" for entry in config.settings.models.values()):
            from .providers.litellm import LiteLLMProvider  # the module is light; litellm itself is not

            litellm = LiteLLMProvider(connect_timeout=timeouts.connect, secrets=secrets)
            litellm.start_loading()  # in a background thread: the server is ready at once
            providers["litellm"] = litellm
        return providers

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            (url_path_join(API_PATH, pattern), handler) for pattern, handler in default_handlers
        )
        self.handlers.extend((url_path_join(V1_PATH, pattern), handler) for pattern, handler in v1_handlers)

    def _server_credentials(self) -> list[str]:
        """The server's own credentials, which kernels and scripts may put in a URL."""
        import os

        token = getattr(getattr(self.serverapp, "identity_provider", None), "token", None)
        return [t for t in (token, os.environ.get("JUPYTERHUB_API_TOKEN")) if isinstance(t, str)]

    async def _start_jupyter_server_extension(self, serverapp: object) -> None:
        # The server's token is final once it started (a generated one too).
        self._redacting.add(*self._server_credentials())
        # The port is final only once the server has bound it (it may have moved off a busy one).
        state: CellmageState = self.settings["cellmage"]
        names = state.config.key_env_names if state.config else ()
        kernel_env.publish(self.serverapp, names)
        self._give_kernels_the_endpoint()
        # Once the server's start-up objects are made (its own, every extension's), keep them out
        # of the collector: a full collection of that heap paused the loop ~200 ms under load,
        # a gap every streaming answer then shows (bench/relay_bench.py: p99 gap between deltas).
        self._freezing = asyncio.get_running_loop().call_later(FREEZE_AFTER, self._freeze_heap)

    _freezing: asyncio.TimerHandle | None = None
    _frozen = False

    def _freeze_heap(self) -> None:
        """Collect once, then move every object alive to the collector's permanent generation
        (``gc.freeze``, as litellm's loader does for its own): later full collections scan only
        what was made since, so they pause the event loop for milliseconds, not hundreds."""
        gc.collect()
        gc.freeze()
        self._frozen = True

    def _give_kernels_the_endpoint(self) -> None:
        """OPENAI_BASE_URL and the scoped key for kernels the server starts, unless switched off."""
        config: LoadedConfig | None = self.settings["cellmage"].config
        give = config is not None and config.settings.openai_endpoint.kernel_variables
        key = self.settings[SCOPED_KEY_SETTING].secret.get_secret_value()
        kernel_env.give_kernels(self.serverapp, kernel_env.openai_variables(self.serverapp, key) if give else {})

    async def stop_extension(self) -> None:
        """End every running answer with ``shutdown`` then ``done`` (stored as interrupted) while
        the loop still runs, then close the providers and the database."""
        state: CellmageState | None = self.settings.get("cellmage")
        if state is None or state.stopped:
            return
        state.stopped = True
        if self._freezing is not None:
            self._freezing.cancel()
        if self._frozen:  # what this server froze may be collected again (its process may go on)
            gc.unfreeze()
            self._frozen = False
        state.streams.close(Shutdown())
        if not await state.streams.drained(SHUTDOWN_GRACE):
            self.log.warning("cellmage: %d answer(s) did not end within %g s of shutdown", len(state.streams), SHUTDOWN_GRACE)
        for provider in state.providers.values():
            await provider.aclose()
        if state.store is not None:
            state.store.close()
        for logger in self._redacted_loggers():
            logger.removeFilter(self._redacting)

    def _redacted_loggers(self) -> list[logging.Logger]:
        """The server's and this extension's loggers (handlers write to the server's)."""
        return [logging.getLogger(name) for name in REDACTED_LOGGERS] + [self.log, self.serverapp.log]

