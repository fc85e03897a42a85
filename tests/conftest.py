"""Shared test fixtures. Real-server fixtures live in tests/servers/<backend>.py and are loaded here."""

from __future__ import annotations

from pathlib import Path

_SERVERS = Path(__file__).parent / "servers"
pytest_plugins = sorted(
    f"tests.servers.{path.stem}" for path in _SERVERS.glob("*.py") if path.stem not in ("__init__", "process")
)
