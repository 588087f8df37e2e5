"""`energy-gateway demo`: real simulators, collectors, store and API on loopback, exiting by itself."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from decimal import Decimal

import httpx
import pandas as pd
import pytest
from aiosmtpd.controller import Controller

from gateway.config import load_config
from gateway.runtime import build_query, build_store
from tests.crm_bridge.notify.receivers import Mailbox, free_port

pytestmark = pytest.mark.slow


def _run(data_dir, seconds=6):
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--duration", str(seconds), "--port", "0",
                           "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.strip().splitlines()]  # stdout stays JSON for scripts
    return lines[0], lines[-1], proc.stderr


def _registry_auth(data_dir):
    from gateway.auth import AuthService
    from gateway.runtime import open_registry

    cfg = load_config(data_dir / "gateway.toml", environ={"GATEWAY_SECRET_KEY": "k" * 32})
    return AuthService(open_registry(cfg, os.environ), "k" * 32)


def test_demo_starts_backfills_collects_and_exits(tmp_path):
    first, summary, said = _run(tmp_path / "demo")
    assert first["portal_url"].startswith("http://127.0.0.1:")
    # The plain lines for a person: the portal and every login with its role and password, before the JSON line.
    lines = said.splitlines()
    assert f"门户 Portal: {first['portal_url']}" in lines
    for login in first["logins"]:
        line = next(x for x in lines if x.split()[:1] == [login["username"]])
        assert login["password"] in line.split()
        assert login["role"].replace("_", " ") in line
    kept = tmp_path / "demo" / "demo-logins.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert first["backfilled_readings"] >= 59 * 96 * 5 * 5  # ~60 days x 96 intervals x 5 meters x 5 points
    assert summary["collected"] > 0
    assert summary["stored"] == summary["collected"]
    assert summary["errors"] == 0
    assert summary["devices_online"] == summary["devices"] >= 5

    cfg = load_config(tmp_path / "demo" / "gateway.toml", environ={"GATEWAY_SECRET_KEY": "k" * 32})
    assert {c.id for c in cfg.customers} == {"huaxin-steel", "rhein-chem"}
    q = build_query(cfg, build_store(cfg))
    now = pd.Timestamp.now(tz="UTC")
    days = q.series("customer", "huaxin-steel", now - pd.Timedelta(days=59), now - pd.Timedelta(days=1), "1d")
    assert len(days) >= 57
    assert (days["kwh"] > 0).all()
    assert days["missing_intervals"].sum() == 0  # every screen has data at once

    # A customer changes its password in the portal meanwhile: the restart gives the printed one back.
    changer = next(x for x in first["logins"] if x["role"] == "customer")
    _registry_auth(tmp_path / "demo").reset_password(changer["username"], "changed-by-the-user-1", actor="test")

    again, summary2, _ = _run(tmp_path / "demo", seconds=4)
    assert again["backfilled_readings"] == 0  # history is made once
    assert summary2["stored"] == summary2["collected"] > 0
    same = {(x["username"], x["password"]) for x in first["logins"]}
    assert {(x["username"], x["password"]) for x in again["logins"]} == same  # the same logins after a restart
    auth = _registry_auth(tmp_path / "demo")
    for username, password in same:
        assert auth.authenticate(username, password).username == username
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_demo_with_smtp_mails_the_first_demand_alert_to_the_manager_and_the_customer(tmp_path):
    box, port = Mailbox(), free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=port)  # plain SMTP without login, as the demo speaks it
    smtp.start()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "demo", "--port", "0",
                             "--data-dir", str(tmp_path / "demo"), "--smtp", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["alerts_opened"] >= 1
        addresses = {x["username"]: x["email"] for x in first["logins"]}
        managers = {c: x["email"] for x in first["logins"] if x["role"] == "account_manager" for c in x["customers"]}

        def demand_mail_to_both():
            """The customer whose first demand alert reached its customer login and its manager, if any yet."""
            to = {(rcpt, m["Subject"]) for rcpt_tos, m in box.messages for rcpt in rcpt_tos}
            for customer, manager in managers.items():
                # The subject names the rule by its title, in the recipient's language.
                mine = [subject for rcpt, subject in to
                        if f"({customer})" in subject and ("Demand" in subject or "需量" in subject)]
                got = {rcpt for rcpt, subject in to if subject in mine}
                if {addresses[f"customer-{customer}"], manager} <= got:
                    return customer
            return None

        deadline = time.monotonic() + 240
        while demand_mail_to_both() is None:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, f"no demand alert mailed to both; got {len(box.messages)} mails"
            box.received.wait(1)
            box.received.clear()
        customer = demand_mail_to_both()
        bodies = [m.get_content() for rcpt_tos, m in box.messages if addresses[f"customer-{customer}"] in rcpt_tos]
        assert any("kW" in body or "千瓦" in body for body in bodies), bodies  # the unit, in the reader's language
    finally:
        proc.terminate()
        proc.wait(120)
        smtp.stop()
    assert proc.returncode == 0


def test_demo_serves_health_and_metrics(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "demo", "--duration", "20", "--port", "0",
                             "--data-dir", str(tmp_path / "d")], stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        url = first["portal_url"]
        logins = first["logins"]
        assert {x["role"] for x in logins} == {"admin", "engineer", "account_manager", "customer"}
        customers = {x["customer"]: x for x in logins if x["role"] == "customer"}
        assert set(customers) == {"huaxin-steel", "rhein-chem"}
        me = customers["rhein-chem"]
        token = httpx.post(url + "api/v1/auth/token", data={"username": me["username"], "password": me["password"]},
                           timeout=10).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        curve = httpx.get(url + "api/v1/customers/rhein-chem/day-curve", headers=auth, timeout=30)
        assert curve.status_code == 200
        assert httpx.get(url + "api/v1/customers/huaxin-steel/day-curve", headers=auth, timeout=30).status_code == 404
        # The demo's cost centres split last month's bill, and this month has budgets from it.
        last = f"{pd.Timestamp.now(tz='Asia/Shanghai').replace(day=1) - pd.Timedelta(days=1):%Y-%m}"
        bill = httpx.get(url + f"api/v1/customers/rhein-chem/month?month={last}", headers=auth, timeout=60).json()
        split = httpx.get(url + f"api/v1/customers/rhein-chem/allocation?month={last}", headers=auth,
                          timeout=60).json()
        assert {x["code"] for x in split["lines"]} >= {"RC1000", "RC2000"}
        assert Decimal(split["total"]) == Decimal(str(bill["total"]))  # the split is Decimal, the month a number
        budgets = httpx.get(url + "api/v1/customers/rhein-chem/budgets", headers=auth, timeout=30).json()["budgets"]
        assert {b["cost_centre"] for b in budgets} == {None, "RC1000", "RC2000"}
        assert httpx.get(url + "login", timeout=10).status_code == 200
        health = httpx.get(url + "healthz", timeout=10).json()
        assert health["status"] == "ok"
        assert httpx.get(url + "api/v1/devices/health", timeout=10).status_code == 401
        eng = next(x for x in logins if x["role"] == "engineer")
        eng_token = httpx.post(url + "api/v1/auth/token", data={"username": eng["username"],
                                                                "password": eng["password"]}, timeout=10)
        devices = httpx.get(url + "api/v1/devices/health", timeout=10,
                            headers={"Authorization": f"Bearer {eng_token.json()['access_token']}"}).json()
        assert len(devices) >= 5
        assert {d["protocol"] for d in devices} == {"modbus", "opcua"}
        assert all(d["online"] for d in devices), devices
        assert all({"online", "last_success", "consecutive_failures", "last_latency_s", "overruns"} <= d.keys()
                   for d in devices)
        metrics = httpx.get(url + "metrics", timeout=10).text
        assert "gateway_readings_collected_total" in metrics
        assert 'gateway_device_online{device="huaxin-rolling-in-dev",protocol="modbus"}' in metrics
    finally:
        proc.terminate()
        proc.wait(60)
