"""Keeps the CRM registry's customers, sites and meter assignments in step with gateway.toml.

gateway.toml says which device measures which meter at which site for which customer (collection needs that at
start-up); the registry keeps the business file around it. A meter moved to another site in the config closes its
old assignment today and opens a new one, so history keeps its validity dates.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import Customer, Meter, MeterAssignment, Site
from crm_bridge.registry.repo import assign_meter
from gateway.config import GatewayConfig


def sync_registry(session: Session, cfg: GatewayConfig, today: date) -> dict[str, int]:
    """Create or update customers, sites and meters from the config; returns counts of what was created."""
    created = {"customers": 0, "sites": 0, "meters": 0, "assignments": 0}
    by_code: dict[str, Customer] = {}
    for c in cfg.customers:
        customer = session.scalar(select(Customer).where(Customer.code == c.id))
        if customer is None:
            customer = Customer(code=c.id, name=c.name or c.id, timezone=c.timezone)
            session.add(customer)
            created["customers"] += 1
        else:
            customer.timezone = c.timezone
            if c.name:
                customer.name = c.name
        by_code[c.id] = customer
    session.flush()
    sites: dict[str, Site] = {}
    for s in cfg.sites:
        customer = by_code[s.customer]
        site = session.scalar(select(Site).where(Site.code == s.id))
        if site is None:
            site = Site(customer=customer, code=s.id, name=s.name or None)
            session.add(site)
            created["sites"] += 1
        sites[s.id] = site
    session.flush()
    for m in cfg.meters:
        meter = session.scalar(select(Meter).where(Meter.code == m.id))
        if meter is None:
            meter = Meter(code=m.id, description=m.name or m.device)
            session.add(meter)
            session.flush()
            created["meters"] += 1
        current = session.scalar(
            select(MeterAssignment).where(MeterAssignment.meter_id == meter.id, MeterAssignment.valid_to.is_(None))
        )
        site = sites[m.site]
        if current is None or (current.site_id != site.id and current.valid_from < today):
            assign_meter(session, meter, site, today)
            created["assignments"] += 1
    session.commit()
    return created
