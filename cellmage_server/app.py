"""The server extension: configuration in, handlers registered, kernels' environment set, clean stop."""

from __future__ import annotations

from dataclasses import dataclass

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join

from . import kernel_env
from .config import ConfigError, LoadedConfig, load_config
from .errors import NotConfigured
from .handlers import API_PATH, default_handlers
from .personas import PersonaStore
from .providers.openai_compat import OpenAICompatProvider
from .streams import Streams


@dataclass
class CellmageState:
    """Everything the handlers share, built once per server in ``initialize_settings``."""

    config: LoadedConfig | None
    config_error: str | None
    personas: PersonaStore
    streams: Streams
    provider: OpenAICompatProvider | None

    def require_config(self) -> LoadedConfig:
        """The configuration, or 503 saying why there is none usable."""
        if self.config is None:
            raise NotConfigured(
                f"CellMage is not available: {self.config_error} Fix the configuration and restart the server."
            )
        return self.config


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

        if config is not None:
            settings = config.settings
            personas = PersonaStore(settings.personas_dirs)
            streams = Streams(settings.limits.max_streams_per_user)
            provider = OpenAICompatProvider(connect_timeout=settings.timeouts.connect, secrets=config.secret_values())
            kernel_env.publish(self.serverapp, config.key_env_names)
            where = config.path or "CELLMAGE_* environment variables"
            if settings.models:
                self.log.info(
                    "cellmage: %d model(s) from %s; default %s",
                    len(settings.models), where, settings.resolved_default_model,
                )
            else:
                self.log.warning("cellmage: no model configured (%s); answers get 503 until one is", where)
            for path, problem in personas.errors().items():
                self.log.warning("cellmage: persona file %s is skipped: %s", path, problem)
        else:
            personas, streams, provider = PersonaStore([]), Streams(1), None
            kernel_env.publish(self.serverapp, ())

        self.settings["cellmage"] = CellmageState(
            config=config, config_error=error, personas=personas, streams=streams,
            provider=provider,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            (url_path_join(API_PATH, pattern), handler) for pattern, handler in default_handlers
        )

    async def _start_jupyter_server_extension(self, serverapp: object) -> None:
        # The port is final only once the server has bound it (it may have moved off a busy one).
        state: CellmageState = self.settings["cellmage"]
        names = state.config.key_env_names if state.config else ()
        kernel_env.publish(self.serverapp, names)

    async def stop_extension(self) -> None:
        state: CellmageState | None = self.settings.get("cellmage")
        if state is None:
            return
        state.streams.cancel_all()
        if state.provider is not None:
            await state.provider.aclose()

