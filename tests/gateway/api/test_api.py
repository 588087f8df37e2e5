"""What each kind of user gets from the API: curves, series, month figures, exports, tickets, devices."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from tests.gateway.api.world import token_for
from tests.reports.espi import validate


def test_day_curve_has_actual_forecast_last_week_and_bands(client, world):
    headers = token_for(client, "cust-acme")
    day = world.today["acme"]
    body = client.get("/api/v1/customers/acme/day-curve", params={"date": day}, headers=headers).json()
    points = body["points"]
    assert len(points) == 96
    assert points[0]["start"].startswith(f"{day}T00:00:00+08:00")
    assert all(p["actual_kw"] is not None for p in points)
    assert all(p["forecast_kw"] == 400.0 for p in points), "the stored forecast: 100 kWh per 15 min = 400 kW"
    assert all(p["last_week_kw"] is not None for p in points)
    assert {p["band"] for p in points} == {"valley", "flat", "peak"}
    assert body["summary"]["missing_intervals"] == 0
    assert body["summary"]["peak_kw"] == max(p["actual_kw"] for p in points)


def test_day_curve_follows_the_customer_clock_on_a_dst_day(client):
    body = client.get("/api/v1/customers/beta/day-curve", params={"date": "2026-10-25"},
                      headers=token_for(client, "cust-beta")).json()
    assert len(body["points"]) == 100, "25 hours in Berlin when summer time ends"
    assert body["summary"]["missing_intervals"] == 100, "no data that far back: reported missing, not filled"
    assert all(p["actual_kw"] is None for p in body["points"])


def test_validation_errors_name_the_field(client):
    headers = token_for(client, "cust-acme")
    r = client.get("/api/v1/customers/acme/day-curve", params={"date": "2026-13-01"}, headers=headers)
    assert r.status_code == 422
    assert "date" in r.json()["error"]["message"]
    r = client.get("/api/v1/customers/acme/day-curve", params={"date": "1066-10-14"}, headers=headers)
    assert r.status_code == 422
    assert "outside" in r.json()["error"]["message"]
    r = client.get("/api/v1/customers", params={"limit": 0}, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["detail"][0]["where"] == "query.limit"


def test_pagination(client):
    headers = token_for(client, "admin")
    page = client.get("/api/v1/customers", params={"limit": 2, "offset": 1}, headers=headers).json()
    assert page["total"] == 3
    assert [c["id"] for c in page["items"]] == ["beta", "gamma"]


def test_series_and_month(client, world):
    headers = token_for(client, "mgr-a")
    day = world.today["gamma"]
    s = client.get("/api/v1/customers/gamma/series", params={"start": day, "end": day, "freq": "1h"},
                   headers=headers).json()
    assert len(s["intervals"]) == 24
    assert all(i["kwh"] > 0 for i in s["intervals"])
    m = client.get("/api/v1/customers/gamma/month", params={"month": day[:7]}, headers=headers).json()
    assert m["peak_kw"] > 0
    assert m["tou"][-1]["band"] == "total"
    assert abs(sum(r["cost"] for r in m["tou"][:-1]) - m["tou"][-1]["cost"]) < 0.05
    assert m["basic_charge"]["cheapest"] in ("capacity", "demand", "contract")


def test_exports_in_three_formats(client, world):
    headers = token_for(client, "cust-acme")
    day = world.today["acme"]
    params = {"start": day, "end": day}
    csv = client.get("/api/v1/customers/acme/export", params={**params, "format": "csv"}, headers=headers)
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("interval_start,kwh")
    assert len(lines) == 97
    xlsx = client.get("/api/v1/customers/acme/export", params={**params, "format": "xlsx"}, headers=headers)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.max_row >= 97
    xml = client.get("/api/v1/customers/acme/export", params={**params, "format": "greenbutton"}, headers=headers)
    readings = [e for e in validate(xml.content).iter() if e.tag.endswith("IntervalReading")]
    assert len(readings) == 96


def test_ticket_workflow_between_customer_and_manager(client):
    cust, mgr = token_for(client, "cust-beta"), token_for(client, "mgr-b")
    t = client.post("/api/v1/tickets", headers=cust, json={"kind": "complaint", "category": "power_quality",
                                                          "title": "voltage dips at night"}).json()
    assert t["owner"] == "am-b"
    assert t["customer"] == "beta"
    queue = client.get("/api/v1/tickets", params={"status": "new"}, headers=mgr).json()["items"]
    assert t["id"] in [x["id"] for x in queue]
    r = client.post(f"/api/v1/tickets/{t['id']}/transition", headers=cust, json={"to": "acknowledged"})
    assert r.status_code == 403
    for step in ("acknowledged", "in_progress", "resolved"):
        assert client.post(f"/api/v1/tickets/{t['id']}/transition", headers=mgr, json={"to": step}).status_code == 200
    r = client.post(f"/api/v1/tickets/{t['id']}/rate", headers=cust, json={"satisfaction": 4})
    assert r.json()["status"] == "closed"
    assert r.json()["satisfaction"] == 4
    assert [x["to"] for x in r.json()["transitions"]] == ["new", "acknowledged", "in_progress", "resolved", "closed"]
    r = client.post(f"/api/v1/tickets/{t['id']}/transition", headers=mgr, json={"to": "resolved"})
    assert r.status_code == 409
    assert "closed" in r.json()["error"]["message"]


def test_alert_acknowledge_once(client, world):
    headers = token_for(client, "cust-gamma")
    aid = world.alerts["gamma"]
    assert client.post(f"/api/v1/alerts/{aid}/acknowledge", headers=headers).json()["status"] == "acknowledged"
    r = client.post(f"/api/v1/alerts/{aid}/acknowledge", headers=headers)
    assert r.status_code == 409


def test_engineer_sees_devices_points_and_live_values(client):
    headers = token_for(client, "eng")
    devices = client.get("/api/v1/devices", headers=headers).json()["items"]
    assert {d["name"] for d in devices} == {"acme-dev", "beta-dev", "gamma-dev"}
    points = client.get("/api/v1/devices/acme-dev/points", headers=headers).json()
    assert any(p["name"] == "active_power_kw" for p in points)
    live = client.get("/api/v1/devices/acme-dev/live", headers=headers).json()
    assert live
    assert all(p["stale"] for p in live), "backfilled history is minutes old: shown as stale, never as fresh"
    assert client.get("/api/v1/devices", headers=token_for(client, "mgr-a")).status_code == 403


def test_probe_reads_a_real_modbus_simulator(client):
    import asyncio
    import threading

    from collectors.sim.load import LoadModel
    from collectors.sim.modbus_server import ModbusPlantSimulator, SimModbusMeter

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sim = ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel(peak_kw=500, seed=3))], port=0)
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(10)
    try:
        headers = token_for(client, "eng")
        r = client.post("/api/v1/devices/probe", headers=headers,
                        json={"host": "127.0.0.1", "port": sim.port, "unit": 1, "address": 0, "count": 4})
        assert r.status_code == 200, r.text
        assert len(r.json()["registers"]) == 4
        assert r.json()["decodings"]
        r = client.post("/api/v1/devices/probe", headers=headers,
                        json={"host": "127.0.0.1", "port": 1, "unit": 1, "timeout_s": 0.5})
        assert r.status_code == 424
        assert "127.0.0.1:1" in r.json()["error"]["message"]
    finally:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)


def test_concurrent_misses_compute_a_curve_once_and_warming_fills_the_cache(world):
    import threading
    import time

    from gateway.usecases import TtlCache, UseCases

    cache, calls = TtlCache(), []

    def make() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", 60, make))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 8
    assert len(calls) == 1

    views = UseCases(world.gw)
    views.warm(3)
    assert len(views.cache._data) >= 3 * (3 + 1)


def test_services_and_advice_from_the_query_layer_and_the_contract(client, world):
    headers = token_for(client, "cust-acme")
    s = client.get("/api/v1/customers/acme/services", headers=headers).json()
    assert {"card", "tou", "demand", "pf", "base_load", "bill", "advice"} <= s.keys()
    assert s["tou"]["currency"] == "CNY"
    assert s["bill"]["threshold"] == 500_000.0
    assert s["demand"]["limit_kw"] == 2500 * 1.05
    assert s["card"]["complete"]
    advice = client.get("/api/v1/customers/acme/advice", headers=headers).json()
    assert advice, "the simulated plant has something worth doing"
    money = [a["money_per_month"] for a in advice]
    assert money == sorted(money, reverse=True)
    assert all(a["evidence"]["intervals"] > 0 and a["assumptions"] for a in advice)
    r = client.get("/api/v1/customers/acme/services", params={"month": "2030-01"}, headers=headers)
    assert r.status_code == 404


def test_customer_file_and_interaction_log(client, world):
    from crm_bridge.registry.models import Customer, Equipment, Inspection

    with world.gw.db() as s:
        from datetime import UTC, datetime

        from sqlalchemy import select

        customer = s.scalar(select(Customer).where(Customer.code == "beta"))
        eq = Equipment(customer_id=customer.id, kind="transformer", name="T1 10/0.4 kV", rating=4000,
                       rating_unit="kVA")
        eq.inspections.append(Inspection(kind="inspection", at=datetime(2026, 5, 1, tzinfo=UTC), result="ok"))
        s.add(eq)
        s.commit()
    mgr = token_for(client, "mgr-b")
    r = client.post("/api/v1/customers/beta/interactions", headers=mgr,
                    json={"channel": "visit", "summary": "walked the compressor room"})
    assert r.status_code == 201
    f = client.get("/api/v1/customers/beta/file", headers=mgr).json()
    assert f["equipment"][0]["name"] == "T1 10/0.4 kV"
    assert f["equipment"][0]["inspections"][0]["result"] == "ok"
    assert f["interactions"][0]["summary"] == "walked the compressor room"
    assert client.get("/api/v1/customers/beta/file", headers=token_for(client, "cust-beta")).status_code == 403


def test_engineer_browses_an_opcua_server(client):
    import json
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "collectors.sim.opcua_server", "--meters", "1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = json.loads(proc.stdout.readline())["url"]
        headers = token_for(client, "eng")
        nodes = client.get("/api/v1/devices/opcua/browse", params={"url": url, "depth": 3}, headers=headers).json()
        assert any(n["browse_path"] == "0:Objects/2:Plant/2:meter1/2:active_power_kw" for n in nodes)
        r = client.get("/api/v1/devices/opcua/browse", params={"url": "opc.tcp://127.0.0.1:1/"}, headers=headers)
        assert r.status_code == 424
        assert "cannot connect" in r.json()["error"]["message"]
        assert client.get("/api/v1/devices/opcua/browse", params={"url": url},
                          headers=token_for(client, "cust-acme")).status_code == 403
    finally:
        proc.terminate()
        proc.wait(20)
