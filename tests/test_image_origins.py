"""The admin's image origins: validated, offered to both clients by GET status, none by default."""

from __future__ import annotations

import pytest

from cellmage_server.config import ConfigError, load_config

from .conftest import toml_with


@pytest.fixture
def cellmage_toml(fake_upstream):
    return toml_with(fake_upstream, image_origins=["https://Images.Example.org", "http://127.0.0.1:9000"])


async def test_status_offers_the_allowed_image_origins(api):
    status = (await api.get("status")).json()
    assert status["image_origins"] == ["https://images.example.org", "http://127.0.0.1:9000"]


@pytest.mark.parametrize("origin", ["https://images.example.org/", "https://x.org/path", "images.example.org", "javascript:x", "*"])
def test_an_image_origin_with_a_path_or_no_scheme_is_refused(tmp_path, origin):
    path = tmp_path / "cellmage.toml"
    path.write_text(f'image_origins = ["{origin}"]\n')
    with pytest.raises(ConfigError, match="image_origins"):
        load_config({"CELLMAGE_CONFIG": str(path)})


def test_no_image_origin_is_allowed_by_default(tmp_path):
    path = tmp_path / "cellmage.toml"
    path.write_text("")
    assert load_config({"CELLMAGE_CONFIG": str(path)}).settings.image_origins == []
