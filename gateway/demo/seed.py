"""Demo business data: contracts, account managers and logins for the demo customers, then alerts and tiering."""

from __future__ import annotations

import json
import logging
import os
import secrets
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from crm_bridge.registry.models import (
    AccountManager,
    Contract,
    Customer,
    ManagerAssignment,
    NotificationPreference,
)

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
# Cost centres of the demo plants (code, name, kind, meter formula) and how their bills are shared: every site and
# line a demo user opens on the costs and performance pages has a split, a finance export and a budget to look at.
DEMO_COST_CENTRES: dict[str, list[tuple[str, str, str, str]]] = {
    "huaxin-steel": [("HX4100", "轧钢车间 Rolling mill", "site", "huaxin-rolling-in"),
                     ("HX4200", "电炉 Electric arc furnace", "line", "huaxin-melt-in"),
                     ("HX4300", "辅助系统 Auxiliaries", "cost_centre", "huaxin-aux")],
    "rhein-chem": [("RC1000", "Production", "line", "rhein-main-in"),
                   ("RC2000", "Utilities", "cost_centre", "rhein-utility")],
}
DEMO_RULES: dict[str, tuple[str, str]] = {"huaxin-steel": ("coincident_peak", "HX01"), "rhein-chem": ("kwh", "RC01")}
# This month's budget: last month's bill plus this much, shared over the cost centres as last month's bill was.
BUDGET_HEADROOM = Decimal("1.05")
# Every demo login has an address in the reserved .example domain, so `demo --smtp` has somewhere to send to.
MAIL_DOMAIN = "demo.example"
# The generated passwords, kept beside the data so a restart on the same directory keeps the same logins.
LOGINS_FILE = "demo-logins.json"


def seed(gw: Gateway, customers: list[dict[str, str]], done: dict[str, Any] | None = None) -> dict[str, Any]:
    """Registry rows, logins, one alerts run; tiers and today's and tomorrow's forecasts unless `done` has them.

    `done` (the caller keeps it in demo-state.json) records the UTC day tiers and forecasts were last made, and
    what they gave: a restart on the same day repeats neither (they are stored, and the scheduler keeps them up
    to date), so a second start reaches the portal in seconds. It is updated in place.
    """
    from gateway.jobs import alerts_job, forecast_job, tiering_job

    done = {} if done is None else done

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
                manager = AccountManager(code=code, name=name, email=f"{code}@{MAIL_DOMAIN}")
                session.add(manager)
                session.flush()
            elif manager.email is None:
                manager.email = f"{code}@{MAIL_DOMAIN}"
            if session.scalar(select(ManagerAssignment).where(ManagerAssignment.manager_id == manager.id,
                                                              ManagerAssignment.customer_id == customer.id)) is None:
                session.add(ManagerAssignment(manager=manager, customer=customer))
        session.commit()
    seed_cost_centres(gw, [c["id"] for c in customers])
    # Logins (and their addresses) before the first alerts: the notifier picks recipients when an alert opens.
    logins = seed_logins(gw, [c["id"] for c in customers])
    opened = alerts_job(gw)
    today = datetime.now(UTC).date().isoformat()
    if done.get("tiers_on") != today:
        done.update(tiers=tiering_job(gw), tiers_on=today)
    if done.get("forecasts_on") != today:
        # Today's forecast (made from history up to last midnight) and tomorrow's: the portal shows actual vs
        # forecast.
        models = forecast_job(gw, datetime.now(UTC).date())
        forecast_job(gw)
        done.update(forecast_models=models, forecasts_on=today)
    return {"logins": logins, "alerts_opened": len(opened), "tiers": done.get("tiers"),
            "forecast_models": done.get("forecast_models")}


def seed_cost_centres(gw: Gateway, customers: list[str]) -> None:
    """Cost centres, a sharing rule and this month's budgets for each demo customer that has no cost centre yet.

    Written through the use cases the API and the portal forms use, so the demo's setup passes the same checks. The
    formulas and the rule hold from the first month of the backfilled history; the budgets are last month's bill
    (and its split) plus BUDGET_HEADROOM, so the budget page compares like with like.
    """
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from gateway.usecases import allocation as alloc
    from gateway.usecases.errors import UseCaseError
    from gateway.usecases.figures import UseCases, customer_config
    from gateway.usecases.performance import Performance

    uc = UseCases(gw)
    with gw.db() as session:
        for code in customers:
            centres = DEMO_COST_CENTRES.get(code)
            if not centres or alloc.cost_centres(session, code):
                continue
            this = datetime.now(ZoneInfo(customer_config(gw, code).timezone)).date().replace(day=1)
            last = date(this.year - (this.month == 1), (this.month - 2) % 12 + 1, 1)
            since = date(last.year - (last.month == 1), (last.month - 2) % 12 + 1, 1)
            for cc, name, kind, formula in centres:
                alloc.put_cost_centre(session, code, cc, alloc.CostCentreIn(name=name, kind=kind))
                alloc.add_formula(uc, session, code, cc, alloc.FormulaIn(formula=formula, valid_from=since))
            rule, company = DEMO_RULES[code]
            alloc.add_rule(session, code, alloc.RuleIn(rule=rule, valid_from=since, company_code=company))
            try:
                split = alloc.allocation(uc, code, last)
            except UseCaseError as exc:
                log.info("demo budgets of %s: no bill for %s (%s)", code, f"{last:%Y-%m}", exc)
                continue
            cent = Decimal("0.01")
            budgets = [SimpleNamespace(month=f"{this:%Y-%m}", cost_centre=None, currency=split.currency,
                                       amount=(Decimal(split.total) * BUDGET_HEADROOM).quantize(cent, ROUND_HALF_UP))]
            budgets += [SimpleNamespace(month=f"{this:%Y-%m}", cost_centre=line.code, currency=split.currency,
                                        amount=(Decimal(line.total) * BUDGET_HEADROOM).quantize(cent, ROUND_HALF_UP))
                        for line in split.lines if line.code != alloc.RESIDUAL]
            Performance(uc, session).put_budgets("demo", code, budgets)


def _read_logins(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(username -> password, username -> the password hash that password was last found to match)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}, {}

    def strings(key: str) -> dict[str, str]:
        part = data.get(key) if isinstance(data, dict) else None
        return {k: v for k, v in part.items() if isinstance(v, str)} if isinstance(part, dict) else {}

    return strings("passwords"), strings("hashes")


def _write_logins(path: Path, passwords: dict[str, str], hashes: dict[str, str]) -> None:
    """Write the file readable by its owner only, from its first byte (never a moment of 0644)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"passwords": passwords, "hashes": hashes}, f, indent=1)
    path.chmod(0o600)  # a file made earlier with another mode


def seed_logins(gw: Gateway, customers: list[str]) -> list[dict[str, Any]]:
    """A login per role and per demo customer, each with an e-mail address and the same password at every start.

    Passwords are made on the first start and kept in DATA_DIR/demo-logins.json (mode 0600), with the hash each
    was last seen under. On a later start a login whose hash is unchanged is left alone (no Argon2 work, and its
    sessions survive the restart); one whose password was changed, or that was disabled, meanwhile gets the stored
    password back, so the printed logins always work.
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    from gateway.auth.models import User
    from gateway.web import auth_service

    auth = auth_service(gw)
    managers: dict[str, list[str]] = {}
    for cid in customers:
        if cid in DEMO_MANAGERS:
            managers.setdefault(DEMO_MANAGERS[cid][0], []).append(cid)
    wanted: list[tuple[str, str, str | None, str | None]] = [("admin", "admin", None, None),
                                                            ("engineer", "engineer", None, None)]
    wanted += [(f"manager-{code}", "account_manager", None, code) for code in managers]
    wanted += [(f"customer-{c}", "customer", c, None) for c in customers]
    path = gw.config.data_path(Path(LOGINS_FILE))
    passwords, hashes = _read_logins(path)
    if any(username not in passwords for username, *_ in wanted):
        passwords.update({u: secrets.token_urlsafe(12) for u, *_ in wanted if u not in passwords})
        _write_logins(path, passwords, hashes)  # before any user has it: a crash now loses nothing
    known = dict(hashes)
    logins = []
    for username, role, customer, manager in wanted:
        password = passwords[username]
        with auth.db() as s:
            user = s.scalar(select(User).where(User.username == username))
            works = user is not None and not user.disabled and hashes.get(username) == user.password_hash
            if user is not None and not user.disabled and not works:
                try:  # a hash not seen before (another format, or this file is new): ask Argon2 once
                    works = auth.hasher.verify(user.password_hash, password)
                except (VerificationError, InvalidHashError):
                    works = False
            if user is not None and user.disabled:
                user.disabled = False
                s.commit()
        if user is None:
            auth.add_user(username, password, role, customer=customer, manager=manager, actor="demo")
        elif not works:
            auth.reset_password(username, password, actor="demo")
        with auth.db() as s:
            hashes[username] = s.scalar(select(User.password_hash).where(User.username == username)) or ""
        email = f"{manager or username}@{MAIL_DOMAIN}"
        with gw.db() as s:
            pref = s.get(NotificationPreference, username)
            if pref is None:
                s.add(NotificationPreference(username=username, email=email, updated_at=datetime.now(UTC)))
            elif pref.email is None:
                pref.email = email
            else:
                email = pref.email  # the user's own choice, made in the portal
            s.commit()
        logins.append({"role": role, "username": username, "password": password, "email": email,
                       "customer": customer, **({"manager": manager, "customers": managers[manager]} if manager
                                                 else {})})
    if hashes != known:
        _write_logins(path, passwords, hashes)
    return logins
