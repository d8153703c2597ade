"""``GET models``, ``GET personas``, ``GET personas/{name}``, ``GET status``, ``GET usage``: what
the server offers and what the user used (no provider details, no secrets)."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .._version import __version__
from ..answer.plan import how_to_configure
from ..contract import dumps
from ..errors import NotFound
from .base import CellmageHandler, mapped


class ModelsHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """The model aliases clients may use (no provider details, no secrets)."""
        config = self.cellmage.require_config()
        settings = config.settings
        models = []
        for alias in settings.allowed:
            model: dict[str, Any] = {"name": alias, "description": settings.models[alias].description}
            model["available"] = alias not in config.unavailable
            if alias in config.unavailable:
                model["problem"] = config.unavailable[alias]
            models.append(model)
        self.finish(json.dumps({"default": settings.resolved_default_model, "models": models}))


class PersonasHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """The personas clients may use (``?notebook=`` adds the ``llm_personas/`` folder beside
        that notebook)."""
        notebook = self.notebook_personas(self.notebook_argument())
        self.finish(json.dumps([p.public() for p in self.cellmage.personas.all(notebook)]))


class PersonaHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self, name: str) -> None:
        """One persona: its system prompt and every default it sets (``?notebook=`` adds the
        ``llm_personas/`` folder beside that notebook)."""
        state = self.cellmage
        notebook = self.notebook_personas(self.notebook_argument())
        persona = state.personas.get(name, notebook)
        if persona is None:
            names = ", ".join(p.name for p in state.personas.all(notebook)) or "none"
            raise NotFound(f"Unknown persona {name[:80]!r}. Personas here: {names}.")
        self.finish(json.dumps(persona.detail()))


class StatusHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """Version, whether a provider is configured, the default model (no secrets)."""
        state = self.cellmage
        config = state.config
        configured = bool(config and config.settings.models)
        if config is None:
            message = f"The CellMage configuration is invalid: {state.config_error}"
        elif not configured:
            message = how_to_configure(config.path)
        else:
            broken = [a for a in config.settings.allowed if a in config.unavailable]
            message = f"{len(config.settings.allowed) - len(broken)} model(s) available."
            if broken:
                message += " Unavailable: " + " ".join(config.unavailable[a] for a in broken)
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "configured": configured,
                    "default_model": config.settings.resolved_default_model if config else None,
                    "models": len(config.settings.allowed) if config else 0,
                    "unavailable_models": dict(config.unavailable) if config else {},
                    # Whether a file was read, not where: kernels hold this route's credentials,
                    # and a config file may hold keys (README, threat model).
                    "config_file_found": bool(config and config.path),
                    "running_answers": len(state.streams),
                    "image_origins": config.settings.image_origins if config else [],
                    "persona_errors": state.personas.errors(),
                    "message": message,
                }
            )
        )


class UsageHandler(CellmageHandler):
    @web.authenticated
    @authorized
    @mapped
    async def get(self) -> None:
        """The current user's totals by day and model (never another user's)."""
        self.finish(dumps(await self.store().usage(self.username)))
