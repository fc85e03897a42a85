"""The documentation stays true: every setting is in .env.example, every endpoint in the README."""

from __future__ import annotations

import re

from mediaflow.settings import Settings
from tests.apptools import REPO


def test_every_setting_is_in_env_example():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    missing = sorted(set(Settings.model_fields) - documented)
    assert not missing, f"settings missing from .env.example: {missing}"


def test_every_endpoint_is_in_the_readme(tmp_path):
    from mediaflow.api.app import create_app

    readme = (REPO / "README.md").read_text()
    paths = create_app(Settings(_env_file=None, SQLITE_PATH=tmp_path / "db")).openapi()["paths"]
    missing = sorted(path for path in paths if f"`{path}" not in readme)
    assert not missing, f"endpoints missing from the README: {missing}"


def test_docker_compose_sets_only_real_settings():
    """docker-compose.yml cannot be run here (no containers); at least every MediaFlow variable it
    sets must be a setting, so a typo there does not silently fall back to a default."""
    import yaml

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mediaflow_services = [s for s in compose["services"].values() if s.get("build")]
    assert len(mediaflow_services) >= 2, "the API and the workers are built from this repo"
    for service in mediaflow_services:
        unknown = sorted(set(service["environment"]) - set(Settings.model_fields))
        assert not unknown, f"not MediaFlow settings: {unknown}"
