"""gateway.toml seeds the registry and checks it: what the registry lacks is created, what differs is only reported."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.registry import make_engine, migrate
from crm_bridge.registry.models import Customer, Meter, MeterAssignment, Site
from crm_bridge.registry.repo import assign_meter
from gateway.config import GatewayConfig, load_config
from gateway.registry_sync import sync_registry

_TOML = """
[gateway]
data_dir = "state"
environment = "development"
[[customers]]
id = "acme"
name = "Acme Steel"
timezone = "Asia/Shanghai"
[[sites]]
id = "acme-works"
customer = "acme"
name = "Works 1"
[[sites]]
id = "acme-mill"
customer = "acme"
[[meters]]
id = "m1"
site = "acme-works"
device = "d1"
[[devices]]
type = "modbus"
name = "d1"
host = "127.0.0.1"
port = 1
unit = 1
profile = "generic"
"""


@pytest.fixture
def cfg(tmp_path: Path) -> GatewayConfig:
    (tmp_path / "gateway.toml").write_text(_TOML)
    return load_config(tmp_path / "gateway.toml")


@pytest.fixture
def session(db_url: str):
    migrate(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_an_empty_registry_is_seeded_from_the_config(session: Session, cfg: GatewayConfig) -> None:
    report = sync_registry(session, cfg, date(2026, 3, 1))
    assert report.created == {"customers": 1, "sites": 2, "meters": 1, "assignments": 1}
    assert report.differences == []
    acme = session.scalar(select(Customer).where(Customer.code == "acme"))
    assert (acme.name, acme.timezone) == ("Acme Steel", "Asia/Shanghai")
    again = sync_registry(session, cfg, date(2026, 3, 2))
    assert again.created == {"customers": 0, "sites": 0, "meters": 0, "assignments": 0}
    assert again.differences == []


def test_what_was_entered_in_the_registry_is_kept_and_the_difference_named(
        session: Session, cfg: GatewayConfig, caplog: pytest.LogCaptureFixture) -> None:
    sync_registry(session, cfg, date(2026, 3, 1))
    acme = session.scalar(select(Customer).where(Customer.code == "acme"))
    acme.name, acme.timezone = "Acme Steel Group Co., Ltd.", "Asia/Chongqing"
    works = session.scalar(select(Site).where(Site.code == "acme-works"))
    works.name = "Works No. 1"
    meter = session.scalar(select(Meter).where(Meter.code == "m1"))
    assign_meter(session, meter, session.scalar(select(Site).where(Site.code == "acme-mill")), date(2026, 3, 10))
    session.commit()

    with caplog.at_level(logging.WARNING, logger="gateway.registry_sync"):
        report = sync_registry(session, cfg, date(2026, 3, 20))

    session.expire_all()
    acme = session.scalar(select(Customer).where(Customer.code == "acme"))
    assert (acme.name, acme.timezone) == ("Acme Steel Group Co., Ltd.", "Asia/Chongqing")
    assert session.scalar(select(Site.name).where(Site.code == "acme-works")) == "Works No. 1"
    open_site = session.scalar(select(Site.code).join(MeterAssignment, MeterAssignment.site_id == Site.id)
                               .where(MeterAssignment.valid_to.is_(None)))
    assert open_site == "acme-mill"
    assert report.created == {"customers": 0, "sites": 0, "meters": 0, "assignments": 0}
    named = " | ".join(report.differences)
    for key, registry, config in (("acme.name", "Acme Steel Group Co., Ltd.", "Acme Steel"),
                                  ("acme.timezone", "Asia/Chongqing", "Asia/Shanghai"),
                                  ("acme-works.name", "Works No. 1", "Works 1"),
                                  ("m1.site", "acme-mill", "acme-works")):
        assert f"{key}: the registry has {registry!r}, gateway.toml {config!r}" in named
    assert len(report.differences) == 4
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == report.differences
