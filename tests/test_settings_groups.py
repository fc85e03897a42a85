"""The settings grouped by concern (mediaflow/settings_groups.py): every flat setting in exactly one
group, every group value of its declared type, and the environment names (a contract) still the way in."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from pydantic import TypeAdapter

from mediaflow.api.hosts import host_allowed
from mediaflow.settings import Settings
from mediaflow.settings_groups import GROUPS, SettingsGroups, env_names


def test_every_setting_is_in_exactly_one_group():
    homes: dict[str, list[str]] = {}
    for group_name, group in GROUPS.items():
        for flat in env_names(group).values():
            homes.setdefault(flat, []).append(group_name)
    unknown = set(homes) - set(Settings.model_fields)
    assert not unknown, f"groups name settings that do not exist: {sorted(unknown)}"
    twice = {flat: groups for flat, groups in homes.items() if len(groups) > 1}
    assert not twice, f"settings in more than one group: {twice}"
    ungrouped = set(Settings.model_fields) - set(homes)
    assert not ungrouped, f"add these settings to a group in mediaflow/settings_groups.py: {sorted(ungrouped)}"


def test_every_group_has_its_property_and_the_property_its_group():
    properties = {name for name, value in vars(SettingsGroups).items() if isinstance(value, property)}
    assert properties == set(GROUPS)
    settings = Settings(_env_file=None)
    for name, group in GROUPS.items():
        assert type(getattr(settings, name)) is group


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {  # the seed's stack, with the optional values set
            "DB_BACKEND": "mongodb",
            "API_WORKERS": "2",
            "WEBHOOK_URL": "https://hooks.example.com/in",
            "WEBHOOK_SECRET": "a-plain-secret",
            "AWS_ACCESS_KEY": "key",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "S3_SOURCE_BUCKETS": "media-in,archive/2026",
            "ALLOWED_HOSTS": "media.example.com",
            "WORK_DIR": "/tmp/mediaflow-work",
            "API_MAX_CONNECTIONS": "64",
        },
    ],
    ids=["defaults", "everything-set"],
)
def test_group_values_have_the_declared_types(monkeypatch, environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    for name, group in GROUPS.items():
        hints = typing.get_type_hints(group)
        view = getattr(settings, name)
        for field in dataclasses.fields(group):
            value = getattr(view, field.name)
            # strict: a str where a Path is declared, or None where the type has no None, fails
            TypeAdapter(hints[field.name]).validate_python(value, strict=True)


def test_env_names_and_env_files_reach_the_groups(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WEBHOOK_TIMEOUT_S=3\nKAFKA_TOPIC=from-dotenv\nDB_BACKEND=dynamodb\n")
    monkeypatch.setenv("KAFKA_TOPIC", "from-environment")  # the environment wins over .env, as before
    monkeypatch.setenv("MAX_INPUT_DURATION_S", "60")
    settings = Settings()
    assert settings.webhooks.timeout_s == settings.WEBHOOK_TIMEOUT_S == 3.0
    assert settings.kafka.topic == settings.KAFKA_TOPIC == "from-environment"
    assert settings.limits.max_duration_s == 60.0
    # The backends chosen from DB_BACKEND show in the group, never None there.
    assert (settings.backends.store, settings.backends.queue, settings.backends.storage) == ("dynamodb", "kafka", "s3")


def test_a_group_is_a_snapshot_of_the_values_held_then():
    settings = Settings(_env_file=None)
    changed = settings.model_copy(update={"SSE_KEEPALIVE_S": 2.5})
    assert (settings.sse.keepalive_s, changed.sse.keepalive_s) == (15.0, 2.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.sse.keepalive_s = 1.0  # type: ignore[misc]  # the point: a group cannot be changed


def test_a_function_takes_just_its_group():
    access = dataclasses.replace(Settings(_env_file=None).access, allowed_hosts=[".example.com"])
    assert host_allowed(access, "media.example.com", None)
    assert not host_allowed(access, "example.org", None)
