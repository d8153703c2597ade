"""What an answer cost: per-model prices from the configuration, else from litellm's price data.

litellm ships its price map as a JSON file. It is read straight from the installed package (found
without importing litellm) in a background thread at start, so pricing a lean-path answer never
pays for litellm's import. Until it is read, or without litellm, unpriced answers cost ``None``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ..config import ModelEntry
from ..contract import Usage

log = logging.getLogger(__name__)

PRICE_FILE = "model_prices_and_context_window_backup.json"

Prices = Mapping[str, tuple[float, float]]  # model name -> (USD per prompt token, per completion token)


def litellm_price_file() -> Path | None:
    """litellm's bundled price map, located without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_FILE
    return path if path.is_file() else None


def read_prices(path: Path) -> dict[str, tuple[float, float]]:
    """The (input, output) per-token prices of every chat model the file prices."""
    data = json.loads(path.read_text(encoding="utf-8"))
    prices = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            continue
        cost_in, cost_out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if isinstance(cost_in, (int, float)) and isinstance(cost_out, (int, float)):
            prices[name] = (float(cost_in), float(cost_out))
    return prices


class Pricing:
    def __init__(self) -> None:
        self._prices: Prices = {}
        self._loading: threading.Thread | None = None

    def wait_loaded(self, timeout: float | None = None) -> None:
        """Block until the background read is over (for tests and benchmarks)."""
        if self._loading is not None:
            self._loading.join(timeout)

    def load_in_background(self) -> None:
        path = litellm_price_file()
        if path is None:
            return

        def load() -> None:
            try:
                self._prices = read_prices(path)
            except (OSError, ValueError) as e:
                log.warning("cellmage: cannot read litellm's price data %s: %s", path, e)

        self._loading = threading.Thread(target=load, name="cellmage-prices", daemon=True)
        self._loading.start()

    def per_token(self, entry: ModelEntry) -> tuple[float, float] | None:
        if entry.input_cost_per_mtok is not None and entry.output_cost_per_mtok is not None:
            return entry.input_cost_per_mtok / 1e6, entry.output_cost_per_mtok / 1e6
        name = entry.model
        return self._prices.get(name) or self._prices.get(name.split("/", 1)[-1])

    def price(self, entry: ModelEntry, usage: Usage) -> Usage:
        """``usage`` with ``cost_usd`` filled in when the model is priced and the counts are known."""
        rates = self.per_token(entry)
        if rates is None or usage.prompt_tokens is None or usage.completion_tokens is None:
            return usage
        cost = usage.prompt_tokens * rates[0] + usage.completion_tokens * rates[1]
        return replace(usage, cost_usd=round(cost, 10))
