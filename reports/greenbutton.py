"""Green Button (NAESB ESPI 4.0) Atom export of a customer's interval energy and costs, local time and month bills."""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import IntEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

    from crm_bridge.tariffs import Tariff

from crm_bridge.tariffs.model import next_month
from reports.espi_time import fixed_offset, iana_zone, time_configuration

log = logging.getLogger(__name__)

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
ET.register_namespace("", ATOM)
ET.register_namespace("espi", ESPI)

CURRENCY_CODES = {"CNY": 156, "USD": 840, "EUR": 978}
TOU_CODES = {"critical_peak": 1, "peak": 1, "flat": 2, "shoulder": 2, "valley": 3, "off_peak": 3}
CPP_BANDS = frozenset({"critical_peak"})  # also carry ESPI `cpp` 1 beside their `tou`
INTERVAL_S = 900
STATUSES = frozenset({"measured", "estimated", "missing", "pending"})
EXPORTED = ("measured", "estimated")  # missing and pending intervals are left out, never filled
# QualityOfReading: the query layer estimates a gap by sharing the register difference in proportion to time.
QUALITY_ESTIMATED = 9  # estimated using linear interpolation
QUALITY_MIXED = 13
WH, W = 72, 38  # UnitSymbolKind


class GreenButtonError(ValueError):
    """An export that cannot be written as asked: what was wrong and where."""


class ItemKind(IntEnum):
    """ESPI ItemKind of the bill's line items (the schema has no demand-charge kind: the basic charge is delivery)."""

    ENERGY_DELIVERY_FEE = 2
    ENERGY_USAGE_FEE = 3
    TAX = 5
    ENERGY_DELIVERY_CREDIT = 7


@dataclass(frozen=True)
class BandEnergy:
    """Energy and its charge in one TOU band; `start`/`end` when it covers only part of the month (a price change)."""

    band: str
    kwh: float
    amount: float  # in the currency
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class BillSummary:
    """One whole local month's bill (amounts in the currency, energy in kWh, demand in kW), from the month bill."""

    period_start: datetime  # tz-aware local midnight of the 1st
    period_end: datetime  # tz-aware local midnight of the next 1st
    total: float
    kwh: float
    peak_demand_kw: float
    energy_by_band: Sequence[BandEnergy] = ()
    basic_charge: float = 0.0
    pf_adjustment: float = 0.0  # negative: a reward
    government_funds: float = 0.0
    peak_demand_at: datetime | None = None


@dataclass(frozen=True)
class _Item:
    note: str
    amount: int  # 1/100,000 of the currency
    kind: ItemKind
    wh: int | None = None
    period: tuple[int, int] | None = None  # epoch start, duration


def _e(parent: ET.Element, tag: str, text: object | None = None, ns: str = ESPI) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        el.text = str(text)
    return el


def _epoch(ts: pd.Timestamp | datetime) -> int:
    return int(pd.Timestamp(ts).timestamp())


def _epochs(idx: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    return np.asarray((idx - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1), dtype=np.int64)


def _money(amount: float) -> int:
    """Currency as ESPI writes it: hundred-thousandths."""
    return round(float(amount) * 100_000)


def _interval(parent: ET.Element, tag: str, start: int, duration: int) -> None:
    el = _e(parent, tag)
    _e(el, "duration", duration)
    _e(el, "start", start)


def _measurement(parent: ET.Element, tag: str, uom: int, value: int, at: datetime | None = None) -> None:
    el = _e(parent, tag)
    _e(el, "powerOfTenMultiplier", 0)
    if at is not None:
        _e(el, "timeStamp", _epoch(at))
    _e(el, "uom", uom)
    _e(el, "value", value)


# -- time ------------------------------------------------------------------------------------------------------------


def _local_index(intervals: pd.DataFrame, timezone: str | tzinfo | None) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(intervals.index)
    if idx.tz is None:
        raise GreenButtonError("intervals must be indexed by tz-aware interval starts")
    if not (idx.is_monotonic_increasing and idx.is_unique):
        raise GreenButtonError("intervals must be indexed by increasing, distinct interval starts")
    if timezone is not None:
        idx = idx.tz_convert(ZoneInfo(timezone) if isinstance(timezone, str) else timezone)
    return idx


def whole_months(intervals: pd.DataFrame, timezone: str | tzinfo | None = None) -> list[date]:
    """First days of the local months the frame covers from first to last interval, none of them still pending.

    These are the months a Green Button export carries a UsageSummary for; pass one `BillSummary` for each.
    """
    idx = _local_index(intervals, timezone)
    if not len(idx):
        return []
    status = _status(intervals)
    begin, end = idx[0], idx[-1] + pd.Timedelta(seconds=INTERVAL_S)
    months, m = [], date(begin.year, begin.month, 1)
    while (start := _midnight(m, idx.tz)) < end:
        nxt = next_month(m)
        stop = _midnight(nxt, idx.tz)
        inside = (idx >= start) & (idx < stop)
        if (start >= begin and stop <= end and int(inside.sum()) * INTERVAL_S == (stop - start).total_seconds()
                and not (status[inside] == "pending").any()):
            months.append(m)
        m = nxt
    return months


def _midnight(day: date, tz: Any) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize(tz, ambiguous=True, nonexistent="shift_forward")


# -- readings --------------------------------------------------------------------------------------------------------


def _status(intervals: pd.DataFrame) -> npt.NDArray[np.object_]:
    """Each interval's status: the frame's `status`, else (no column, or an empty cell) measured or missing."""
    missing = (intervals["missing"].to_numpy(dtype=bool) if "missing" in intervals.columns
               else intervals["kwh"].isna().to_numpy())
    derived = np.where(missing, "missing", "measured").astype(object)
    if "status" not in intervals.columns:
        return derived
    given = intervals["status"]
    status = np.where(given.isna().to_numpy(), derived, given.astype(str).to_numpy(dtype=object)).astype(object)
    if unknown := sorted(set(status) - STATUSES):
        known = ", ".join(sorted(STATUSES))
        raise GreenButtonError(f"unknown interval status {', '.join(unknown)}; known: {known}")
    return status


def _register_wh(kwh: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Whole Wh per interval: the differences of the running total rounded to the Wh, as a Wh register gives them.

    Each is within 1 Wh of its exact energy, every run of them adds up to its exact energy within 1 Wh and the whole
    export within 0.5 Wh, so the export adds up to the table export to the Wh (rounding each would drift by
    up to half a Wh per interval).
    """
    total = np.floor(np.cumsum(kwh * 1000.0) + 0.5)
    return np.diff(total, prepend=0.0).astype(np.int64)


# -- bills -----------------------------------------------------------------------------------------------------------


def _bills_by_month(bills: Sequence[BillSummary], months: list[date], tz: Any) -> list[tuple[date, BillSummary]]:
    spans = {m: (_midnight(m, tz), _midnight(next_month(m), tz))
             for m in months}
    found: dict[date, BillSummary] = {}
    for bill in bills:
        if bill.period_start.tzinfo is None or bill.period_end.tzinfo is None:
            raise GreenButtonError(f"bill {bill.period_start}..{bill.period_end}: the period must be tz-aware")
        month = next((m for m, (s, e) in spans.items() if (s, e) == (bill.period_start, bill.period_end)), None)
        if month is None:
            raise GreenButtonError(
                f"bill {bill.period_start.isoformat()}..{bill.period_end.isoformat()} is not a whole local month of "
                f"the export; whole months: {', '.join(f'{m:%Y-%m}' for m in months) or 'none'}")
        if month in found:
            raise GreenButtonError(f"two bills for {month:%Y-%m}")
        found[month] = bill
    if absent := [m for m in months if m not in found]:
        raise GreenButtonError(f"no bill for the whole month(s) {', '.join(f'{m:%Y-%m}' for m in absent)}")
    return sorted(found.items())


def _items(bill: BillSummary) -> list[_Item]:
    """Line items with their ESPI ItemKind, checked to add up to the bill's total.

    Energy per band: usage fee; basic charge: delivery fee; PF adjustment: delivery fee, or delivery credit when it
    is a reward; government funds and surcharges: tax.
    """
    items = [
        _Item(f"energy charge, {b.band} band", _money(b.amount), ItemKind.ENERGY_USAGE_FEE, round(b.kwh * 1000),
              (_epoch(b.start), _epoch(b.end) - _epoch(b.start)) if b.start and b.end else None)
        for b in bill.energy_by_band
    ]
    pf = ItemKind.ENERGY_DELIVERY_CREDIT if bill.pf_adjustment < 0 else ItemKind.ENERGY_DELIVERY_FEE
    items += [
        _Item("basic charge", _money(bill.basic_charge), ItemKind.ENERGY_DELIVERY_FEE),
        _Item("power factor adjustment", _money(bill.pf_adjustment), pf),
        _Item("government funds and surcharges", _money(bill.government_funds), ItemKind.TAX),
    ]
    total = sum(i.amount for i in items)
    if abs(total - _money(bill.total)) > len(items):  # each amount rounded once to 1/100,000
        raise GreenButtonError(f"bill {bill.period_start:%Y-%m}: line items add up to {total / 100_000:.5f}, "
                               f"the total is {bill.total:.5f}")
    return items


def _usage_summary(content: ET.Element, bill: BillSummary, currency: int, quality: int | None,
                   tariff_id: str | None) -> None:
    us = _e(content, "UsageSummary")
    start = _epoch(bill.period_start)
    _interval(us, "billingPeriod", start, _epoch(bill.period_end) - start)
    _e(us, "billLastPeriod", _money(bill.total))
    items = _items(bill)
    _e(us, "costAdditionalLastPeriod", sum(i.amount for i in items))
    for item in items:
        detail = _e(us, "costAdditionalDetailLastPeriod")
        _e(detail, "amount", item.amount)
        _e(detail, "note", item.note)
        if item.wh is not None:
            _measurement(detail, "measurement", WH, item.wh)
        _e(detail, "itemKind", int(item.kind))
        if item.period is not None:
            _interval(detail, "itemPeriod", *item.period)
    _e(us, "currency", currency)
    _measurement(us, "overallConsumptionLastPeriod", WH, round(bill.kwh * 1000))
    _measurement(us, "peakDemand", W, round(bill.peak_demand_kw * 1000), bill.peak_demand_at)
    if quality is not None:
        _e(us, "qualityOfReading", quality)
    _e(us, "statusTimeStamp", _epoch(bill.period_end))
    if tariff_id:
        _e(us, "tariffProfile", tariff_id[:256])


# -- feed ------------------------------------------------------------------------------------------------------------


class _Feed:
    def __init__(self, base: str, title: str, updated: datetime) -> None:
        self.base = base
        self.updated = updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.root = ET.Element(f"{{{ATOM}}}feed")
        _e(self.root, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, base)}", ATOM)
        _e(self.root, "title", title, ATOM)
        _e(self.root, "updated", self.updated, ATOM)
        ET.SubElement(self.root, f"{{{ATOM}}}link", rel="self", href=f"{base}/Subscription")

    def entry(self, title: str, self_href: str, up_href: str, related: Sequence[str] = ()) -> ET.Element:
        entry = ET.SubElement(self.root, f"{{{ATOM}}}entry")
        _e(entry, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, self.base + self_href)}", ATOM)
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="self", href=self.base + self_href)
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="up", href=self.base + up_href)
        for href in related:
            ET.SubElement(entry, f"{{{ATOM}}}link", rel="related", href=self.base + href)
        _e(entry, "title", title, ATOM)
        _e(entry, "published", self.updated, ATOM)
        _e(entry, "updated", self.updated, ATOM)
        return ET.SubElement(entry, f"{{{ATOM}}}content")


def export_espi(
    intervals: pd.DataFrame,
    *,
    customer: str,
    title: str,
    tariff: Tariff | None = None,
    bills: Sequence[BillSummary] | None = None,
    currency: str | None = None,
    timezone: str | tzinfo | None = None,
    base_url: str = "https://gateway.invalid/espi/1_1/resource",
    now: datetime | None = None,
) -> bytes:
    """ESPI XML (an Atom feed) of a customer's 15-min intervals, one IntervalBlock per local day.

    `intervals` is the query layer's frame: indexed by tz-aware interval start on the customer's clock (or give
    `timezone`), with `kwh` and `status` (measured, estimated, missing, pending; without it, `missing`). Measured and
    estimated intervals are written in whole Wh (estimated ones with ReadingQuality 9, linear interpolation); missing
    and pending ones are left out, never filled, while each day's block still spans the day up to its last interval
    that is not pending. With `tariff`, each interval's cost is its Wh at the energy price of the tariff version in
    force on its local day (without government funds, which the bill carries), and its TOU band becomes `tou`.
    `bills` gives one UsageSummary for each whole local month of the range (`whole_months`), exactly those.
    LocalTimeParameters come from the zone's rules. The currency is the tariff's (else `currency`, else CNY).
    """
    idx = _local_index(intervals, timezone)
    zone = iana_zone(idx.tz)
    status = _status(intervals)
    kwh = intervals["kwh"].to_numpy(dtype=float)
    exported = np.isin(status, EXPORTED)
    if (bad := exported & ~np.isfinite(kwh)).any():
        first = idx[int(np.flatnonzero(bad)[0])]
        raise GreenButtonError(f"interval {first.isoformat()} is {status[bad][0]} but has no kWh")
    if tariff is not None and currency is not None and currency != tariff.currency:
        raise GreenButtonError(f"currency {currency} disagrees with tariff {tariff.id!r} in {tariff.currency}")
    code = currency or (tariff.currency if tariff is not None else "CNY")
    if code not in CURRENCY_CODES:
        raise GreenButtonError(f"currency {code!r}: use one of {', '.join(CURRENCY_CODES)}")
    months = whole_months(intervals, timezone) if bills is not None else []
    by_month = _bills_by_month(bills, months, idx.tz) if bills is not None else []

    base = f"{base_url}/RetailCustomer/{customer}"
    feed = _Feed(base, title, now or datetime.now(UTC))
    up = "/UsagePoint/1"
    related = [f"{up}/MeterReading", "/LocalTimeParameters/1"] + ([f"{up}/UsageSummary"] if by_month else [])
    content = feed.entry(title, up, "/UsagePoint", related)
    _e(_e(_e(content, "UsagePoint"), "ServiceCategory"), "kind", 0)  # electricity

    year = idx[0].year if len(idx) else (now or datetime.now(UTC)).year
    tc = time_configuration(zone, year) if zone is not None else fixed_offset(idx)
    ltp = _e(feed.entry("Local time", "/LocalTimeParameters/1", "/LocalTimeParameters"), "LocalTimeParameters")
    _e(ltp, "dstEndRule", tc.dst_end_rule)
    _e(ltp, "dstOffset", tc.dst_offset)
    _e(ltp, "dstStartRule", tc.dst_start_rule)
    _e(ltp, "tzOffset", tc.tz_offset)

    mr = f"{up}/MeterReading/1"
    content = feed.entry("Energy (Wh, 15 min)", mr, f"{up}/MeterReading", ["/ReadingType/1", f"{mr}/IntervalBlock"])
    _e(content, "MeterReading")
    rt = _e(feed.entry("Type of Meter Reading Data", "/ReadingType/1", "/ReadingType"), "ReadingType")
    for tag, value in (("accumulationBehaviour", 4), ("commodity", 1), ("currency", CURRENCY_CODES[code]),
                       ("dataQualifier", 12), ("flowDirection", 1), ("intervalLength", INTERVAL_S), ("kind", 12),
                       ("phase", 769), ("powerOfTenMultiplier", 0), ("timeAttribute", 0), ("uom", WH)):
        _e(rt, tag, value)

    _blocks(feed, mr, idx, status, kwh, exported, tariff)

    for n, (month, bill) in enumerate(by_month, start=1):
        content = feed.entry(f"Bill {month:%Y-%m}", f"{up}/UsageSummary/{n}", f"{up}/UsageSummary")
        start, stop = _midnight(month, idx.tz), pd.Timestamp(bill.period_end)
        inside = status[(idx >= start) & (idx < stop)]
        quality = None
        if (inside == "estimated").any():
            quality = QUALITY_MIXED if (inside != "estimated").any() else QUALITY_ESTIMATED
        _usage_summary(content, bill, CURRENCY_CODES[code], quality, tariff.id if tariff is not None else None)
    return bytes(ET.tostring(feed.root, encoding="utf-8", xml_declaration=True))


def _blocks(feed: _Feed, mr: str, idx: pd.DatetimeIndex, status: npt.NDArray[np.object_],
            kwh: npt.NDArray[np.float64], exported: npt.NDArray[np.bool_], tariff: Tariff | None) -> None:
    """One IntervalBlock per local day that has readings.

    Its interval spans the day's intervals in the frame up to the last one that is not pending (23 or 25 hours on a
    DST day), so it covers every reading it holds, and the missing ones left out too.
    """
    starts = _epochs(idx)
    wh = np.zeros(len(idx), dtype=np.int64)
    wh[exported] = _register_wh(kwh[exported])
    cost: npt.NDArray[np.int64] | None = None
    bands: npt.NDArray[np.object_] | None = None
    if tariff is not None:
        table = tariff.price_table(idx, idx.tz)  # on the customer's clock, whatever the tariff's own zone
        # Wh x currency/kWh = 1/1000 of the currency = 100 ESPI cost units: the cost is the written value's.
        cost = np.floor(wh * table["price"].to_numpy(dtype=float) * 100.0 + 0.5).astype(np.int64)
        bands = table["band"].to_numpy(dtype=object)
    wall = idx.tz_localize(None).normalize()
    days = np.split(np.arange(len(idx)), np.flatnonzero(np.diff(np.asarray(wall, dtype="datetime64[s]"))) + 1)
    for n, pos in enumerate((p for p in days if exported[p].any()), start=1):
        spanned = pos[status[pos] != "pending"]
        day = wall[pos[0]].date()
        block = _e(feed.entry(f"Interval block {day}", f"{mr}/IntervalBlock/{n}", f"{mr}/IntervalBlock"),
                   "IntervalBlock")
        _interval(block, "interval", int(starts[pos[0]]), int(starts[spanned[-1]] - starts[pos[0]]) + INTERVAL_S)
        for i in pos[exported[pos]]:
            reading = _e(block, "IntervalReading")
            if cost is not None:
                _e(reading, "cost", int(cost[i]))
            if status[i] == "estimated":
                _e(_e(reading, "ReadingQuality"), "quality", QUALITY_ESTIMATED)
            _interval(reading, "timePeriod", int(starts[i]), INTERVAL_S)
            _e(reading, "value", int(wh[i]))
            if bands is not None and bands[i] in TOU_CODES:
                _e(reading, "tou", TOU_CODES[str(bands[i])])
                if bands[i] in CPP_BANDS:
                    _e(reading, "cpp", 1)
