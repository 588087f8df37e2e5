"""Seeds the CRM registry from gateway.toml's topology and checks it, never overwriting what was entered there.

gateway.toml says which device measures which meter at which site for which customer (collection needs that at
start-up); the registry keeps the business file around it and is where people change it (the registry API, the
import, the portal). A customer, site, meter or meter assignment the registry does not have is created from the
config; one it has is compared, and each difference is logged as a warning naming the row, the field and both
values, and left as the registry has it (docs/registry.md says which facts live where). A meter's role (billing or
sub) the registry does not hold yet is filled in from the config; the alerts sum a site's meters by it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import Customer, Meter, MeterAssignment, Site
from crm_bridge.registry.repo import assign_meter
from gateway.config import GatewayConfig

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What a sync created, and every difference between the config and the registry that it left alone."""

    created: dict[str, int] = field(default_factory=lambda: {"customers": 0, "sites": 0, "meters": 0,
                                                             "assignments": 0})
    differences: list[str] = field(default_factory=list)

    def differ(self, what: str, key: str, registry: object, config: object) -> None:
        message = (f"registry and gateway.toml differ on {what} {key}: the registry has {registry!r}, "
                   f"gateway.toml {config!r}; the registry's is kept (change it there, or correct gateway.toml)")
        self.differences.append(message)
        log.warning(message, extra={"registry_row": what, "key": key})


def sync_registry(session: Session, cfg: GatewayConfig, today: date) -> SyncReport:
    """Create what the registry lacks from the config, and report (not change) what differs; commits."""
    report = SyncReport()
    customers: dict[str, Customer] = {}
    for c in cfg.customers:
        customer = session.scalar(select(Customer).where(Customer.code == c.id))
        if customer is None:
            customer = Customer(code=c.id, name=c.name or c.id, timezone=c.timezone)
            session.add(customer)
            report.created["customers"] += 1
        else:
            if customer.timezone != c.timezone:
                report.differ("customer", f"{c.id}.timezone", customer.timezone, c.timezone)
            if c.name and customer.name != c.name:
                report.differ("customer", f"{c.id}.name", customer.name, c.name)
            if customer.retired_on is not None:
                report.differ("customer", f"{c.id}.retired_on", customer.retired_on.isoformat(), "in service")
        customers[c.id] = customer
    session.flush()
    sites: dict[str, Site] = {}
    for s in cfg.sites:
        site = session.scalar(select(Site).where(Site.code == s.id))
        if site is None:
            site = Site(customer=customers[s.customer], code=s.id, name=s.name or None)
            session.add(site)
            report.created["sites"] += 1
        else:
            if site.customer.code != s.customer:
                report.differ("site", f"{s.id}.customer", site.customer.code, s.customer)
            if s.name and site.name != s.name:
                report.differ("site", f"{s.id}.name", site.name, s.name)
        sites[s.id] = site
    session.flush()
    for m in cfg.meters:
        meter = session.scalar(select(Meter).where(Meter.code == m.id))
        if meter is None:
            meter = Meter(code=m.id, description=m.name or m.device, role=m.role)
            session.add(meter)
            session.flush()
            report.created["meters"] += 1
        elif meter.role is None:  # a row from before roles, or made in the registry without one: the config's
            meter.role = m.role
        elif meter.role != m.role:
            report.differ("meter", f"{m.id}.role", meter.role, m.role)
        current = session.scalar(
            select(MeterAssignment).where(MeterAssignment.meter_id == meter.id, MeterAssignment.valid_to.is_(None))
        )
        site = sites[m.site]
        if meter.retired_on is not None:
            report.differ("meter", f"{m.id}.retired_on", meter.retired_on.isoformat(), "in service")
        elif current is None:
            assign_meter(session, meter, site, today)
            report.created["assignments"] += 1
        elif current.site_id != site.id:
            report.differ("meter", f"{m.id}.site", current.site.code, m.site)
    session.commit()
    return report
