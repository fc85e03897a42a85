"""The documentation stays true: every setting is in .env.example and in docs/configuration.md, every
setting the docs name exists, every endpoint is in docs/api.md, and the README stays a front door that
leads into docs/."""

from __future__ import annotations

import re

from mediaflow.settings import Settings
from tests.apptools import REPO

DOCS = REPO / "docs"
README_MAX_LINES = 250


def setting_names() -> set[str]:
    """The environment variable of every setting: what the documentation must name."""
    return set(Settings.model_fields)


def test_every_setting_is_in_env_example():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    missing = sorted(setting_names() - documented)
    assert not missing, f"settings missing from .env.example: {missing}"


def test_every_setting_has_a_row_in_the_configuration_reference():
    # A row of one of its tables: "| `NAME` | default | what |".
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", (DOCS / "configuration.md").read_text(), re.MULTILINE))
    missing = sorted(setting_names() - rows)
    assert not missing, f"settings missing from docs/configuration.md (add a row to its table): {missing}"
    unknown = sorted(rows - setting_names())
    assert not unknown, f"docs/configuration.md describes settings that do not exist: {unknown}"


# Upper-case names in the docs that are not settings: the SDK's, the client's, the kernel's.
NOT_SETTINGS_PREFIXES = ("OTEL_", "MEDIAFLOW_")
NOT_SETTINGS = {"RLIMIT_AS"}


def test_every_setting_the_docs_name_exists():
    """A renamed or mistyped setting in the docs would send the reader to a variable nothing reads."""
    unknown = []
    for page in [REPO / "README.md", *sorted(DOCS.glob("*.md"))]:
        for name in sorted(set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)(?:=[^`]*)?`", page.read_text()))):
            if name not in setting_names() and name not in NOT_SETTINGS and not name.startswith(NOT_SETTINGS_PREFIXES):
                unknown.append(f"{page.relative_to(REPO)}: {name}")
    assert not unknown, "the docs name settings that do not exist:\n" + "\n".join(unknown)


def test_every_endpoint_is_in_the_api_reference(tmp_path):
    from mediaflow.api.app import create_app

    reference = (DOCS / "api.md").read_text()
    paths = create_app(Settings(_env_file=None, SQLITE_PATH=tmp_path / "db")).openapi()["paths"]
    missing = sorted(path for path in paths if f"`{path}" not in reference)
    assert not missing, f"endpoints missing from docs/api.md: {missing}"


def test_the_readme_is_a_front_door():
    readme = (REPO / "README.md").read_text()
    lines = readme.count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines; move detail into docs/ (at most {README_MAX_LINES})"
    )
    two_commands = readme.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    assert "scripts/serve.sh" in two_commands and "scripts/test.sh" in two_commands
    assert "exec scripts/test.sh" in (REPO / ".ci" / "run").read_text(), "CI runs the README's test command"
    first_job = readme.split("## Try it", 1)[1].split("\n## ", 1)[0]
    for step in ("/upload", "POST http://127.0.0.1:8000/process", "/status/", "/download/", "/jobs"):
        assert step in first_job.replace("-X POST http", "POST http"), f"the first job lacks {step}"
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", readme))
    every_page = {f"docs/{page.name}" for page in DOCS.glob("*.md") if page.name != "README.md"}
    assert not every_page - linked, f"README.md links no way into {sorted(every_page - linked)}"


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
