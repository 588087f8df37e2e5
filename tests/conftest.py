"""Root test configuration: registers the real-server fixture plugins."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent
# Fixture plugins for real servers; each lives beside the helpers that start its server.
pytest_plugins = [
    f"tests.servers.{p.stem}" for p in sorted((_HERE / "servers").glob("*_fixtures.py"))
]
