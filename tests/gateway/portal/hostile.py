"""A small real gateway whose every user-supplied text is hostile: script tags, attribute breakouts, template syntax.

Customer, site, meter and manager names come from the TOML; alert messages, ticket titles, categories, kinds and
transition notes, a contract's basic-charge mode and a username are written into the registry, as a sync or a user
could. The pages must show all of it as text.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from collectors.sim.load import LoadModel
from crm_bridge.alerts import raise_alert
from crm_bridge.alerts.own_rules import replace_rules
from crm_bridge.desk import add_comment, create_ticket, transition
from crm_bridge.desk.attachments import attach
from crm_bridge.registry.models import AccountManager, Contract, Customer, ManagerAssignment, Ticket
from gateway.config import load_config
from gateway.demo.backfill import history_readings
from gateway.runtime import Gateway
from tests.gateway.api.world import PASSWORD

VECTORS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</script><script>alert(1)</script>",
           "{{7*7}}", "javascript:alert(1)", "' onmouseover='alert(1)")
HOSTILE = "x" + "".join(VECTORS)
# Usernames are limited to 64 characters by the column.
HOSTILE_USERNAME = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
CUSTOMERS = {"acme": "Asia/Shanghai", "beta": "Europe/Berlin"}
HISTORY_DAYS = 9


def _toml(text: str) -> str:
    """A TOML basic string: JSON's escapes (\\", \\\\, \\uXXXX) are valid TOML escapes."""
    return json.dumps(text)


def _config(data_dir: Path) -> str:
    parts = [f"[gateway]\ndata_dir = {_toml(str(data_dir))}\nenvironment = \"development\"\nrun_scheduler = false\n",
             '[api]\nhost = "127.0.0.1"\nport = 0\nwarm_days = 0\n']
    for i, (cid, tz) in enumerate(CUSTOMERS.items(), start=1):
        parts.append(f'[[customers]]\nid = "{cid}"\nname = {_toml(HOSTILE)}\ntimezone = "{tz}"\n')
        parts.append(f'[[sites]]\nid = "{cid}-site"\nname = {_toml(HOSTILE)}\ncustomer = "{cid}"\n')
        parts.append(f'[[meters]]\nid = "{cid}-m1"\nname = {_toml(HOSTILE)}\nsite = "{cid}-site"\n'
                     f'device = "{cid}-dev"\n')
        parts.append(f'[[devices]]\ntype = "modbus"\nname = "{cid}-dev"\nhost = "127.0.0.1"\nport = 1\n'
                     f'unit = {i}\nprofile = "generic"\n')
    return "\n".join(parts)


@dataclass
class HostileWorld:
    gw: Gateway
    tickets: dict[str, int] = field(default_factory=dict)  # customer -> ticket id
    today: dict[str, str] = field(default_factory=dict)  # customer -> local date of the last full day
    renamed_user_id: int = 0  # the admin user, renamed to HOSTILE_USERNAME once logged in


def build_hostile_world(tmp: Path) -> HostileWorld:
    (tmp / "gateway.toml").write_text(_config(tmp / "state"))
    gw = Gateway.from_config(load_config(tmp / "gateway.toml"))
    from gateway.web import auth_service

    auth = auth_service(gw)
    now_ns = time.time_ns() // (900 * 10**9) * (900 * 10**9)
    start_ns = now_ns - HISTORY_DAYS * 86400 * 10**9
    tags = gw.directory.tags
    for i, cid in enumerate(CUSTOMERS, start=1):
        model = LoadModel(peak_kw=1000 * i, seed=70 + i, timezone=CUSTOMERS[cid])
        gw.store.write(history_readings(model, f"{cid}-dev", tags[f"{cid}-dev"], start_ns, now_ns, now_ns))
    world = HostileWorld(gw)
    now = datetime.now(UTC) - timedelta(minutes=5)
    with gw.db() as s:
        m = AccountManager(code="am-x", name=HOSTILE)
        s.add(m)
        s.flush()
        for cid in CUSTOMERS:
            customer = s.scalar(select(Customer).where(Customer.code == cid))
            s.add(ManagerAssignment(manager=m, customer=customer))
            # The registry refuses a hostile basic-charge mode (tests/crm_bridge/tariffs/test_contract.py).
            s.add(Contract(customer=customer, transformer_kva=4000.0, contract_demand_kw=2500.0,
                           basic_charge_mode="contract", pf_standard=0.9,
                           bill_threshold=500_000.0, tariff_id="guangdong-1-10kv"))
        s.flush()
        for cid in CUSTOMERS:
            raise_alert(s, key=f"hostile:{cid}", type="threshold", severity="warning", customer_code=cid,
                        meter_code=f"{cid}-m1", window_start=now - timedelta(hours=1), window_end=now,
                        message=HOSTILE, now=now)
            # An alert whose message comes from the catalogue, with hostile values in it.
            raise_alert(s, key=f"hostile-keyed:{cid}", type="threshold_kw", severity="warning", customer_code=cid,
                        meter_code=None, window_start=now - timedelta(hours=1), window_end=now, message=HOSTILE,
                        now=now, text_key="alert_threshold_kw",
                        params={"where": HOSTILE, "value": 1.0, "limit": 0.5, "at": now.isoformat()})
            t = create_ticket(s, cid, "request", HOSTILE, HOSTILE, now, owner_code="am-x", description=HOSTILE,
                              contact=HOSTILE)
            s.flush()
            add_comment(s, t.id, "mgr", "account_manager", HOSTILE, now)
            attach(s, t.id, HOSTILE, b"plain text", HOSTILE[:64], now)
            add_comment(s, t.id, "mgr", HOSTILE[:20], HOSTILE, now, internal=True)
            replace_rules(s, cid, [{"site": None, "kw_demand": 1.0}], HOSTILE[:64], now)
            for step, minutes in (("acknowledged", 1), ("in_progress", 2), ("resolved", 3)):
                transition(s, t.id, step, now + timedelta(minutes=minutes), note=HOSTILE)
            world.tickets[cid] = t.id
            # The desk accepts only known kinds; a kind written by a sync or by hand is still shown as text.
            s.execute(update(Ticket).where(Ticket.id == t.id).values(kind=HOSTILE[:60]))
        # A second, unresolved ticket, so the manager's queue shows a move button next to hostile text.
        create_ticket(s, "acme", "complaint", HOSTILE, HOSTILE, now, owner_code="am-x")
        s.commit()
    admin = auth.add_user("hostile-admin", PASSWORD, "admin")
    world.renamed_user_id = admin.id
    auth.add_user("eng", PASSWORD, "engineer")
    auth.add_user("mgr", PASSWORD, "account_manager", manager="am-x")
    for cid in CUSTOMERS:
        auth.add_user(f"cust-{cid}", PASSWORD, "customer", customer=cid)
        world.today[cid] = (datetime.now(ZoneInfo(CUSTOMERS[cid])).date() - timedelta(days=1)).isoformat()
    return world
