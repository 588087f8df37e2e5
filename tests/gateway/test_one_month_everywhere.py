"""One month, every surface: the API month view, the portal month page, the monthly report (API and CLI; XLSX and
PDF, in both languages), the services' bill forecast and the Green Button summary all show crm_bridge's one month
bill, to the last digit."""

from __future__ import annotations

import io
import os
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.numbers import format_currency
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from typer.testing import CliRunner

import tests.gateway.api.world as world_mod
from gateway.cli import app as cli
from gateway.usecases import UseCases
from gateway.usecases.services import services_for
from gateway.web import create_app
from tests.gateway.api.world import PASSWORD, token_for
from tests.reports.espi import validate
from tests.reports.pdf import pdf_text

ESPI = "{http://naesb.org/espi}"


@pytest.fixture(scope="module")
def month_world(tmp_path_factory):
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    saved = world_mod.HISTORY_DAYS
    world_mod.HISTORY_DAYS = 75  # the two months before this one have data, whatever today's date
    try:
        tmp = tmp_path_factory.mktemp("monthworld")
        return tmp, world_mod.build_world(tmp)
    finally:
        world_mod.HISTORY_DAYS = saved


def _last_month(tz: str) -> date:
    return (datetime.now(ZoneInfo(tz)).date().replace(day=1) - timedelta(days=1)).replace(day=1)


def _summary(xlsx: bytes) -> dict[str, object]:
    sheet = load_workbook(io.BytesIO(xlsx)).worksheets[0]  # "Summary" in English, "概况" in Chinese
    return {row[0].value: row[1].value for row in sheet.iter_rows(min_row=2)}


def test_one_month_is_the_same_on_every_surface(month_world):
    tmp, world = month_world
    month = _last_month("Asia/Shanghai")
    label = f"{month:%Y-%m}"
    usage, bill = UseCases(world.gw).month_bill("acme", month)
    assert bill is not None, "acme has a contract on a shipped tariff"
    assert bill.intervals.with_energy > 20 * 96, "the month is (nearly) all there"
    client = TestClient(create_app(world.gw))

    # API month view
    view = client.get(f"/api/v1/customers/acme/month?month={label}", headers=token_for(client, "cust-acme")).json()
    assert view["kwh"] == round(bill.energy_kwh, 1)
    assert view["peak_kw"] == round(bill.peak_kw, 3)
    assert view["peak_at"] == bill.peak_at.isoformat()
    assert view["load_factor"] == round(bill.load_factor, 3)
    assert view["pf"] == bill.pf
    assert view["missing_intervals"] == bill.intervals.missing
    assert view["basic_charge"]["amount"] == round(bill.basic_charge, 2)
    assert view["pf_adjustment"]["amount"] == round(bill.pf_adjustment, 2)
    assert view["total"] == round(bill.total, 2)
    assert view["tou"][-1]["cost"] == round(bill.energy_charge, 2)

    # portal month page (the customer's own login)
    token = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": "cust-acme", "password": PASSWORD, "csrf_token": token})
    page = client.get(f"/portal/c/acme/month?month={label}&lang=en").text
    client.cookies.clear()
    assert re.search(r'id="month-kwh">' + re.escape(f"{bill.energy_kwh:,.0f}"), page)
    assert re.search(r'id="month-peak">' + re.escape(f"{bill.peak_kw:,.0f}"), page)
    assert re.search(r'id="bill-total">' + re.escape(f"{bill.total:,.2f}"), page)

    # the monthly report through the API, and through the CLI on the same data directory
    api_report = client.get(f"/api/v1/customers/acme/report?month={label}&format=xlsx&lang=en",
                            headers=token_for(client, "cust-acme"))
    assert api_report.status_code == 200, api_report.text
    out = tmp / "report.xlsx"
    r = CliRunner().invoke(cli, ["report", "customer", "-c", str(tmp / "gateway.toml"), "--customer", "acme",
                                 "--month", label, "--out", str(out), "--lang", "en"])
    assert r.exit_code == 0, r.output
    assert f"{bill.energy_kwh:,.0f} kWh" in r.output
    assert f"total {bill.total:,.2f} CNY" in r.output
    same = {"rel": 1e-14}  # XLSX keeps 15 significant digits
    for summary in (_summary(api_report.content), _summary(out.read_bytes())):
        assert summary["Energy (kWh)"] == pytest.approx(bill.energy_kwh, **same)
        assert summary["Peak 15-min demand (kW)"] == pytest.approx(bill.peak_kw, **same)
        assert summary["Load factor"] == pytest.approx(bill.load_factor, **same)
        assert summary["Power factor"] == bill.pf
        assert summary["Total (CNY)"] == pytest.approx(bill.total, **same)

    # the report in the customer's language (Chinese for acme) as PDF and XLSX, through the API and the CLI
    zh_total = format_currency(round(bill.total, 2), "CNY", locale="zh_CN")
    en_total = format_currency(round(bill.total, 2), "CNY", locale="en_US")
    api_pdf = client.get(f"/api/v1/customers/acme/report?month={label}&format=pdf",
                         headers=token_for(client, "cust-acme"))
    assert api_pdf.status_code == 200, api_pdf.text
    assert zh_total in pdf_text(api_pdf.content)
    api_pdf_en = client.get(f"/api/v1/customers/acme/report?month={label}&format=pdf&lang=en",
                            headers=token_for(client, "cust-acme"))
    assert en_total in pdf_text(api_pdf_en.content)
    cli_pdf = tmp / "report.pdf"
    r = CliRunner().invoke(cli, ["report", "customer", "-c", str(tmp / "gateway.toml"), "--customer", "acme",
                                 "--month", label, "--out", str(cli_pdf)])
    assert r.exit_code == 0, r.output
    assert zh_total in pdf_text(cli_pdf.read_bytes())
    zh_xlsx = client.get(f"/api/v1/customers/acme/report?month={label}&format=xlsx",
                         headers=token_for(client, "cust-acme"))
    assert _summary(zh_xlsx.content)["合计（CNY）"] == pytest.approx(bill.total, **same)
    assert _summary(zh_xlsx.content)["电量（千瓦时）"] == pytest.approx(bill.energy_kwh, **same)

    # the services' bill forecast of a month that is over is the month bill
    forecast = services_for(UseCases(world.gw), "acme", month)["bill"]
    assert forecast["total"] == pytest.approx(bill.total, abs=1e-6)
    assert forecast["mtd_kwh"] == pytest.approx(bill.energy_kwh, abs=1e-9)

    # Green Button: the month's UsageSummary carries the bill
    first, last = month, (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    xml = client.get(f"/api/v1/customers/acme/export?format=greenbutton&start={first}&end={last}",
                     headers=token_for(client, "cust-acme"))
    assert xml.status_code == 200, xml.text
    summaries = validate(xml.content).iter(f"{ESPI}UsageSummary")
    (summary,) = list(summaries)
    bill_total = int(summary.find(f"{ESPI}billLastPeriod").text)
    assert bill_total == round(bill.total * 100_000)


def test_a_month_before_the_tariffs_first_version_is_a_clear_4xx(month_world):
    _, world = month_world
    client = TestClient(create_app(world.gw))
    headers = token_for(client, "cust-acme")
    r = client.get("/api/v1/customers/acme/month?month=2020-06", headers=headers)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "before_tariff"
    assert err["detail"]["tariff"] == "guangdong-1-10kv"
    assert "starts on" in err["message"]
    r = client.get("/api/v1/customers/acme/day-curve?date=2020-06-01", headers=headers)
    assert r.status_code == 200, "a day before the tariff has no bands to shade, and no error"
    assert all(p["band"] is None for p in r.json()["points"])


def test_a_future_month_is_no_data_yet_and_today_has_pending_not_missing(month_world):
    _, world = month_world
    client = TestClient(create_app(world.gw))
    headers = token_for(client, "cust-acme")
    r = client.get("/api/v1/customers/acme/month?month=2099-01", headers=headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "no_data"
    assert "no data yet" in r.json()["error"]["message"]
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    s = client.get("/api/v1/customers/acme/day-curve", params={"date": today}, headers=headers).json()["summary"]
    assert s["pending_intervals"] > 0 or datetime.now(ZoneInfo("Asia/Shanghai")).hour == 23
    assert s["missing_intervals"] == 0, "hours not yet reached are pending, not missing"


def test_the_served_capacity_upgrade_advice_reads_the_earlier_months_from_the_store(month_world):
    """Three months running above 80 % of the transformer's kVA: the advice the API serves says upgrade."""
    from sqlalchemy import select

    from crm_bridge.registry.models import Contract, Customer

    _, world = month_world
    with world.gw.db() as s:
        contract = s.scalar(select(Contract).join(Customer, Customer.id == Contract.customer_id)
                            .where(Customer.code == "gamma"))
        contract.transformer_kva = 3000.0  # gamma's load peaks near 3,000 kW: above 0.8 x 3,000 every month
        s.commit()
    client = TestClient(create_app(world.gw))
    this_month = datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1)
    earlier = [_last_month("Asia/Shanghai")]
    earlier.insert(0, (earlier[0] - timedelta(days=1)).replace(day=1))
    uc = UseCases(world.gw)
    peaks = [uc.month_bill("gamma", m)[0].peak_kw for m in earlier]
    assert all(p > 0.8 * 3000 for p in peaks), peaks
    r = client.get(f"/api/v1/customers/gamma/services?month={this_month:%Y-%m}", headers=token_for(client, "mgr-a"))
    assert r.status_code == 200, r.text
    demand = r.json()["demand"]
    assert demand["upgrade_advised"] is True
    for p in peaks:
        assert f"{p:.0f}" in demand["upgrade_reason"]
