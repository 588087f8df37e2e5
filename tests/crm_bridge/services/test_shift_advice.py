"""Base-load advice reads the production plan's shifts, not a fixed 22-6 calendar, and says which it used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_bridge.services import ContractInputs, run_all
from crm_bridge.services.inputs import production_hours
from crm_bridge.tariffs import load_tariff
from forecasting import plan_from_frame

TZ = "Asia/Shanghai"
GUANGDONG = load_tariff("guangdong-1-10kv")
TERMS = ContractInputs(transformer_kva=3200.0, contract_demand_kw=2300.0, basic_charge_mode="contract",
                       tariff_id="guangdong-1-10kv")


def _month() -> pd.DataFrame:
    """November 2026: 800 kW round the clock Monday to Saturday (three shifts), 100 kW on Sundays."""
    idx = pd.date_range(pd.Timestamp("2026-11-01", tz=TZ), periods=30 * 96, freq="15min")
    kw = np.where(idx.dayofweek == 6, 100.0, 800.0)
    return pd.DataFrame({"kwh": kw / 4, "kvarh": kw / 8}, index=idx)


def _plan(shifts: int, sundays_off: bool = True) -> pd.DataFrame:
    days = pd.date_range("2026-11-01", "2026-11-30", freq="D")
    rows = pd.DataFrame({"start": [f"{d.date()}T00:00+08:00" for d in days],
                         "operating": ["0" if sundays_off and d.dayofweek == 6 else "1" for d in days],
                         "shift": [str(shifts)] * len(days)})
    return plan_from_frame(rows, "plan.csv", TZ)


def test_a_three_shift_plan_has_no_idle_nights():
    month = _month()
    calendar = run_all(month, TERMS, GUANGDONG)["base_load"]
    planned = run_all(month, TERMS, GUANGDONG, plan=_plan(3))
    base = planned["base_load"]
    sundays = month.index.dayofweek == 6
    # Only the planned stops (the Sundays) are off-hours: no night of a working day is counted idle.
    assert base.off_hours_kwh == pytest.approx(month["kwh"][sundays].sum())
    assert calendar.off_hours_kwh > base.off_hours_kwh + 20 * 8 * 800  # the calendar took the working nights
    assert base.base_kw == pytest.approx(100.0)
    said = base.evidence.assumptions[0]
    assert said.startswith("off-hours from the production plan: 3 shifts (00:00–24:00) on 25 days")
    assert "not operating on 5 days" in said
    assert not any("shift calendar" in a for a in base.evidence.assumptions)
    item = next(a for a in planned["advice"] if a.kind == "base_load")
    assert item.text_key == "advice_base_load_plan"
    assert any("22:00–24:00" in a for a in calendar.evidence.assumptions)  # without a plan: the calendar, said so
    every_day = run_all(month, TERMS, GUANGDONG, plan=_plan(3, sundays_off=False))
    assert every_day["base_load"].base_kw is None  # never idle: no base load to cut, no advice
    assert not any(a.kind == "base_load" for a in every_day["advice"])


def test_shift_counts_explicit_spans_and_uncovered_time():
    idx = pd.date_range(pd.Timestamp("2026-11-02", tz=TZ), periods=3 * 96, freq="15min")  # Mon-Wed
    calendar_off = (idx.hour >= 22) | (idx.hour < 6)
    one = production_hours(idx, _plan(1), calendar_off)
    assert one.producing[idx.hour == 9].all()
    assert not one.producing[idx.hour == 17].any()
    spans = plan_from_frame(pd.DataFrame({"start": ["2026-11-02T06:00+08:00", "2026-11-03T06:00+08:00"],
                                          "end": ["2026-11-02T18:00+08:00", "2026-11-03T10:00+08:00"],
                                          "operating": ["1", "1"]}), "p.csv", TZ)
    own = production_hours(idx, spans, calendar_off)
    day2 = idx.normalize() == pd.Timestamp("2026-11-03", tz=TZ)
    assert own.producing[day2 & (idx.hour == 8)].all()
    assert not own.producing[day2 & (idx.hour == 12)].any()
    assert own.source == "plan+calendar"  # before the first row, the calendar
    assert "plan does not cover" in own.assumption
    assert not own.producing[(idx.normalize() == pd.Timestamp("2026-11-04", tz=TZ)) & (idx.hour == 12)].any()
    assert production_hours(idx, None, calendar_off).source == "calendar"
    after = production_hours(idx + pd.Timedelta(days=60), _plan(3), calendar_off)
    assert after.source == "plan"  # January: the plan's last row holds until a next one (ARCHITECTURE.md)
    before = production_hours(idx - pd.Timedelta(days=60), _plan(3), calendar_off)
    assert before.source == "calendar"  # September, before the plan's first row: the calendar, as without a plan
    assert (before.producing.to_numpy() == ~calendar_off).all()


def test_shift_hours_come_from_the_data_file_and_a_bad_entry_names_its_key():
    import tomllib
    from importlib import resources

    from crm_bridge.errors import ServiceError
    from crm_bridge.services.inputs import shift_hours, shift_hours_of

    assert shift_hours() == {1: (8, 16), 2: (6, 22), 3: (0, 24)}
    shipped = resources.files("crm_bridge").joinpath("data", "services.toml").read_text("utf-8")
    assert "2 = [6, 22]" in shipped
    for bad, said in (("2 = [22, 6]", "[shift_hours] key 2: [22, 6] must be [from, to] whole hours"),
                      ("2 = [6, 25]", "[shift_hours] key 2: [6, 25]"), ("4 = [6, 22]", "[shift_hours] key '4'"),
                      ('2 = "6-22"', "[shift_hours] key 2: '6-22'")):
        doc = tomllib.loads(shipped.replace("2 = [6, 22]", bad))
        with pytest.raises(ServiceError) as err:
            shift_hours_of(doc)
        assert said in str(err.value)
    without_two = tomllib.loads(shipped.replace("2 = [6, 22]", ""))
    with pytest.raises(ServiceError, match=r"key\(s\) 2 missing"):
        shift_hours_of(without_two)
