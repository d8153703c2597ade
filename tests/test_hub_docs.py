"""docs/jupyterhub.md shows the files the hub tests run, as they are; the Kubernetes values mount
the same cellmage.toml; the gateway config is what the gateway needs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from cellmage_server.config import CellmageSettings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "jupyterhub"
PAGE = (ROOT / "docs" / "jupyterhub.md").read_text()
IN_CLUSTER = "http://litellm.litellm.svc.cluster.local:4000/v1"


@pytest.mark.parametrize(
    "name", ["jupyterhub_config.py", "gateway_keys.py", "litellm_config.yaml", "cellmage.toml", "z2jh-values.yaml"]
)
def test_the_page_shows_each_file_the_tests_run_as_it_is(name):
    text = (DOCS / name).read_text().rstrip("\n")
    assert f"\n{text}\n```" in PAGE, f"docs/jupyterhub.md does not show docs/jupyterhub/{name} as it is"


def test_the_hub_tests_load_the_documented_hub_config():
    test_config = (ROOT / "tests" / "hub" / "jupyterhub_test_config.py").read_text()
    stack = (ROOT / "tests" / "hub" / "stack.py").read_text()
    assert 'load_subconfig(os.environ["HUB_TEST_DOCS_CONFIG"])' in test_config
    assert '"HUB_TEST_DOCS_CONFIG": str(DOCS / "jupyterhub_config.py")' in stack
    assert 'DOCS / "litellm_config.yaml"' in stack and 'DOCS / "cellmage.toml"' in stack
    assert 'load_subconfig(os.environ["HUB_TEST_KEYS_CONFIG"])' in test_config
    assert 'hub_env["HUB_TEST_KEYS_CONFIG"] = str(DOCS / "gateway_keys.py")' in stack


def test_kubernetes_mounts_the_documented_cellmage_toml_with_the_gateway_in_the_cluster():
    values = yaml.safe_load((DOCS / "z2jh-values.yaml").read_text())["singleuser"]
    mounted = values["extraFiles"]["cellmage-toml"]
    documented = tomllib.loads((DOCS / "cellmage.toml").read_text().replace("http://127.0.0.1:4000/v1", IN_CLUSTER))
    assert tomllib.loads(mounted["stringData"]) == documented
    assert values["extraEnv"]["CELLMAGE_CONFIG"] == mounted["mountPath"]
    secret = values["extraEnv"]["CELLMAGE_GATEWAY_KEY"]["valueFrom"]["secretKeyRef"]
    assert secret["name"] and secret["key"]


def test_the_documented_cellmage_toml_is_valid_and_sends_every_model_to_the_gateway():
    settings = CellmageSettings.model_validate(tomllib.loads((DOCS / "cellmage.toml").read_text()))
    assert settings.models
    for entry in settings.models.values():
        assert entry.path == "openai" and entry.api_key_env == "CELLMAGE_GATEWAY_KEY"
        assert entry.api_base == "http://127.0.0.1:4000/v1"


def test_the_gateway_serves_every_model_the_servers_ask_for_and_holds_the_only_provider_key():
    gateway = yaml.safe_load((DOCS / "litellm_config.yaml").read_text())
    names = {m["model_name"] for m in gateway["model_list"]}
    aliases = set(tomllib.loads((DOCS / "cellmage.toml").read_text())["models"])
    assert aliases <= names
    for model in gateway["model_list"]:
        assert model["litellm_params"]["api_key"] == "os.environ/PROVIDER_API_KEY"
    assert gateway["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert gateway["router_settings"]["disable_cooldowns"] is True
