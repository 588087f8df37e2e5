"""The query layer: interval series per meter, site or customer from whichever time-series store is configured.

All it asks of a store is `buckets()`, so the same code serves the embedded store and InfluxDB (InfluxQL).
Energy comes from the meter's energy register: the energy of interval [T, T+15 min) is the first register
value at or after T+15 min minus the first at or after T. An interval without both values is missing, and
stays missing through every roll-up: a missing interval is reported (`missing`, `missing_intervals`), never
filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from collectors.reading import (
    ACTIVE_ENERGY_IMPORT_KWH,
    ACTIVE_POWER_KW,
    REACTIVE_ENERGY_IMPORT_KVARH,
    REACTIVE_POWER_KVAR,
    Quality,
    Reading,
)
from gateway.store.base import TimeSeriesStore

Scope = Literal["meter", "site", "customer"]
Freq = Literal["15min", "1h", "1d"]
INTERVAL = timedelta(minutes=15)
_INTERVAL_S = 900
FORECAST_POINTS = ("forecast_kwh", "lower80_kwh", "upper80_kwh", "lower95_kwh", "upper95_kwh")


class QueryError(Exception):
    """A query names something unknown or asks for an impossible range."""


@dataclass(frozen=True, slots=True)
class Topology:
    """Who owns what: the meter-to-site-to-customer mapping and each customer's time zone."""

    customer_tz: Mapping[str, str]
    site_customer: Mapping[str, str]
    meter_site: Mapping[str, str]
    meter_device: Mapping[str, str]

    def meters_of(self, scope: Scope, ident: str) -> list[str]:
        if scope == "meter":
            if ident not in self.meter_site:
                raise QueryError(f"unknown meter {ident!r}")
            return [ident]
        if scope == "site":
            if ident not in self.site_customer:
                raise QueryError(f"unknown site {ident!r}")
            return sorted(m for m, s in self.meter_site.items() if s == ident)
        if ident not in self.customer_tz:
            raise QueryError(f"unknown customer {ident!r}")
        sites = {s for s, c in self.site_customer.items() if c == ident}
        return sorted(m for m, s in self.meter_site.items() if s in sites)

    def tz_of(self, scope: Scope, ident: str) -> ZoneInfo:
        self.meters_of(scope, ident)  # raises QueryError for an unknown id
        if scope == "meter":
            ident, scope = self.meter_site[ident], "site"
        if scope == "site":
            ident = self.site_customer[ident]
        return ZoneInfo(self.customer_tz.get(ident, "UTC"))


def _ns(ts: datetime) -> int:
    return int(pd.Timestamp(ts).value)


class QueryService:
    """Implements crm_bridge.ports.IntervalSource over a TimeSeriesStore."""

    def __init__(self, store: TimeSeriesStore, topology: Topology) -> None:
        self.store = store
        self.topology = topology

    # -- the 15-minute base ------------------------------------------------------------------------
    def _aware(self, ts: datetime, tz: ZoneInfo) -> pd.Timestamp:
        t = pd.Timestamp(ts)
        if t.tzinfo is None:
            t = t.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
        return t

    def _grid(self, start: datetime, end: datetime, tz: ZoneInfo) -> pd.DatetimeIndex:
        s = self._aware(start, tz).tz_convert("UTC").floor("15min")
        e = self._aware(end, tz).tz_convert("UTC").ceil("15min")
        if e <= s:
            raise QueryError(f"empty range: start {start} is not before end {end}")
        if (e - s) > pd.Timedelta(days=3700):
            raise QueryError("range longer than ten years")
        return pd.date_range(s, e, freq="15min", inclusive="left")

    def _energy(self, meters: Sequence[str], counter: str, power: str, grid: pd.DatetimeIndex) -> pd.DataFrame:
        start_ns = int(grid[0].value)
        end_ns = int(grid[-1].value) + 2 * _INTERVAL_S * 10**9
        first = self.store.buckets(meters, counter, start_ns, end_ns, _INTERVAL_S, "first")
        first = first.reindex(grid.append(pd.DatetimeIndex([grid[-1] + INTERVAL])))
        delta = first.shift(-1) - first
        delta = delta.iloc[:-1]
        delta = delta.where(delta >= 0)  # a register that stepped back was reset or replaced: unknown energy
        # A meter that has no energy register at all: integrate its mean power instead (measured, not filled).
        no_counter = [m for m in meters if first[m].isna().all()]
        if no_counter:
            mean_kw = self.store.buckets(no_counter, power, start_ns, end_ns, _INTERVAL_S, "mean").reindex(grid)
            for m in no_counter:
                delta[m] = mean_kw[m] * (_INTERVAL_S / 3600.0)
        return delta

    def _intervals(self, meters: Sequence[str], start: datetime, end: datetime, tz: ZoneInfo) -> pd.DataFrame:
        grid = self._grid(start, end, tz)
        if meters:
            kwh_m = self._energy(meters, ACTIVE_ENERGY_IMPORT_KWH, ACTIVE_POWER_KW, grid)
            kvarh_m = self._energy(meters, REACTIVE_ENERGY_IMPORT_KVARH, REACTIVE_POWER_KVAR, grid)
            kwh = kwh_m.sum(axis=1, min_count=len(meters)).where(kwh_m.notna().all(axis=1))
            kvarh = kvarh_m.sum(axis=1, min_count=len(meters)).where(kvarh_m.notna().all(axis=1))
        else:
            kwh = pd.Series(np.nan, index=grid)
            kvarh = pd.Series(np.nan, index=grid)
        frame = pd.DataFrame({"kwh": kwh.astype("float64"), "kvarh": kvarh.astype("float64")}, index=grid)
        frame["kw"] = frame["kwh"] * 4.0
        apparent = np.sqrt(frame["kwh"] ** 2 + frame["kvarh"] ** 2)
        frame["pf"] = (frame["kwh"] / apparent).where(apparent > 0)
        frame["missing"] = frame["kwh"].isna()
        frame.index = grid.tz_convert(tz)
        frame.index.name = "interval_start"
        return frame

    # -- crm_bridge.ports.IntervalSource ---------------------------------------------------------
    def meter_intervals(self, meter: str, start: datetime, end: datetime) -> pd.DataFrame:
        tz = self.topology.tz_of("meter", meter)
        return self._intervals(self.topology.meters_of("meter", meter), start, end, tz)

    def customer_intervals(self, customer: str, start: datetime, end: datetime) -> pd.DataFrame:
        tz = self.topology.tz_of("customer", customer)
        return self._intervals(self.topology.meters_of("customer", customer), start, end, tz)

    def meter_last_seen(self, meter: str) -> datetime | None:
        device = self.topology.meter_device.get(meter)
        if device is None:
            raise QueryError(f"unknown meter {meter!r}")
        good = [v.source_ts for v in self.store.latest([device]) if v.quality == Quality.GOOD]
        if not good:
            return None
        return pd.Timestamp(max(good), tz="UTC").to_pydatetime()

    # -- roll-ups ------------------------------------------------------------------------------------
    def series(self, scope: Scope, ident: str, start: datetime, end: datetime, freq: Freq = "15min") -> pd.DataFrame:
        """Interval series at 15 min, 1 h or 1 day, bucketed on the customer's local clock.

        Columns: kw_mean, kwh, demand_max_kw (max 15-min demand), kvarh, pf, missing_intervals, intervals,
        missing (True when any 15-min interval of the bucket is missing). kwh and kvarh sum what was measured;
        a bucket with nothing measured is NaN.
        """
        if freq not in ("15min", "1h", "1d"):
            raise QueryError(f"freq must be 15min, 1h or 1d, not {freq!r}")
        tz = self.topology.tz_of(scope, ident)
        base = self._intervals(self.topology.meters_of(scope, ident), start, end, tz)
        if freq == "15min":
            out = pd.DataFrame(
                {
                    "kw_mean": base["kw"],
                    "kwh": base["kwh"],
                    "demand_max_kw": base["kw"],
                    "kvarh": base["kvarh"],
                    "pf": base["pf"],
                    "missing_intervals": base["missing"].astype("int64"),
                    "intervals": 1,
                }
            )
        else:
            rule = "1h" if freq == "1h" else "1D"
            g = base.resample(rule)
            kwh = g["kwh"].sum(min_count=1)
            kvarh = g["kvarh"].sum(min_count=1)
            intervals = g["kwh"].size()
            measured = g["kwh"].count()
            hours = intervals * 0.25
            out = pd.DataFrame(
                {
                    "kw_mean": (kwh / (measured * 0.25)).where(measured > 0),
                    "kwh": kwh,
                    "demand_max_kw": g["kw"].max(),
                    "kvarh": kvarh,
                    "missing_intervals": (intervals - measured).astype("int64"),
                    "intervals": intervals.astype("int64"),
                }
            )
            apparent = np.sqrt(kwh**2 + kvarh**2)
            out["pf"] = (kwh / apparent).where(apparent > 0)
            del hours
        out["missing"] = out["missing_intervals"] > 0
        return out[["kw_mean", "kwh", "demand_max_kw", "kvarh", "pf", "missing_intervals", "intervals", "missing"]]

    # -- forecasts ---------------------------------------------------------------------------------
    def store_forecast(self, customer: str, forecast: pd.DataFrame, made_at_ns: int) -> int:
        """Keep a day-ahead forecast (columns forecast, lower80, upper80, lower95, upper95; kWh per interval)."""
        self.topology.meters_of("customer", customer)
        cols = ("forecast", "lower80", "upper80", "lower95", "upper95")
        readings: list[Reading] = []
        device = f"forecast:{customer}"
        for ts, row in forecast.iterrows():
            ts_ns = int(pd.Timestamp(ts).value)  # type: ignore[arg-type]
            for col, point in zip(cols, FORECAST_POINTS, strict=True):
                v = row.get(col)
                if v is None or pd.isna(v):
                    continue
                readings.append(
                    Reading(device, point, float(v), "kWh", Quality.GOOD, ts_ns, made_at_ns, customer, "", device)
                )
        self.store.write(readings)
        return len(readings)

    def forecast(self, customer: str, start: datetime, end: datetime) -> pd.DataFrame:
        """The newest stored forecast per interval, on the same grid as customer_intervals (NaN if none)."""
        tz = self.topology.tz_of("customer", customer)
        self.topology.meters_of("customer", customer)
        grid = self._grid(start, end, tz)
        meter = f"forecast:{customer}"
        start_ns, end_ns = int(grid[0].value), int(grid[-1].value) + _INTERVAL_S * 10**9
        cols = {}
        for point, name in zip(FORECAST_POINTS, ("forecast", "lower80", "upper80", "lower95", "upper95"), strict=True):
            cols[name] = self.store.buckets([meter], point, start_ns, end_ns, _INTERVAL_S, "last")[meter].reindex(grid)
        frame = pd.DataFrame(cols, index=grid)
        frame.index = grid.tz_convert(tz)
        frame.index.name = "interval_start"
        return frame


def day_bounds(day: datetime | pd.Timestamp | str, tz: str | ZoneInfo) -> tuple[datetime, datetime]:
    """Local midnight to next local midnight (23 or 25 hours on DST days)."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    d = pd.Timestamp(day).date()
    start = pd.Timestamp(d).tz_localize(zone)
    end = pd.Timestamp(d + timedelta(days=1)).tz_localize(zone)
    return start.to_pydatetime(), end.to_pydatetime()
