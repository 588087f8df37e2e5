"""The query layer: interval series per meter, site or customer from whichever time-series store is configured.

Energy is validated, estimated and edited as utilities' VEE rules do (the arithmetic is `gateway.intervals`):

- The register at an interval boundary T is a reading within the meter's tolerance of T, or the straight line
  between the readings on either side of T when both are within it (`TimeSeriesStore.near_boundaries` reads only
  those windows). The tolerance is per meter: `Topology.meter_tolerance_s`, else 3 x its device's poll interval
  (`Topology.device_interval_s`, 1 s when unknown), never more than 60 s.
- An interval with the register known at both ends is **measured**. A gap of unknown boundaries between two known
  ones at most `max_estimate_s` apart (default 1 hour) is **estimated**: its register difference is shared in
  proportion to time, so a gap's energy is never booked into one interval. A register that steps back, or a longer
  gap, leaves its intervals **missing**: reported, never filled.
- **Pending** is not missing: intervals in the future, and those after a meter's last known boundary while that is
  at most `max_estimate_s` old (it may still report and the gap still be estimated), count as neither missing nor
  zero.
- A meter with no register readings in the range integrates its mean power (kW, kvar) over the intervals its
  readings cover (>= 90 % of the interval's slices, 90 s slices for a 1 s poll): those are measured with
  `method = "power"`; the others are missing or pending.
- A site or customer sums its meters (a customer its billing meters; a site its billing meters, or its
  sub-meters when it has no billing meter: `Topology.meters_of`); its status is the worst of theirs
  (missing > pending > estimated > measured) and it has energy only when every meter has.

In the 15-min frames of `meter_intervals` and `customer_intervals`, `status` says which of the four an interval is
and `method` how its energy was made (`register`, `power` or `mixed`); `missing` stays what callers filter on: no
energy value (status missing *or pending*). `series()` counts the four apart, and there `missing` means missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

from collectors.reading import (
    ACTIVE_ENERGY_IMPORT_KWH,
    ACTIVE_POWER_KW,
    REACTIVE_ENERGY_IMPORT_KVARH,
    REACTIVE_POWER_KVAR,
    Quality,
)
from gateway.intervals import (
    DEFAULT_MAX_ESTIMATE_S,
    DEFAULT_MIN_COVERAGE,
    MAX_TOLERANCE_S,
    STATUS_NAMES,
    FloatArray,
    IntArray,
    NearReadings,
    Status,
    StatusArray,
    combine,
    near_from_windows,
    power_intervals,
    register_at,
    register_intervals,
    register_values,
    status_names,
)

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.metrics import ForecastAccuracy
    from gateway.store.base import TimeSeriesStore
else:

    class _LazyPandas:
        """pandas, loaded at first use: the collector role imports this module (Topology) and never needs pandas."""

        def __getattr__(self, name: str) -> Any:
            import pandas

            return getattr(pandas, name)

    pd = _LazyPandas()

Scope = Literal["meter", "site", "customer"]
Freq = Literal["15min", "1h", "1d"]
INTERVAL = timedelta(minutes=15)
_INTERVAL_S = 900
_INTERVAL_NS = _INTERVAL_S * 10**9
FORECAST_POINTS = ("forecast_kwh", "lower80_kwh", "upper80_kwh", "lower95_kwh", "upper95_kwh")
FORECAST_COLUMNS = ("forecast", "lower80", "upper80", "lower95", "upper95")  # as gateway.store.base's
DEFAULT_POLL_S = 1.0  # the collectors' default interval_s
TOLERANCE_POLLS = 3.0
_NEAR_LIMIT = 64  # readings per boundary window at most, for a tolerance set far above the poll interval
_SLICES_S = (90, 180, 300, 450, 900)  # divisors of the interval for the power-coverage check
SERIES_COLUMNS = ["kw_mean", "kwh", "demand_max_kw", "kvarh", "pf", "missing_intervals", "intervals", "missing",
                  "measured_intervals", "estimated_intervals", "pending_intervals", "status"]
_STATUS_CODE = {name: code for code, name in enumerate(STATUS_NAMES)}
_READS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="query-read")
_PARALLEL_FROM = 3 * 96  # intervals


class QueryError(Exception):
    """A query names something unknown or asks for an impossible range."""


@dataclass(frozen=True, slots=True)
class Topology:
    """Who owns what: the meter-to-site-to-customer mapping and each customer's time zone.

    Optional: `device_interval_s`, the poll interval by device name; `meter_tolerance_s`, an explicit boundary
    tolerance by meter id (else 3 polls of its device), capped at 60 s; `meter_role`, "billing" or "sub" by meter
    id (a meter not in it is a billing meter). See `meters_of` for which meters a site or customer sums.
    """

    customer_tz: Mapping[str, str]
    site_customer: Mapping[str, str]
    meter_site: Mapping[str, str]
    meter_device: Mapping[str, str]
    device_interval_s: Mapping[str, float] = field(default_factory=dict)
    meter_tolerance_s: Mapping[str, float] = field(default_factory=dict)
    meter_role: Mapping[str, str] = field(default_factory=dict)

    def role_of(self, meter: str) -> str:
        """The meter's role: "billing" (the default) or "sub"."""
        return self.meter_role.get(meter, "billing")

    def meters_at(self, site: str) -> list[str]:
        """Every meter of the site, whatever its role (per-meter things: offline, data gaps, live values)."""
        return sorted(m for m, s in self.meter_site.items() if s == site)

    def meters_of(self, scope: Scope, ident: str) -> list[str]:
        """The meters whose energy a meter, site or customer sums; QueryError for an unknown id.

        A sub-meter measures a line behind a billing (main) meter, so its energy is already in the billing meter's:
        - customer: its billing meters only (what its bill counts);
        - site: its billing meters; a site without one (a workshop measured only by sub-meters) sums its
          sub-meters;
        - meter: the meter itself, whatever its role.
        """
        if scope == "meter":
            if ident not in self.meter_site:
                raise QueryError(f"unknown meter {ident!r}")
            return [ident]
        if scope == "site":
            if ident not in self.site_customer:
                raise QueryError(f"unknown site {ident!r}")
            here = self.meters_at(ident)
            billing = [m for m in here if self.role_of(m) == "billing"]
            return billing or here
        if ident not in self.customer_tz:
            raise QueryError(f"unknown customer {ident!r}")
        sites = {s for s, c in self.site_customer.items() if c == ident}
        return sorted(m for m, s in self.meter_site.items() if s in sites and self.role_of(m) == "billing")

    def tz_of(self, scope: Scope, ident: str) -> ZoneInfo:
        self.meters_of(scope, ident)  # raises QueryError for an unknown id
        if scope == "meter":
            ident, scope = self.meter_site[ident], "site"
        if scope == "site":
            ident = self.site_customer[ident]
        return ZoneInfo(self.customer_tz.get(ident, "UTC"))

    def poll_s(self, meter: str) -> float:
        """The poll interval of the meter's device (1 s when unknown)."""
        return float(self.device_interval_s.get(self.meter_device.get(meter, ""), DEFAULT_POLL_S))

    def tolerance_s(self, meter: str) -> float:
        """How far from a boundary a reading may lie and still give the register there: 3 polls, at most 60 s."""
        explicit = self.meter_tolerance_s.get(meter)
        tol = float(explicit) if explicit is not None else TOLERANCE_POLLS * self.poll_s(meter)
        return min(MAX_TOLERANCE_S, max(tol, 0.001))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _MeterEnergy:
    """Energy and status per meter (rows) and interval (columns), and how each meter's energy was made."""

    energy: FloatArray
    status: StatusArray
    methods: list[str]


def _split_near(near: pd.DataFrame, meters: Sequence[str], boundaries: IntArray) -> dict[str, NearReadings]:
    meter = near["meter"].to_numpy(dtype=object)
    k = near["k"].to_numpy(dtype=np.int64)
    ts = near["ts"].to_numpy(dtype=np.int64)
    value = near["value"].to_numpy()  # object dtype when a meter's register is a 64-bit integer
    out = {}
    for m in meters:
        mine = meter == m
        out[m] = near_from_windows(k[mine], ts[mine], register_values(value[mine]), boundaries)
    return out


class QueryService:
    """Implements crm_bridge.ports.IntervalSource over a TimeSeriesStore.

    `max_estimate_s` is the longest gap estimated across; `min_power_coverage` the share of an interval that power
    readings must cover for a meter without register; `clock` gives "now" (UTC-aware), which separates pending
    from missing.
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        topology: Topology,
        *,
        max_estimate_s: float = DEFAULT_MAX_ESTIMATE_S,
        min_power_coverage: float = DEFAULT_MIN_COVERAGE,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not 0 <= max_estimate_s <= 7 * 86400:
            raise QueryError(f"max_estimate_s must be between 0 and 7 days, not {max_estimate_s!r}")
        if not 0 < min_power_coverage <= 1:
            raise QueryError(f"min_power_coverage must be in (0, 1], not {min_power_coverage!r}")
        self.store = store
        self.topology = topology
        self.max_estimate_ns = int(max_estimate_s * 10**9)
        self.min_power_coverage = float(min_power_coverage)
        self.clock = clock

    def _now_ns(self) -> int:
        now = pd.Timestamp(self.clock())
        if now.tzinfo is None:
            now = now.tz_localize("UTC")
        return int(now.value)

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

    def _energy(
        self, meters: Sequence[str], counter: str, power: str, grid: pd.DatetimeIndex, now_ns: int
    ) -> _MeterEnergy:
        n = len(grid)
        if int(grid[0].value) >= now_ns:  # all in the future: nothing to read yet
            return _MeterEnergy(np.full((len(meters), n), np.nan),
                                np.full((len(meters), n), Status.PENDING, dtype=np.int8), ["register"] * len(meters))
        # Boundaries beyond the range on both sides, so that a gap across its edges is estimated as a whole.
        ext = math.ceil(self.max_estimate_ns / _INTERVAL_NS)
        first = int(grid[0].value) - ext * _INTERVAL_NS
        boundaries = first + np.arange(n + 1 + 2 * ext, dtype=np.int64) * _INTERVAL_NS
        tols = {m: int(self.topology.tolerance_s(m) * 10**9) for m in meters}
        by_meter: dict[str, NearReadings] = {}
        for tol in sorted(set(tols.values())):  # one store read per tolerance (usually one for all meters)
            group = [m for m in meters if tols[m] == tol]
            # enough readings per window to hold the polls before T and the first one at or after it
            limit = min(_NEAR_LIMIT, 2 + math.ceil(tol / 10**9 / min(self.topology.poll_s(m) for m in group)))
            asked = int(np.searchsorted(boundaries, now_ns + tol, side="right"))  # later ones have no readings yet
            if asked:
                near = self.store.near_boundaries(group, counter, first, _INTERVAL_S, asked, tol, limit)
            else:
                near = pd.DataFrame({"meter": [], "k": [], "ts": [], "value": []})
            by_meter.update(_split_near(near, group, boundaries))
        out = _MeterEnergy(np.full((len(meters), n), np.nan),
                           np.full((len(meters), n), Status.MISSING, dtype=np.int8), ["register"] * len(meters))
        no_register = []
        for i, m in enumerate(meters):
            if not by_meter[m].any():
                no_register.append(i)
                continue
            register = register_at(by_meter[m], tols[m])
            energy, status = register_intervals(boundaries, register, now_ns, self.max_estimate_ns, tols[m])
            out.energy[i], out.status[i] = energy[ext : ext + n], status[ext : ext + n]
        if no_register:
            self._power(meters, no_register, power, grid, now_ns, out)
        return out

    def _power(self, meters: Sequence[str], rows: list[int], point: str, grid: pd.DatetimeIndex, now_ns: int,
               out: _MeterEnergy) -> None:
        """Integrate power for the meters without register readings, in slices a few polls wide."""
        n = len(grid)
        start = int(grid[0].value)
        end = start + n * _INTERVAL_NS
        boundaries = start + np.arange(n + 1, dtype=np.int64) * _INTERVAL_NS
        groups: dict[int, list[int]] = {}
        for i in rows:
            poll = self.topology.poll_s(meters[i])
            width = next((w for w in _SLICES_S if w >= 1.5 * poll), _SLICES_S[-1])
            groups.setdefault(width, []).append(i)
        for width, idx in groups.items():
            width_ns = width * 10**9
            # Read on past the range up to now (at most max_estimate_s) to know whether the meter is still live.
            tail = min(self.max_estimate_ns, max(0, now_ns - end))
            stop = end + -(-tail // width_ns) * width_ns
            names = [meters[i] for i in idx]
            count = self.store.buckets(names, point, start, stop, width, "count")
            total = self.store.buckets(names, point, start, stop, width, "sum")
            per = _INTERVAL_S // width
            for i, m in zip(idx, names, strict=True):
                c = count[m].to_numpy(dtype=np.float64)
                seen = np.flatnonzero(np.nan_to_num(c) > 0)
                last = int(start + (int(seen[-1]) + 1) * width_ns) if len(seen) else None
                sums = total[m].to_numpy(dtype=np.float64)[: n * per].reshape(n, per)
                energy, status = power_intervals(
                    boundaries, c[: n * per].reshape(n, per), sums, None if last is None else min(last, now_ns),
                    now_ns, self.max_estimate_ns, self.min_power_coverage,
                )
                out.energy[i], out.status[i], out.methods[i] = energy, status, "power"

    def _intervals(self, meters: Sequence[str], start: datetime, end: datetime, tz: ZoneInfo) -> pd.DataFrame:
        """The 15-min base: kwh, kvarh, kw, pf, status, method and missing (no energy value: missing or pending)."""
        grid = self._grid(start, end, tz)
        now_ns = self._now_ns()
        if meters:
            reactive_args = (meters, REACTIVE_ENERGY_IMPORT_KVARH, REACTIVE_POWER_KVAR, grid, now_ns)
            if len(grid) > _PARALLEL_FROM:
                # Over a long range the reactive read runs beside the active one: InfluxDB scans both at once when it
                # has a core free (measured ~0.7x the time of one after the other). Workers only read, never wait.
                reactive_read = _READS.submit(self._energy, *reactive_args)
                active = self._energy(meters, ACTIVE_ENERGY_IMPORT_KWH, ACTIVE_POWER_KW, grid, now_ns)
                reactive = reactive_read.result()
            else:  # a day: the hand-over to a thread costs more than it saves
                active = self._energy(meters, ACTIVE_ENERGY_IMPORT_KWH, ACTIVE_POWER_KW, grid, now_ns)
                reactive = self._energy(*reactive_args)
            kwh, status = combine(active.energy, active.status)
            kvarh, _ = combine(reactive.energy, reactive.status)
            kinds = set(active.methods)
            method = kinds.pop() if len(kinds) == 1 else "mixed"
        else:
            kwh = kvarh = np.full(len(grid), np.nan)
            ends = grid.to_numpy(dtype="datetime64[ns]").astype(np.int64) + _INTERVAL_NS
            status = np.where(ends > now_ns, Status.PENDING, Status.MISSING).astype(np.int8)
            method = "register"
        frame = pd.DataFrame({"kwh": kwh, "kvarh": kvarh}, index=grid, dtype="float64")
        frame["kw"] = frame["kwh"] * 4.0
        apparent = np.sqrt(frame["kwh"] ** 2 + frame["kvarh"] ** 2)
        frame["pf"] = (frame["kwh"] / apparent).where(apparent > 0)
        frame["missing"] = frame["kwh"].isna()
        frame["status"] = status_names(status)
        frame["method"] = method
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
        # datetime holds microseconds: the nanoseconds of a source time are dropped on purpose, without a warning
        # on stderr for every evaluation of the alert rules.
        return pd.Timestamp(max(good), tz="UTC").to_pydatetime(warn=False)

    # -- roll-ups ------------------------------------------------------------------------------------
    def series(self, scope: Scope, ident: str, start: datetime, end: datetime, freq: Freq = "15min") -> pd.DataFrame:
        """Interval series at 15 min, 1 h or 1 day, bucketed on the customer's local clock.

        Columns: kw_mean (kWh over the hours that have energy: measured or estimated intervals; pending and missing
        ones are left out), kwh, demand_max_kw (max 15-min demand), kvarh, pf, missing_intervals, intervals (all,
        pending included), missing (True when any 15-min interval of the bucket is missing; pending is not
        missing), measured_intervals, estimated_intervals, pending_intervals, and status: the interval's, or for a
        bucket the worst of its intervals (missing > pending > estimated > measured). kwh and kvarh sum measured and
        estimated intervals; a bucket with neither is NaN (a bucket still all pending: no data yet).
        """
        if freq not in ("15min", "1h", "1d"):
            raise QueryError(f"freq must be 15min, 1h or 1d, not {freq!r}")
        tz = self.topology.tz_of(scope, ident)
        base = self._intervals(self.topology.meters_of(scope, ident), start, end, tz)
        code = base["status"].map(_STATUS_CODE).astype("int64")
        flags = pd.DataFrame({f"{name}_intervals": (code == c).astype("int64") for name, c in _STATUS_CODE.items()},
                             index=base.index)
        if freq == "15min":
            out = pd.DataFrame(
                {
                    "kw_mean": base["kw"],
                    "kwh": base["kwh"],
                    "demand_max_kw": base["kw"],
                    "kvarh": base["kvarh"],
                    "pf": base["pf"],
                    "intervals": 1,
                    "status": base["status"],
                }
            )
            out = out.join(flags)
        else:
            rule = "1h" if freq == "1h" else "1D"
            g = base.resample(rule)
            counts = flags.resample(rule).sum().astype("int64")
            kwh = g["kwh"].sum(min_count=1)
            kvarh = g["kvarh"].sum(min_count=1)
            with_energy = counts["measured_intervals"] + counts["estimated_intervals"]
            worst = code.resample(rule).max()
            out = pd.DataFrame(
                {
                    "kw_mean": (kwh / (with_energy * 0.25)).where(with_energy > 0),
                    "kwh": kwh,
                    "demand_max_kw": g["kw"].max(),
                    "kvarh": kvarh,
                    "intervals": g["kwh"].size().astype("int64"),
                    "status": status_names(worst.to_numpy(dtype=np.int8)),
                },
                index=kwh.index,
            )
            out = out.join(counts)
            apparent = np.sqrt(kwh**2 + kvarh**2)
            out["pf"] = (kwh / apparent).where(apparent > 0)
        out["missing"] = out["missing_intervals"] > 0
        return out[SERIES_COLUMNS]

    # -- forecasts ---------------------------------------------------------------------------------
    def store_forecast(self, customer: str, forecast: pd.DataFrame, made_at_ns: int, model: str | None = None,
                       backfilled: bool = False) -> int:
        """Keep one issue of a forecast (columns forecast, lower80, upper80, lower95, upper95; kWh per interval).

        The issue is (customer, made_at_ns, model; model defaults to the frame's `attrs["model"]`); a re-issue for
        the same intervals is kept beside the earlier ones. `backfilled` marks an issue made afterwards for a past
        day (`gateway.jobs.backfill_forecasts`). Returns the number of values stored.
        """
        from gateway.store.base import ForecastIssue

        self.topology.meters_of("customer", customer)
        name = model or str(forecast.attrs.get("model") or "") or "unknown"
        idx = pd.DatetimeIndex(forecast.index)
        if idx.tz is None:
            raise QueryError(f"forecast of {customer!r}: the index must be time-zone aware (interval starts)")
        frame = pd.DataFrame({c: (forecast[c].to_numpy(dtype=float) if c in forecast.columns else np.nan)
                              for c in FORECAST_COLUMNS}, index=range(len(idx)))
        frame.insert(0, "ts", idx.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64))
        return self.store.write_forecast(ForecastIssue(customer, int(made_at_ns), name, bool(backfilled)), frame)

    def forecast(self, customer: str, start: datetime, end: datetime) -> pd.DataFrame:
        """The forecast each interval is shown with, on the same grid as customer_intervals (NaN if none).

        For a local day that is over, the last issue made before the day began: the one that was day-ahead; a day
        without one shows its first issue, with day_ahead false. For today and later days, the latest issue.
        Columns: FORECAST_COLUMNS, issued_at (UTC, NaT when none), model, backfilled, and day_ahead (issued before
        the interval's day began: only those are scored, see `forecast_accuracy`).
        Forecasts stored as readings before issues were kept (device `forecast:<customer>`) are shown where the
        archive holds none in the range, with no issue time (never day-ahead).
        """
        tz = self.topology.tz_of("customer", customer)
        grid = self._grid(start, end, tz)
        start_ns, end_ns = int(grid[0].value), int(grid[-1].value) + _INTERVAL_NS
        rows = self.store.read_forecasts(customer, start_ns, end_ns)
        if rows.empty:
            return self._legacy_forecast(customer, grid, tz)
        # Each row's local day: the local midnights from the grid's first day to the one after its last.
        first_day = pd.Timestamp(grid[0]).tz_convert(tz).date()
        days = (pd.Timestamp(grid[-1]).tz_convert(tz).date() - first_day).days + 1
        midnights = np.array([int(pd.Timestamp(day_bounds((first_day + timedelta(days=k)).isoformat(), tz)[0]).value)
                              for k in range(days + 1)], dtype=np.int64)
        k = np.searchsorted(midnights, rows["ts"].to_numpy(dtype=np.int64), side="right") - 1
        day_start, day_end = midnights[k], midnights[k + 1]
        issued = rows["issued_at"].to_numpy(dtype=np.int64)
        ahead = issued < day_start
        over = day_end <= self._now_ns()
        # Ranked so that each interval's shown issue sorts last: for a day that is over, its last day-ahead issue,
        # else its first; for today and later days, the latest.
        rank = rows.assign(day_ahead=ahead, _first=np.where(over, ahead, True).astype(np.int8),
                           _then=np.where(over & ~ahead, -issued, issued))
        chosen = (rank.sort_values(["_first", "_then", "model"], kind="stable")
                  .drop_duplicates("ts", keep="last").set_index("ts"))
        chosen.index = pd.to_datetime(chosen.index.to_numpy(), utc=True)
        chosen["issued_at"] = pd.to_datetime(chosen["issued_at"], utc=True)  # before reindex: NaT, never a float
        frame = chosen.reindex(grid)
        frame["day_ahead"] = frame["day_ahead"].eq(True)
        frame = frame[[*FORECAST_COLUMNS, "issued_at", "model", "backfilled", "day_ahead"]]
        frame.index = grid.tz_convert(tz)
        frame.index.name = "interval_start"
        return frame

    def _legacy_forecast(self, customer: str, grid: pd.DatetimeIndex, tz: ZoneInfo) -> pd.DataFrame:
        """The newest forecast per interval as stored before issues were kept, as `forecast` answers."""
        meter = f"forecast:{customer}"
        start_ns, end_ns = int(grid[0].value), int(grid[-1].value) + _INTERVAL_NS
        cols = {}
        for point, name in zip(FORECAST_POINTS, FORECAST_COLUMNS, strict=True):
            got = self.store.buckets([meter], point, start_ns, end_ns, _INTERVAL_S, "last")[meter].reindex(grid)
            cols[name] = got.astype("float64")
            if name == "forecast" and got.isna().all():  # nothing stored the old way either: one read, not five
                cols.update({c: pd.Series(np.nan, index=grid) for c in FORECAST_COLUMNS[1:]})
                break
        frame = pd.DataFrame(cols, index=grid)
        frame["issued_at"] = pd.Series(pd.NaT, index=grid, dtype="datetime64[ns, UTC]")
        frame["model"] = pd.Series(None, index=grid, dtype="object")
        frame["backfilled"] = pd.Series(None, index=grid, dtype="object")
        frame["day_ahead"] = False
        frame.index = grid.tz_convert(tz)
        frame.index.name = "interval_start"
        return frame

    def forecast_accuracy(self, customer: str, start: datetime, end: datetime,
                          intervals: pd.DataFrame | None = None) -> ForecastAccuracy:
        """MAE and bias of the day-ahead forecasts over [start, end) against measured intervals only.

        `intervals`: the range's `customer_intervals`, when the caller has read them already. Intervals shown with
        a forecast that was not day-ahead (made on the day, or of unknown issue) are not scored.
        """
        from forecasting.metrics import forecast_accuracy

        actual = self.customer_intervals(customer, start, end) if intervals is None else intervals
        fc = self.forecast(customer, start, end).reindex(actual.index)
        ahead = fc["day_ahead"].eq(True).to_numpy(dtype=bool)
        values = np.where(ahead, fc["forecast"].to_numpy(dtype=float), np.nan)
        return forecast_accuracy(actual["kwh"].to_numpy(dtype=float), values, actual["status"].astype(str).tolist())


def day_bounds(day: datetime | pd.Timestamp | str, tz: str | ZoneInfo) -> tuple[datetime, datetime]:
    """Local midnight to next local midnight (23 or 25 hours on DST days)."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    d = pd.Timestamp(day).date()
    start = pd.Timestamp(d).tz_localize(zone)
    end = pd.Timestamp(d + timedelta(days=1)).tz_localize(zone)
    return start.to_pydatetime(), end.to_pydatetime()
