"""Projected demand of the running 15-minute window, from the readings so far: the warning comes while load can be shed.

The demand that is billed is a window's energy x 4 (windows at :00, :15, :30 and :45 on the customer's clock). While
a window runs, its energy so far is the energy register now minus the register at the window's start (the same rule
as the query layer's boundaries: a reading within the tolerance of the start, or the straight line between the
readings on either side of it); the rest of the window is the current rate (the newest power reading, else the
register's slope over the last minute) times the time left. Nothing is filled: a meter without a register reading
near the window's start, or without a fresh one now, has no projection, and the account then has none either.

`project_demand` is the one function every surface calls; `evaluate_demand_projection` is the job's rule over it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from crm_bridge.alerts.engine import mark_period_once, raise_alert, resolve
from crm_bridge.alerts.own_rules import rules_of
from crm_bridge.errors import TariffNotInForce
from crm_bridge.registry.models import Alert, AlertText, Customer
from crm_bridge.registry.repo import meters_of_customer
from crm_bridge.tariffs import available_tariffs, effective_contract_kw, load_tariff
from crm_bridge.tariffs.contract import excess_threshold

log = logging.getLogger(__name__)
WINDOW = timedelta(minutes=15)
_WINDOW_H = 0.25


Sample = tuple[int, float | int]  # (source time in ns since the epoch, UTC; value)


class ReadingSource(Protocol):
    """A meter's raw readings (the gateway's store implements it): good values only, oldest first.

    Each method returns (ts, value) pairs with source times in [start, end]: the energy register in kWh (a float,
    or an exact int for a 64-bit register) and the active power in kW.
    """

    def energy_readings(self, meter: str, start: datetime, end: datetime) -> Sequence[Sample]: ...

    def power_readings(self, meter: str, start: datetime, end: datetime) -> Sequence[Sample]: ...


class ProjectionSettings(BaseModel):
    """How the running window is projected and when it warns."""

    model_config = ConfigDict(extra="forbid")
    warning_share: float = Field(0.9, gt=0, le=2, description="warn at this share of the billed limit 1.05 x C")
    tolerance_s: float = Field(60, gt=0, le=300, description="a register reading this close gives the start's")
    max_age_s: float = Field(120, gt=0, le=900, description="the newest reading must be at most this old")
    min_elapsed_s: float = Field(60, ge=0, lt=900, description="no warning before this much of the window ran")
    rate_span_s: float = Field(60, gt=0, le=900, description="span of the register slope when there is no power")


@dataclass(frozen=True)
class MeterProjection:
    """One meter's part: energy so far, its rate now and where it came from, or why there is none."""

    meter: str
    kwh_so_far: float | None = None
    rate_kw: float | None = None
    rate_from: Literal["power", "slope"] | None = None
    last_reading: datetime | None = None
    problem: str | None = None  # in English, for logs and the API; None when the meter has a projection


@dataclass(frozen=True)
class DemandProjection:
    """The running window's projected demand; `projected_kw` None when a meter's readings do not allow one."""

    window_start: datetime
    window_end: datetime
    at: datetime
    meters: tuple[MeterProjection, ...]

    @property
    def complete(self) -> bool:
        return bool(self.meters) and all(m.problem is None for m in self.meters)

    @property
    def problems(self) -> list[str]:
        """Why there is no projection: one line per meter that lacks one (empty when complete)."""
        return [f"{m.meter}: {m.problem}" for m in self.meters if m.problem is not None] or (
            [] if self.meters else ["no meters"])

    @property
    def kwh_so_far(self) -> float | None:
        return sum(m.kwh_so_far or 0.0 for m in self.meters) if self.complete else None

    @property
    def rate_kw(self) -> float | None:
        return sum(m.rate_kw or 0.0 for m in self.meters) if self.complete else None

    @property
    def elapsed(self) -> timedelta:
        """How far the readings reach into the window: from its start to the oldest of the meters' newest."""
        seen = [m.last_reading for m in self.meters if m.last_reading is not None]
        if not seen:
            return timedelta(0)
        return max(timedelta(0), min(min(seen), self.window_end) - self.window_start)

    @property
    def projected_kw(self) -> float | None:
        """(energy so far + rate x time left) / 0.25 h, summed over the meters."""
        if not self.complete:
            return None
        kwh = 0.0
        for m in self.meters:
            if m.kwh_so_far is None or m.rate_kw is None or m.last_reading is None:
                return None
            left = (self.window_end - max(m.last_reading, self.window_start)).total_seconds() / 3600
            kwh += m.kwh_so_far + m.rate_kw * max(left, 0.0)
        return kwh / _WINDOW_H


def demand_window(now: datetime, tz: ZoneInfo | str) -> tuple[datetime, datetime]:
    """The 15-minute window running at `now`, on the customer's clock (aware, in `tz`)."""
    if now.tzinfo is None:
        raise ValueError("demand_window: `now` must be timezone-aware")
    local = now.astimezone(tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz))
    start = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    return start, start + WINDOW


def _utc(ns: int) -> datetime:
    return pd.Timestamp(ns, tz="UTC").to_pydatetime(warn=False)


def _register_at(ts: list[int], values: list[Any], t: int, tol: int) -> Any | None:
    """The register at `t` (ns): a reading within `tol` of it, or the line between the ones either side; else None."""
    before = [i for i, x in enumerate(ts) if t - tol <= x <= t]
    after = [i for i, x in enumerate(ts) if t <= x <= t + tol]
    if before and after:
        b, a = before[-1], after[0]
        if ts[a] == t:
            return values[a]
        if values[a] < values[b]:  # stepped back: the nearer reading, as the query layer takes it
            return values[b] if t - ts[b] <= ts[a] - t else values[a]
        return values[b] + (values[a] - values[b]) * ((t - ts[b]) / (ts[a] - ts[b]))
    if before:
        return values[before[-1]]
    if after:
        return values[after[0]]
    return None


def _meter(source: ReadingSource, meter: str, start: datetime, now: datetime, cfg: ProjectionSettings
           ) -> MeterProjection:
    """Two short reads of the register (around the window's start, and the last minutes) and one of the power."""
    tol = timedelta(seconds=cfg.tolerance_s)
    near = source.energy_readings(meter, start - tol, start + tol)
    e0 = _register_at([t for t, _ in near], [v for _, v in near], int(pd.Timestamp(start).value),
                      int(tol.total_seconds() * 10**9))
    if e0 is None:
        return MeterProjection(meter, problem=f"no energy register reading within {cfg.tolerance_s:g} s of the "
                                              f"window start {start:%H:%M}")
    recent = source.energy_readings(meter, now - timedelta(seconds=max(cfg.max_age_s, cfg.rate_span_s)), now)
    if not recent:
        return MeterProjection(meter, problem=f"no energy register reading in the last "
                                              f"{max(cfg.max_age_s, cfg.rate_span_s):g} s")
    ts = [t for t, _ in recent]
    values = [v for _, v in recent]  # Python ints stay exact: a 64-bit register loses no digit before subtracting
    last = _utc(ts[-1])
    age = (now - last).total_seconds()
    if age > cfg.max_age_s:
        return MeterProjection(meter, last_reading=last,
                               problem=f"the newest energy register reading is {age:.0f} s old")
    so_far = float(values[-1] - e0) if last > start else 0.0
    if so_far < 0:
        return MeterProjection(meter, last_reading=last, problem="the energy register stepped back in the window")
    power = source.power_readings(meter, now - timedelta(seconds=cfg.max_age_s), now)
    if power:
        return MeterProjection(meter, so_far, max(float(power[-1][1]), 0.0), "power", last)
    first = next(i for i, x in enumerate(ts) if x >= ts[-1] - cfg.rate_span_s * 10**9)
    if ts[-1] > ts[first]:
        rate = float(values[-1] - values[first]) / ((ts[-1] - ts[first]) / 3.6e12)
        return MeterProjection(meter, so_far, max(rate, 0.0), "slope", last)
    return MeterProjection(meter, last_reading=last, problem="no power reading and too few register readings for a "
                                                             "rate")


def project_demand(source: ReadingSource, meters: Sequence[str], tz: ZoneInfo | str, now: datetime,
                   settings: ProjectionSettings | None = None) -> DemandProjection:
    """Projected demand (kW) of the 15-minute window running at `now` over `meters` (an account's or a site's)."""
    cfg = settings or ProjectionSettings()
    start, end = demand_window(now, tz)
    parts = tuple(_meter(source, m, start, now, cfg) for m in meters)
    return DemandProjection(window_start=start, window_end=end, at=now, meters=parts)


@dataclass(frozen=True)
class ProjectionOutcome:
    """What the job found for one account: its projection, the limit it was held to, and the alert opened."""

    customer: str
    projection: DemandProjection
    limit_kw: float | None
    alert_id: int | None


def _limits(session: Session, customer: Customer, on: datetime, cfg: ProjectionSettings
            ) -> tuple[list[tuple[float, str]], float | None]:
    """(limit kW, "contract" | "own") for the account, lowest first, and the billed limit 1.05 x C (None without)."""
    out: list[tuple[float, str]] = []
    billed = None
    contract = customer.contract
    if contract is not None:
        version = None
        if contract.tariff_id in available_tariffs():
            try:
                version = load_tariff(contract.tariff_id).version_at(on.date())
            except TariffNotInForce:
                version = None  # the national rules, as the demand watch takes them
        c = effective_contract_kw(contract.contract_demand_kw, contract.transformer_kva, contract.hv_motors_kw or 0.0,
                                  version)
        billed = excess_threshold(version) * c
        out.append((cfg.warning_share * billed, "contract"))
    out += [(float(r.kw_demand), "own") for r in rules_of(session, customer.code)
            if r.site_code is None and r.kw_demand is not None]
    return sorted(out), billed


def evaluate_demand_projection(session: Session, source: ReadingSource, now: datetime,
                               settings: ProjectionSettings | None = None) -> list[ProjectionOutcome]:
    """Project every account's running window; open one `demand_projected` alert per account and window.

    The limit is the lowest of the contract's warning level (`warning_share` x 1.05 x the effective contract
    demand) and the customer's own account-wide kW limit. An account whose readings allow no projection is
    logged and gets no alert. Alerts of windows that have ended are resolved first (`close_ended_windows`).
    Commits.
    """
    if now.tzinfo is None:
        raise ValueError("evaluate_demand_projection: `now` must be timezone-aware")
    cfg = settings or ProjectionSettings()
    closed = close_ended_windows(session, now)
    if closed:
        log.info("demand projection: %d alert(s) of ended windows resolved", len(closed))
    out: list[ProjectionOutcome] = []
    for customer in session.scalars(select(Customer).options(selectinload(Customer.contracts))
                                    .order_by(Customer.code)):
        try:
            outcome = _evaluate(session, source, customer, now, cfg)
        except Exception:  # one account's bad data must not stop the others
            log.exception("demand projection failed for customer %s", customer.code)
            continue
        if outcome is not None:
            out.append(outcome)
    session.commit()
    return out


# A closed alert's message key: the same message, saying it was closed when its window ended.
ENDED_KEYS = {"alert_demand_projected": "alert_demand_projected_ended",
              "alert_demand_projected_own": "alert_demand_projected_own_ended"}
ENDED_NOTE = " (closed automatically: its window has ended)"


def close_ended_windows(session: Session, now: datetime) -> list[int]:
    """Resolve every `demand_projected` alert (open or acknowledged) whose 15-minute window ended by `now`.

    Its projection has become a billed interval (the demand watch judges that one), so the warning no longer asks
    for anything. The alert keeps its message and says why it was closed: the English text gets ENDED_NOTE, the
    message key its ENDED_KEYS twin, which each reader sees in their language in the alert list and the
    "resolved" notification. Returns the ids resolved; does not commit.
    """
    ended = session.scalars(select(Alert).where(Alert.type == "demand_projected", Alert.status != "resolved",
                                                Alert.window_end <= now).order_by(Alert.id)).all()
    for alert in ended:
        text = session.get(AlertText, alert.id)
        if text is not None and text.key in ENDED_KEYS:
            text.key = ENDED_KEYS[text.key]
        if not alert.message.endswith(ENDED_NOTE):
            alert.message += ENDED_NOTE
        resolve(session, alert.id, now)
    return [a.id for a in ended]


def billing_meters(session: Session, code: str, on: date) -> list[str]:
    """The meters whose demand is the account's: its billing meters (a sub-meter measures part of it again)."""
    return [m.code for m in meters_of_customer(session, code, on) if m.billing]


def _evaluate(session: Session, source: ReadingSource, customer: Customer, now: datetime,
              cfg: ProjectionSettings) -> ProjectionOutcome | None:
    tz = ZoneInfo(customer.timezone)
    local = now.astimezone(tz)
    limits, billed = _limits(session, customer, local, cfg)
    if not limits:
        return None
    meters = billing_meters(session, customer.code, local.date())
    if not meters:
        return None
    p = project_demand(source, meters, tz, now, cfg)
    projected = p.projected_kw
    code = customer.code
    if projected is None:
        log.debug("no demand projection for %s in the window ending %s: %s", code, p.window_end,
                  "; ".join(p.problems))
        return ProjectionOutcome(code, p, None, None)
    crossed = [(limit, kind) for limit, kind in limits if projected > limit]
    if not crossed or p.elapsed.total_seconds() < cfg.min_elapsed_s:
        return ProjectionOutcome(code, p, limits[0][0], None)
    limit, kind = crossed[0]
    period = f"{p.window_start.astimezone(UTC):%Y%m%dT%H%MZ}"
    if not mark_period_once(session, "demand_projected", code, period):
        return ProjectionOutcome(code, p, limit, None)
    what = "the contract's warning level" if kind == "contract" else "your own limit"
    alert = raise_alert(
        session, key=f"demand_projected:{code}:{period}", type="demand_projected",
        severity="critical" if billed is not None and projected >= billed else "warning", customer_code=code,
        meter_code=None, window_start=p.window_start, window_end=p.window_end, now=now,
        text_key="alert_demand_projected" if kind == "contract" else "alert_demand_projected_own",
        params={"value": projected, "limit": limit, "at": p.window_end.isoformat(), "kwh": p.kwh_so_far,
                "rate": p.rate_kw},
        message=(f"{code}: demand in the 15-min window ending {p.window_end:%Y-%m-%d %H:%M} is projected at "
                 f"{projected:,.0f} kW, above {what} of {limit:,.0f} kW"),
    )
    return ProjectionOutcome(code, p, limit, alert.id if alert is not None else None)
