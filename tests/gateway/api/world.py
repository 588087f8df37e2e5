"""A small real gateway for API and portal tests: three customers, two managers, a user of every role.

Real parts only: the embedded store filled with simulated history, the migrated registry (SQLite), the auth
tables, alerts and tickets made through the CRM bridge's own functions.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import uvicorn
from sqlalchemy import select

from collectors.sim.load import LoadModel
from crm_bridge.alerts import raise_alert
from crm_bridge.desk import create_ticket
from crm_bridge.registry.models import AccountManager, Contract, Customer, ManagerAssignment
from gateway.config import load_config
from gateway.demo.backfill import history_readings
from gateway.runtime import Gateway

CUSTOMERS = {"acme": "Asia/Shanghai", "beta": "Europe/Berlin", "gamma": "Asia/Shanghai"}
MANAGERS = {"am-a": ["acme", "gamma"], "am-b": ["beta"]}
HISTORY_DAYS = 10  # the last full day, its week before, and the day before that when just past midnight
PASSWORD = "correct-horse-battery"  # noqa: S105 - test users only


def _config(data_dir: Path) -> str:
    parts = [f'[gateway]\ndata_dir = "{data_dir}"\nenvironment = "development"\nrun_scheduler = false\n',
             '[api]\nhost = "127.0.0.1"\nport = 0\nwarm_days = 0\n']
    for i, (cid, tz) in enumerate(CUSTOMERS.items(), start=1):
        lang = "en" if tz.startswith("Europe") else "zh"
        parts.append(f'[[customers]]\nid = "{cid}"\nname = "{cid.title()} Works"\ntimezone = "{tz}"\n'
                     f'language = "{lang}"\n')
        parts.append(f'[[sites]]\nid = "{cid}-site"\ncustomer = "{cid}"\n')
        parts.append(f'[[meters]]\nid = "{cid}-m1"\nsite = "{cid}-site"\ndevice = "{cid}-dev"\n')
        parts.append(f'[[devices]]\ntype = "modbus"\nname = "{cid}-dev"\nhost = "127.0.0.1"\nport = 1\n'
                     f'unit = {i}\nprofile = "generic"\n')
    return "\n".join(parts)


@dataclass
class World:
    gw: Gateway
    logins: dict[str, dict[str, Any]] = field(default_factory=dict)  # username -> role, customer, manager
    alerts: dict[str, int] = field(default_factory=dict)  # customer -> alert id
    tickets: dict[str, int] = field(default_factory=dict)  # customer -> ticket id
    today: dict[str, str] = field(default_factory=dict)  # customer -> local date of the last full day


def build_world(tmp: Path) -> World:
    (tmp / "gateway.toml").write_text(_config(tmp / "state"))
    gw = Gateway.from_config(load_config(tmp / "gateway.toml"))
    from gateway.web import auth_service

    auth = auth_service(gw)
    now_ns = time.time_ns() // (900 * 10**9) * (900 * 10**9)
    start_ns = now_ns - HISTORY_DAYS * 86400 * 10**9
    tags = gw.directory.tags
    for i, cid in enumerate(CUSTOMERS, start=1):
        model = LoadModel(peak_kw=1000 * i, seed=40 + i, timezone=CUSTOMERS[cid])
        gw.store.write(history_readings(model, f"{cid}-dev", tags[f"{cid}-dev"], start_ns, now_ns, now_ns))
    world = World(gw)
    now = datetime.now(UTC)
    with gw.db() as s:
        for code, customers in MANAGERS.items():
            m = AccountManager(code=code, name=f"Manager {code}")
            s.add(m)
            s.flush()
            for cid in customers:
                customer = s.scalar(select(Customer).where(Customer.code == cid))
                s.add(ManagerAssignment(manager=m, customer=customer))
                s.add(Contract(customer=customer, transformer_kva=4000.0, contract_demand_kw=2500.0,
                               basic_charge_mode="contract", pf_standard=0.9, bill_threshold=500_000.0,
                               tariff_id="guangdong-1-10kv"))
        s.flush()
        for cid in CUSTOMERS:
            a = raise_alert(s, key=f"test:{cid}", type="threshold", severity="warning", customer_code=cid,
                            meter_code=f"{cid}-m1", window_start=now - timedelta(hours=1), window_end=now,
                            message=f"test alert for {cid}", now=now)
            assert a is not None
            world.alerts[cid] = a.id
            t = create_ticket(s, cid, "request", "billing", f"question of {cid}", now,
                              owner_code="am-a" if cid in MANAGERS["am-a"] else "am-b")
            world.tickets[cid] = t.id
        s.commit()
    users = [("admin", "admin", None, None), ("eng", "engineer", None, None),
             ("mgr-a", "account_manager", None, "am-a"), ("mgr-b", "account_manager", None, "am-b")]
    users += [(f"cust-{c}", "customer", c, None) for c in CUSTOMERS]
    for username, role, customer, manager in users:
        auth.add_user(username, PASSWORD, role, customer=customer, manager=manager)
        world.logins[username] = {"role": role, "customer": customer, "manager": manager}
    for cid, tz in CUSTOMERS.items():
        # The last full day: the history ends at the last quarter hour, so just after local midnight yesterday's last
        # interval has no closing reading yet (pending); an hour back is always past it.
        world.today[cid] = ((datetime.now(ZoneInfo(tz)) - timedelta(hours=1)).date() - timedelta(days=1)).isoformat()
    # A stored day-ahead forecast for acme's last full day, so the curve has all three lines.
    day = pd.Timestamp(world.today["acme"]).tz_localize(CUSTOMERS["acme"])
    idx = pd.date_range(day, periods=96, freq="15min")
    gw.query.store_forecast("acme", pd.DataFrame({"forecast": 100.0, "lower80": 90.0, "upper80": 110.0,
                                                   "lower95": 80.0, "upper95": 120.0}, index=idx), time.time_ns())
    return world


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningApi:
    """The real app under uvicorn on a loopback port, in a thread."""

    def __init__(self, gw: Gateway) -> None:
        from gateway.web import create_app

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(gw), host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off", proxy_headers=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RunningApi:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start within 20 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def token_for(client: Any, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


