"""Billing meters and sub-meters on a real gateway: the bill counts the main meter once, a site sums by its roles."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from collectors.reading import Quality, Reading
from crm_bridge.alerts.evaluate import _site_intervals
from crm_bridge.alerts.projection import billing_meters
from crm_bridge.registry.models import Contract, Customer, Meter
from crm_bridge.tariffs.bill import MonthBill, month_bounds, priced_rows
from gateway.api.routers.meters import _meter
from gateway.config import load_config
from gateway.portal.cost_setup_pages import _meters as setup_meters
from gateway.registry_sync import sync_registry
from gateway.runtime import Gateway
from gateway.usecases.allocation import (
    CostCentreIn,
    FormulaIn,
    RuleIn,
    add_formula,
    add_rule,
    allocation,
    put_cost_centre,
)
from gateway.usecases.figures import UseCases

TZ = "Asia/Shanghai"
# kWh per 15 min: the main (billing) meter sees the plant, the sub-meters three lines behind it.
KWH = {"main": 100.0, "sub1": 30.0, "sub2": 20.0, "sub3": 25.0}
SITES = {"main": "works", "sub1": "works", "sub2": "shop", "sub3": "shop"}  # the shop has sub-meters only


def _config(data_dir: Path) -> str:
    parts = [f'[gateway]\ndata_dir = "{data_dir}"\nenvironment = "development"\nrun_scheduler = false\n',
             f'[[customers]]\nid = "plant"\ntimezone = "{TZ}"\n',
             '[[sites]]\nid = "works"\ncustomer = "plant"\n', '[[sites]]\nid = "shop"\ncustomer = "plant"\n']
    for unit, (meter, site) in enumerate(SITES.items(), start=1):
        role = "billing" if meter == "main" else "sub"
        parts.append(f'[[meters]]\nid = "{meter}"\nsite = "{site}"\ndevice = "d-{meter}"\nrole = "{role}"\n')
        parts.append(f'[[devices]]\ntype = "modbus"\nname = "d-{meter}"\nhost = "127.0.0.1"\nport = 1\n'
                     f'unit = {unit}\nprofile = "generic"\n')
    return "\n".join(parts)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Gateway, date]:
    """The plant's gateway (embedded store, SQLite registry) with last month's registers of its four meters."""
    tmp = tmp_path_factory.mktemp("roles")
    (tmp / "gateway.toml").write_text(_config(tmp / "state"))
    gw = Gateway.from_config(load_config(tmp / "gateway.toml"))
    first = (date.today().replace(day=1) - timedelta(days=1)).replace(day=1)
    start, end = month_bounds(first, ZoneInfo(TZ))
    boundaries = pd.date_range(start, end, freq="15min")  # both ends: every interval of the month is measured
    readings = []
    for meter, kwh in KWH.items():
        register = 1000.0 + kwh * np.arange(len(boundaries))
        for ts, value in zip(boundaries, register, strict=True):
            readings.append(Reading(f"d-{meter}", "active_energy_import_kwh", float(value), "kWh", Quality.GOOD,
                                    int(ts.value), meter=meter, site=SITES[meter], customer="plant"))
            readings.append(Reading(f"d-{meter}", "reactive_energy_import_kvarh", float(value) / 2, "kvarh",
                                    Quality.GOOD, int(ts.value), meter=meter, site=SITES[meter], customer="plant"))
    gw.store.write(readings)
    with gw.db() as s:
        customer = s.scalar(select(Customer).where(Customer.code == "plant"))
        s.add(Contract(customer=customer, transformer_kva=800.0, contract_demand_kw=500.0,
                       basic_charge_mode="contract", pf_standard=0.9, tariff_id="guangdong-1-10kv"))
        s.commit()
    return gw, first


def test_the_bill_counts_the_billing_meter_and_a_site_sums_by_role(plant) -> None:
    gw, first = plant
    uc = UseCases(gw)
    n = len(pd.date_range(*month_bounds(first, ZoneInfo(TZ)), freq="15min", inclusive="left"))
    usage, bill = uc.month_bill("plant", first)
    assert bill is not None
    assert bill.energy_kwh == pytest.approx(KWH["main"] * n)  # not main + sub-meters
    assert bill.intervals.measured == n
    start, end = month_bounds(first, ZoneInfo(TZ))
    works = gw.query.series("site", "works", start, end, "1d")
    shop = gw.query.series("site", "shop", start, end, "1d")
    assert works["kwh"].sum() == pytest.approx(KWH["main"] * n)  # its billing meter, not its sub-meter too
    assert shop["kwh"].sum() == pytest.approx((KWH["sub2"] + KWH["sub3"]) * n)  # no billing meter: its subs
    assert gw.query.series("meter", "sub1", start, end, "1d")["kwh"].sum() == pytest.approx(KWH["sub1"] * n)
    assert (_meter(gw, "main").role, _meter(gw, "sub1").role) == ("billing", "sub")  # GET /api/v1/meters
    assert setup_meters(gw, "plant") == [("main", "billing"), ("sub1", "sub"), ("sub2", "sub"), ("sub3", "sub")]

    with gw.db() as s:  # the registry holds the config's roles, so the alerts sum a site as the gateway does
        assert {code: role for code, role in s.execute(select(Meter.code, Meter.role))} == {
            "main": "billing", "sub1": "sub", "sub2": "sub", "sub3": "sub"}
        today = date.today()
        assert billing_meters(s, "plant", today) == ["main"]  # whose demand the projection watches
        works_alerts = _site_intervals(s, gw.query, "works", start, end, today)
        shop_alerts = _site_intervals(s, gw.query, "shop", start, end, today)
    assert works_alerts is not None
    assert shop_alerts is not None
    assert works_alerts["kwh"].sum() == pytest.approx(KWH["main"] * n)
    assert shop_alerts["kwh"].sum() == pytest.approx((KWH["sub2"] + KWH["sub3"]) * n)
    assert set(shop_alerts["status"]) == {"measured"}


def test_the_allocation_residual_is_main_less_its_sub_meters_and_adds_up_to_the_bill(plant) -> None:
    gw, first = plant
    uc = UseCases(gw)
    with gw.db() as s:
        put_cost_centre(s, "plant", "LINE1", CostCentreIn(name="Line 1", kind="line"))
        put_cost_centre(s, "plant", "SHOP", CostCentreIn(name="Shop", kind="site"))
        add_formula(uc, s, "plant", "LINE1", FormulaIn(formula="sub1", valid_from=date(2020, 1, 1)))
        add_formula(uc, s, "plant", "SHOP", FormulaIn(formula="sub2 + sub3", valid_from=date(2020, 1, 1)))
        add_rule(s, "plant", RuleIn(rule="kwh", valid_from=date(2020, 1, 1)))
    _, bill = uc.month_bill("plant", first)
    assert bill is not None
    rows = priced_rows(bill)  # the rows the bill added up, handed back rather than priced a second time
    assert rows is not None
    assert float(rows["money"].sum()) == bill.energy_charge
    assert priced_rows(MonthBill.model_validate(bill.model_dump())) is None  # a bill rebuilt elsewhere has none
    a = allocation(uc, "plant", first)
    lines = {line.code: line for line in a.lines}
    residual = KWH["main"] - KWH["sub1"] - KWH["sub2"] - KWH["sub3"]
    assert lines["UNMETERED"].kwh == pytest.approx(bill.energy_kwh * residual / KWH["main"])
    assert lines["UNMETERED"].kwh > 0
    assert a.negative_residual is None
    assert lines["SHOP"].kwh == pytest.approx(bill.energy_kwh * (KWH["sub2"] + KWH["sub3"]) / KWH["main"])
    assert a.total == Decimal(str(round(bill.total, 2)))
    assert sum(line.total for line in a.lines) == a.total
    assert a.bill_kwh == pytest.approx(bill.energy_kwh)


def test_the_registry_takes_a_role_it_lacks_from_the_config_and_reports_one_that_differs(plant) -> None:
    gw, _ = plant
    with gw.db() as s:
        main = s.scalar(select(Meter).where(Meter.code == "main"))
        sub1 = s.scalar(select(Meter).where(Meter.code == "sub1"))
        main.role, sub1.role = None, "billing"  # a row from before roles; one changed in the registry
        s.commit()
        try:
            report = sync_registry(s, gw.config, date.today())
            assert (main.role, sub1.role) == ("billing", "billing")  # filled in; kept and reported
            assert [d for d in report.differences if "role" in d] == [
                "registry and gateway.toml differ on meter sub1.role: the registry has 'billing', gateway.toml "
                "'sub'; the registry's is kept (change it there, or correct gateway.toml)"]
        finally:
            sub1.role = "sub"
            s.commit()
