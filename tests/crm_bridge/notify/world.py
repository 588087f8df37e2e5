"""A small registry for the notifier tests: two customers, their managers, users of every role, a settable clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm_bridge.alerts.engine import raise_alert
from crm_bridge.notify.config import NotifyConfig
from crm_bridge.notify.events import PUBLISHER
from crm_bridge.notify.recipients import Person
from crm_bridge.notify.service import Notifier
from crm_bridge.registry import make_engine, migrate
from crm_bridge.registry.models import (
    AccountManager,
    Alert,
    Customer,
    ManagerAssignment,
    Notification,
    NotificationPreference,
)

# 10:00 in Shanghai.
START = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)

PEOPLE = [
    Person("mgr1", "account_manager", manager="M1", language="zh"),
    Person("lead", "account_manager", manager="M9", language="en"),
    Person("acme", "customer", customer="C1", language="zh"),
    Person("acme-en", "customer", customer="C1", language="en"),
    Person("beta", "customer", customer="C2", language="en"),
    Person("eng", "engineer", language="en"),
]


class World:
    """The registry database, the directory of PEOPLE and the clock the notifier reads."""

    def __init__(self, url: str) -> None:
        migrate(url)
        self.engine = make_engine(url)
        self.db: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self.now = START
        self.people_list = list(PEOPLE)
        with self.db() as s:
            c1 = Customer(code="C1", name="Acme Steel", timezone="Asia/Shanghai")
            c2 = Customer(code="C2", name="Beta Glass", timezone="Europe/Berlin")
            m1 = AccountManager(code="M1", name="Wang", email="wang@utility.example")
            m2 = AccountManager(code="M2", name="Li", email="li@utility.example")  # no login
            m9 = AccountManager(code="M9", name="Zhao", email="zhao@utility.example")
            s.add_all([c1, c2, m1, m2, m9])
            s.flush()
            s.add_all([ManagerAssignment(manager_id=m1.id, customer_id=c1.id),
                       ManagerAssignment(manager_id=m2.id, customer_id=c2.id)])
            s.commit()

    def people(self, session: Session) -> list[Person]:
        return list(self.people_list)

    def clock(self) -> datetime:
        return self.now

    def notifier(self, config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Notifier:
        n = Notifier(NotifyConfig.model_validate(config), self, environ or {}, clock=self.clock)
        self.db.configure(info={PUBLISHER: n})
        return n

    def prefs(self, username: str, **fields: Any) -> None:
        with self.db() as s:
            row = s.get(NotificationPreference, username) or NotificationPreference(username=username,
                                                                                     updated_at=self.now)
            for k, v in fields.items():
                setattr(row, k, v)
            s.add(row)
            s.commit()

    def alert(self, customer: str = "C1", severity: str = "critical", type: str = "demand_watch",
              key: str | None = None) -> int:
        with self.db() as s:
            a = raise_alert(s, key=key or f"{type}:{customer}:{self.now.isoformat()}", type=type, severity=severity,
                            customer_code=customer, meter_code="m1", window_start=self.now,
                            window_end=self.now, message=f"{customer}: projected demand 6,694 kW", now=self.now)
            assert a is not None
            s.commit()
            return a.id

    def records(self, **where: Any) -> list[Notification]:
        with self.db() as s:
            stmt = select(Notification).order_by(Notification.id)
            for k, v in where.items():
                stmt = stmt.where(getattr(Notification, k) == v)
            rows = list(s.scalars(stmt))
            for r in rows:
                _ = r.event.kind  # loaded while the session is open
            return rows

    def alert_row(self, alert_id: int) -> Alert:
        with self.db() as s:
            a = s.get(Alert, alert_id)
            assert a is not None
            return a

    def close(self) -> None:
        self.engine.dispose()
