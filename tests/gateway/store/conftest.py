"""Store fixtures: every backend behind the same `TimeSeriesStore` interface, each test on a fresh database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.base import TimeSeriesStore
from gateway.store.influx import InfluxStoreConfig, build_influx_store
from gateway.store.sqlite import SqliteStore
from tests.servers.influx import InfluxServer
from tests.servers.influx_v2_proxy import InfluxV2Proxy

BACKENDS = ["embedded", "influx_v1", "influx_v2"]


def make_v1(server: InfluxServer, database: str, **kw: object) -> TimeSeriesStore:
    cfg = InfluxStoreConfig(type="influxdb", url=server.url, api="v1", database=database, create_database=True,
                            **kw)  # type: ignore[arg-type]
    return build_influx_store(cfg, {})


def make_v2(proxy: InfluxV2Proxy, server: InfluxServer, bucket: str, **kw: object) -> TimeSeriesStore:
    server.create_database(bucket)  # what creating the bucket does on a real 2.x server
    cfg = InfluxStoreConfig(type="influxdb", url=proxy.url, api="v2", org=proxy.org, bucket=bucket,
                            token_env="TEST_INFLUX_TOKEN", **kw)  # type: ignore[arg-type]
    return build_influx_store(cfg, {"TEST_INFLUX_TOKEN": proxy.token})


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **kw: object) -> TimeSeriesStore:
    name = f"c_{uuid.uuid4().hex[:12]}"
    if kind == "embedded":
        return SqliteStore(tmp_path / "ts.sqlite")
    server: InfluxServer = request.getfixturevalue("influxd")
    if kind == "influx_v1":
        return make_v1(server, name, **kw)
    return make_v2(request.getfixturevalue("influx_v2_proxy"), server, name, **kw)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    s = open_store(request.param, request, tmp_path)
    try:
        yield s
    finally:
        s.close()
