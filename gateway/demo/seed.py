"""Demo business data: contracts and account managers for the demo customers, then one alert and tiering run."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from crm_bridge.registry.models import AccountManager, Contract, Customer, ManagerAssignment

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)

# Contract terms sized so that the simulated plants come near their limits now and then (alerts have something
# to say): transformer kVA, contract demand C (kW), PF standard, monthly bill threshold (CNY). Both demo plants are in
# Guangdong, so both are on the Guangdong 10 kV tariff.
DEMO_CONTRACTS: dict[str, dict[str, float]] = {
    "huaxin-steel": {"transformer_kva": 8000.0, "contract_demand_kw": 5200.0, "pf_standard": 0.9,
                     "bill_threshold": 2_500_000.0},
    "rhein-chem": {"transformer_kva": 3150.0, "contract_demand_kw": 2100.0, "pf_standard": 0.9,
                   "bill_threshold": 900_000.0},
}
DEMO_MANAGERS: dict[str, tuple[str, str]] = {"huaxin-steel": ("am-li", "李娜 Li Na"),
                                             "rhein-chem": ("am-wang", "王伟 Wang Wei")}


def seed(gw: Gateway, customers: list[dict[str, str]]) -> dict[str, Any]:
    from gateway.jobs import alerts_job, forecast_job, tiering_job

    with gw.db() as session:
        for c in customers:
            terms = DEMO_CONTRACTS.get(c["id"])
            customer = session.scalar(select(Customer).where(Customer.code == c["id"]))
            if terms is None or customer is None:
                continue
            if session.scalar(select(Contract).where(Contract.customer_id == customer.id)) is None:
                session.add(Contract(customer=customer, transformer_kva=terms["transformer_kva"],
                                     contract_demand_kw=terms["contract_demand_kw"],
                                     basic_charge_mode="contract", pf_standard=terms["pf_standard"],
                                     bill_threshold=terms["bill_threshold"], tariff_id="guangdong-1-10kv"))
            code, name = DEMO_MANAGERS[c["id"]]
            manager = session.scalar(select(AccountManager).where(AccountManager.code == code))
            if manager is None:
                manager = AccountManager(code=code, name=name)
                session.add(manager)
                session.flush()
            if session.scalar(select(ManagerAssignment).where(ManagerAssignment.manager_id == manager.id,
                                                              ManagerAssignment.customer_id == customer.id)) is None:
                session.add(ManagerAssignment(manager=manager, customer=customer))
        session.commit()
    opened = alerts_job(gw)
    tiers = tiering_job(gw)
    # Today's forecast (made from history up to last midnight) and tomorrow's: the portal shows actual vs forecast.
    today = datetime.now(UTC).date()
    models = forecast_job(gw, today)
    forecast_job(gw)
    logins = seed_logins(gw, [c["id"] for c in customers])
    return {"logins": logins, "alerts_opened": len(opened), "tiers": tiers, "forecast_models": models}


def seed_logins(gw: Gateway, customers: list[str]) -> list[dict[str, Any]]:
    """A login per role and per demo customer, with passwords made fresh at each demo start."""
    from gateway.auth import seed_demo_users
    from gateway.web import auth_service

    managers: dict[str, list[str]] = {}
    for cid in customers:
        if cid in DEMO_MANAGERS:
            managers.setdefault(DEMO_MANAGERS[cid][0], []).append(cid)
    return seed_demo_users(auth_service(gw), customers, managers)
