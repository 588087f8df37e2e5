"""Keeps the CRM registry's companies, sites and meter assignments in step with gateway.toml.

gateway.toml says which device measures which meter at which site for which customer (collection needs that at
start-up); the registry keeps the business file around it. A meter moved to another site in the config closes its
old assignment today and opens a new one, so history keeps its validity dates.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import Company, Meter, MeterAssignment, Site
from crm_bridge.registry.repo import assign_meter
from gateway.config import GatewayConfig


def sync_registry(session: Session, cfg: GatewayConfig, today: date) -> dict[str, int]:
    """Create or update companies, sites and meters from the config; returns counts of what was created."""
    created = {"companies": 0, "sites": 0, "meters": 0, "assignments": 0}
    companies: dict[str, Company] = {}
    for c in cfg.customers:
        company = session.scalar(select(Company).where(Company.code == c.id))
        if company is None:
            company = Company(code=c.id, name=c.name or c.id, timezone=c.timezone)
            session.add(company)
            created["companies"] += 1
        else:
            company.timezone = c.timezone
            if c.name:
                company.name = c.name
        companies[c.id] = company
    session.flush()
    sites: dict[str, Site] = {}
    for s in cfg.sites:
        company = companies[s.customer]
        site = session.scalar(select(Site).where(Site.company_id == company.id, Site.name == s.id))
        if site is None:
            site = Site(company=company, name=s.id, address=s.name or None)
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
