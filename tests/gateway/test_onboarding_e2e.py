"""Onboarding end to end, without the demo's seed: a fresh registry, two customers from an XLSX workbook (managers,
customers, sites, meters, contracts) through `energy-gateway registry import`, history in the store the way the
tests' world writes it, then the real Modbus collector polling simulators on loopback, and `/services` with money.

Before the import the registry holds only what gateway.toml seeds (customers, sites, meters): no contract, no manager,
and `/services` answers 404 "no contract on file". After it, both customers have a bill."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from collectors.sim.load import LoadModel
from collectors.sim.modbus_server import ModbusPlantSimulator, SimModbusMeter
from crm_bridge.registry.models import AccountManager, Contract, ManagerAssignment
from gateway.cli import app as cli
from gateway.config import load_config
from gateway.demo.backfill import history_readings
from gateway.runtime import Gateway
from gateway.usecases.registry_import import COLUMNS

TZ = "Asia/Shanghai"
PASSWORD = "onboarding-test-password"  # noqa: S105 - a test login only
CUSTOMERS = {"gd-paper": 1, "gd-glass": 2}  # customer -> Modbus unit
READY_S = 120.0  # a bound on waiting for the collector, never an assertion on how long it took


def _config(tmp: Path, port: int) -> Path:
    parts = [f'[gateway]\ndata_dir = "{tmp / "state"}"\nenvironment = "development"\nrun_scheduler = false\n'
             f'timezone = "{TZ}"\n', "[api]\nenabled = false\n"]
    for cid, unit in CUSTOMERS.items():
        parts.append(f'[[customers]]\nid = "{cid}"\nname = "{cid}"\ntimezone = "{TZ}"\n')
        parts.append(f'[[sites]]\nid = "{cid}-1"\ncustomer = "{cid}"\n')
        parts.append(f'[[meters]]\nid = "{cid}-m1"\nsite = "{cid}-1"\ndevice = "{cid}-dev"\n')
        parts.append(f'[[devices]]\ntype = "modbus"\nname = "{cid}-dev"\nhost = "127.0.0.1"\nport = {port}\n'
                     f'unit = {unit}\nprofile = "generic"\ninterval_s = 1.0\ntimeout_s = 2.0\n')
    path = tmp / "gateway.toml"
    path.write_text("\n".join(parts), "utf-8")
    return path


def _workbook(path: Path, since: str) -> Path:
    sheets = {
        "managers": [["am-zhao", "赵敏 Zhao Min", "zhao@example.com"]],
        "customers": [["gd-paper", "广东纸业 GD Paper", TZ, "paper", 2.4e8, "am-zhao"],
                      ["gd-glass", "广东玻璃 GD Glass", TZ, "glass", 9.0e7, "am-zhao"]],
        "sites": [["gd-paper-1", "gd-paper", "Mill 1", "Dongguan"], ["gd-glass-1", "gd-glass", "Works", "Foshan"]],
        "meters": [["gd-paper-m1", "gd-paper-1", "incomer", since], ["gd-glass-m1", "gd-glass-1", "incomer", since]],
        "contracts": [["gd-paper", since, 4000, 0, 2500, "contract", 0.9, 2.0e6, "guangdong-1-10kv"],
                      ["gd-glass", since, 2000, 0, 1200, "capacity", 0.9, None, "guangdong-1-10kv"]],
    }
    book = Workbook()
    book.remove(book.active)
    for kind, rows in sheets.items():
        sheet = book.create_sheet(kind)
        sheet.append(list(COLUMNS[kind]))
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


async def _collect(gw: Gateway, sim: ModbusPlantSimulator) -> dict[str, object]:
    """Run the gateway (collectors and pipeline) until both devices are online and their readings are stored."""
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    loop = asyncio.get_running_loop()
    give_up = loop.time() + READY_S
    try:
        while True:
            health = {h.device: h for h in gw.health()}
            stored = int(gw.pipeline.stats()["stored"])  # type: ignore[call-overload]
            if all(h.online for h in health.values()) and len(health) == 2 and stored >= 20:
                break
            if task.done():
                task.result()
            if loop.time() > give_up:
                raise AssertionError(f"the collector never stored readings of both devices: {health} {stored}")
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    return gw.pipeline.stats()


async def test_two_customers_onboarded_from_a_workbook_get_money_figures(tmp_path: Path) -> None:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    now_local = datetime.now(ZoneInfo(TZ))
    # the previous full month is the one billed; history from a day before it, meters and contracts from then
    this_month = now_local.date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    since = last_month - timedelta(days=1)
    models = {cid: LoadModel(peak_kw=1500 * unit, seed=70 + unit, timezone=TZ) for cid, unit in CUSTOMERS.items()}
    sim = ModbusPlantSimulator([SimModbusMeter(unit, "generic", models[cid]) for cid, unit in CUSTOMERS.items()])
    await sim.start()
    try:
        cfg = _config(tmp_path, sim.port)
        gw = Gateway.from_config(load_config(cfg))
        with gw.db() as s:
            assert s.scalar(select(func.count(Contract.id))) == 0, "the registry starts without contracts"
            assert s.scalar(select(func.count(AccountManager.id))) == 0
        from gateway.web import auth_service, create_app

        auth = auth_service(gw)
        auth.add_user("admin-e2e", PASSWORD, "admin", actor="test")
        client = TestClient(create_app(gw))
        token = client.post("/api/v1/auth/token", data={"username": "admin-e2e", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        month = last_month.strftime("%Y-%m")
        before = client.get(f"/api/v1/customers/gd-paper/services?month={month}", headers=headers)
        assert before.status_code == 404, before.text
        assert "no contract" in before.json()["error"]["message"]

        book = _workbook(tmp_path / "onboarding.xlsx", since.isoformat())
        runner = CliRunner()
        dry = runner.invoke(cli, ["registry", "import", "--config", str(cfg), str(book), "--dry-run"])
        assert dry.exit_code == 0, dry.stdout + dry.stderr
        with gw.db() as s:
            assert s.scalar(select(func.count(Contract.id))) == 0, "a dry run changes nothing"
        done = runner.invoke(cli, ["registry", "import", "--config", str(cfg), str(book)])
        assert done.exit_code == 0, done.stdout + done.stderr
        with gw.db() as s:
            assert s.scalar(select(func.count(Contract.id))) == 2
            assert s.scalar(select(func.count(ManagerAssignment.id))) == 2

        # History up to now, as the simulators' own registers had it (the tests' world writes it the same way) ...
        tags = gw.directory.tags
        start_ns = int(datetime(since.year, since.month, since.day, tzinfo=ZoneInfo(TZ)).timestamp()) * 10**9
        now_ns = int(now_local.timestamp()) // 900 * 900 * 10**9
        for cid, model in models.items():
            gw.store.write(history_readings(model, f"{cid}-dev", tags[f"{cid}-dev"], start_ns, now_ns, now_ns))
        # ... and from there the real collector polling the simulators over Modbus TCP
        stats = await _collect(gw, sim)
        assert int(stats["errors"]) == 0, stats  # type: ignore[call-overload]
        live = client.get("/api/v1/meters/gd-glass-m1/live", headers=headers)
        assert live.status_code == 200, live.text

        for cid in CUSTOMERS:
            r = client.get(f"/api/v1/customers/{cid}/services?month={month}", headers=headers)
            assert r.status_code == 200, f"{cid}: {r.text[:500]}"
            body = r.json()
            assert body["bill"] is not None, cid
            assert body["tou"] is not None, cid
            assert body["bill"]["total"] > 0, body["bill"]
        # a manager's login created by the CLI sees both onboarded accounts in its portfolio
        made = runner.invoke(cli, ["users", "add", "--config", str(cfg), "zhao", "--role", "account_manager",
                                   "--manager", "am-zhao", "--password-env", "ONBOARDING_PW"],
                             env={"ONBOARDING_PW": PASSWORD})
        assert made.exit_code == 0, made.stderr
        token = client.post("/api/v1/auth/token", data={"username": "zhao", "password": PASSWORD}).json()
        mine = client.get("/api/v1/portfolio", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert mine.status_code == 200, mine.text
        assert sorted(a["customer"] for a in mine.json()["items"]) == ["gd-glass", "gd-paper"]
    finally:
        await sim.stop()
