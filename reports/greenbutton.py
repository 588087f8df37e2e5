"""Green Button (NAESB ESPI) Atom export of a customer's interval energy, costs and monthly summary.

UsagePoint (electricity) -> MeterReading -> ReadingType (kWh, 900 s intervals, delta data) and one IntervalBlock per
local day; LocalTimeParameters carry the customer's UTC offset; an optional UsageSummary carries the bill with its
line items (basic charge, PF adjustment) and the peak demand. Missing intervals are left out, never filled.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
ET.register_namespace("", ATOM)
ET.register_namespace("espi", ESPI)

CURRENCY_CODES = {"CNY": 156, "USD": 840, "EUR": 978}
TOU_CODES = {"critical_peak": 1, "peak": 1, "flat": 2, "shoulder": 2, "valley": 3, "off_peak": 3}


@dataclass(frozen=True)
class LineItem:
    note: str
    amount: float  # in the currency


@dataclass(frozen=True)
class BillSummary:
    period_start: datetime
    period_end: datetime
    bill: float
    kwh: float
    peak_demand_kw: float
    line_items: Sequence[LineItem] = field(default_factory=tuple)


def _e(parent: ET.Element, tag: str, text: object | None = None, ns: str = ESPI) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        el.text = str(text)
    return el


def _epoch(ts: pd.Timestamp | datetime) -> int:
    return int(pd.Timestamp(ts).timestamp())


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
    cost: pd.Series | None = None,
    bands: pd.Series | None = None,
    summary: BillSummary | None = None,
    currency: str = "CNY",
    base_url: str = "https://gateway.invalid/espi/1_1/resource",
    now: datetime | None = None,
) -> bytes:
    """ESPI XML for a customer's 15-min intervals.

    `intervals` is indexed by tz-aware interval start with columns `kwh` and `missing` (the query layer's frame).
    `cost` (currency per interval) and `bands` (TOU band name per interval) are optional, on the same index.
    """
    idx = pd.DatetimeIndex(intervals.index)
    if idx.tz is None:
        raise ValueError("intervals must be indexed by tz-aware interval starts")
    base = f"{base_url}/RetailCustomer/{customer}"
    feed = _Feed(base, title, now or datetime.now(UTC))
    up = "/UsagePoint/1"
    content = feed.entry(title, up, "/UsagePoint", [f"{up}/MeterReading", "/LocalTimeParameters/1"])
    usage_point = _e(content, "UsagePoint")
    _e(_e(usage_point, "ServiceCategory"), "kind", 0)  # electricity

    content = feed.entry("Local time", "/LocalTimeParameters/1", "/LocalTimeParameters")
    ltp = _e(content, "LocalTimeParameters")
    first = idx[0] if len(idx) else pd.Timestamp.now(tz=idx.tz)
    dst = first.dst() or timedelta(0)
    offset = first.utcoffset() or timedelta(0)
    observes_dst = any(t.dst() for t in idx[:: 96 * 30])
    _e(ltp, "dstEndRule", "B40E2000")
    _e(ltp, "dstOffset", 3600 if observes_dst else 0)
    _e(ltp, "dstStartRule", "360E2000")
    _e(ltp, "tzOffset", int((offset - dst).total_seconds()))

    mr = f"{up}/MeterReading/1"
    content = feed.entry("Energy (kWh, 15 min)", mr, f"{up}/MeterReading", ["/ReadingType/1", f"{mr}/IntervalBlock"])
    _e(content, "MeterReading")
    content = feed.entry("Type of Meter Reading Data", "/ReadingType/1", "/ReadingType")
    rt = _e(content, "ReadingType")
    for tag, value in (("accumulationBehaviour", 4), ("commodity", 1), ("currency", CURRENCY_CODES[currency]),
                       ("dataQualifier", 12), ("flowDirection", 1), ("intervalLength", 900), ("kind", 12),
                       ("phase", 769), ("powerOfTenMultiplier", 3), ("timeAttribute", 0), ("uom", 72)):
        _e(rt, tag, value)

    keep = ~intervals["missing"].to_numpy(dtype=bool)
    starts = idx[keep]
    kwh = intervals["kwh"].to_numpy(dtype=float)[keep]
    costs = cost.reindex(idx).to_numpy(dtype=float)[keep] if cost is not None else None
    tou = bands.reindex(idx).to_numpy(dtype=object)[keep] if bands is not None else None
    days = starts.normalize()
    for n, day in enumerate(days.unique(), start=1):
        pos = [int(i) for i in (days == day).nonzero()[0]]
        content = feed.entry(f"Interval block {day.date()}", f"{mr}/IntervalBlock/{n}", f"{mr}/IntervalBlock")
        block = _e(content, "IntervalBlock")
        interval = _e(block, "interval")
        _e(interval, "duration", 900 * len(pos))
        _e(interval, "start", _epoch(starts[pos[0]]))
        for i in pos:
            reading = _e(block, "IntervalReading")
            if costs is not None and not pd.isna(costs[i]):
                _e(reading, "cost", int(round(costs[i] * 100_000)))
            period = _e(reading, "timePeriod")
            _e(period, "duration", 900)
            _e(period, "start", _epoch(starts[i]))
            _e(reading, "value", int(round(kwh[i])))
            if tou is not None and tou[i] in TOU_CODES:
                _e(reading, "tou", TOU_CODES[str(tou[i])])

    if summary is not None:
        content = feed.entry("Billing summary", f"{up}/UsageSummary/1", f"{up}/UsageSummary")
        us = _e(content, "UsageSummary")
        period = _e(us, "billingPeriod")
        _e(period, "duration", _epoch(summary.period_end) - _epoch(summary.period_start))
        _e(period, "start", _epoch(summary.period_start))
        _e(us, "billLastPeriod", int(round(summary.bill * 100_000)))
        for item in summary.line_items:
            detail = _e(us, "costAdditionalDetailLastPeriod")
            _e(detail, "amount", int(round(item.amount * 100_000)))
            _e(detail, "note", item.note)
            _e(detail, "dateTime", _epoch(summary.period_end))
        _e(us, "currency", CURRENCY_CODES[currency])
        consumption = _e(us, "overallConsumptionLastPeriod")
        _e(consumption, "powerOfTenMultiplier", 3)
        _e(consumption, "uom", 72)
        _e(consumption, "value", int(round(summary.kwh)))
        peak = _e(us, "peakDemand")
        _e(peak, "powerOfTenMultiplier", 3)
        _e(peak, "uom", 38)  # W
        _e(peak, "value", int(round(summary.peak_demand_kw)))
        _e(us, "statusTimeStamp", _epoch(summary.period_end))
    return bytes(ET.tostring(feed.root, encoding="utf-8", xml_declaration=True))
