"""cost_usd: from the model's configured prices, else litellm's price data, else null; reading
litellm's price data never imports litellm."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cellmage_server.answer.pricing import Pricing
from cellmage_server.config import ModelEntry
from cellmage_server.contract import Usage

from .conftest import KEY_ENV
from .fake_upstream import FakeUpstream


def _loaded() -> Pricing:
    pricing = Pricing()
    pricing.load_in_background()
    pricing.wait_loaded(30)
    return pricing


def test_litellms_price_data_prices_known_models_by_full_or_bare_name():
    pricing = _loaded()
    usage = Usage(1000, 500, 1500)

    priced = pricing.price(ModelEntry(model="openai/gpt-4o-mini"), usage)

    assert priced.cost_usd == pytest.approx(1000 * 1.5e-7 + 500 * 6e-7)
    assert pricing.price(ModelEntry(model="openai/a-model-nobody-prices"), usage).cost_usd is None


def test_configured_prices_win_over_litellms():
    pricing = _loaded()
    entry = ModelEntry(model="openai/gpt-4o-mini", input_cost_per_mtok=1.0, output_cost_per_mtok=2.0)

    assert pricing.price(entry, Usage(1_000_000, 500_000, 1_500_000)).cost_usd == pytest.approx(2.0)


def test_unknown_counts_stay_unpriced():
    assert _loaded().price(ModelEntry(model="openai/gpt-4o-mini"), Usage(None, 3, None)).cost_usd is None


def test_reading_the_price_data_does_not_import_litellm():
    code = (
        "import sys\n"
        "from cellmage_server.answer.pricing import Pricing\n"
        "p = Pricing(); p.load_in_background(); p.wait_loaded(30)\n"
        "assert p._prices, 'no prices read'\n"
        "print('litellm' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    assert done.stdout.strip() == "False"


class TestAPricedModelOnTheLeanPath:
    @pytest.fixture
    def cellmage_toml(self, fake_upstream: FakeUpstream) -> str:
        return f"""
[models.mini]
model = "openai/gpt-4o-mini"
api_base = "{fake_upstream.url}"
api_key_env = "{KEY_ENV}"
"""

    async def test_the_usage_event_carries_the_cost(self, api, jp_serverapp):
        result = await api.stream({"prompt": "x"})

        usage = result.one("usage")
        assert usage["cost_usd"] == pytest.approx(7 * 1.5e-7 + 3 * 6e-7)
        assert "litellm" not in jp_serverapp.web_app.settings["cellmage"].providers
