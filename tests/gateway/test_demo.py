"""`energy-gateway demo`: real simulators, collectors, store and API on loopback, exiting by itself."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pandas as pd
import pytest

from gateway.config import load_config
from gateway.runtime import build_query, build_store

pytestmark = pytest.mark.slow


def _run(data_dir, seconds=6):
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--duration", str(seconds), "--port", "0",
                           "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    return lines[0], lines[-1]


def test_demo_starts_backfills_collects_and_exits(tmp_path):
    first, summary = _run(tmp_path / "demo")
    assert first["portal_url"].startswith("http://127.0.0.1:")
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

    again, summary2 = _run(tmp_path / "demo", seconds=4)
    assert again["backfilled_readings"] == 0  # history is made once
    assert summary2["stored"] == summary2["collected"] > 0


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
