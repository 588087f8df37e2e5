"""Pytest fixtures for the real influxd and the test-only v2 write proxy in front of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.servers.influx import InfluxServer
from tests.servers.influx_v2_proxy import InfluxV2Proxy


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One influxd for the session; tests isolate themselves with their own database (see `influx_db`)."""
    server = InfluxServer(tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def influx_v2_proxy(influxd: InfluxServer) -> Iterator[InfluxV2Proxy]:
    proxy = InfluxV2Proxy(influxd.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def influx_db(influxd: InfluxServer) -> str:
    """A fresh, empty database name (created on the server) for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    influxd.create_database(name)
    return name
