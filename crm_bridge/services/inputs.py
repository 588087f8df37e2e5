"""Inputs and result parts shared by the services: contract terms, evidence, assumptions from the data file."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from functools import cache
from importlib import resources
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crm_bridge.errors import ServiceError, TariffError
from crm_bridge.tariffs import BasicChargeMode, MonthBill, Tariff, month_bill
from crm_bridge.tariffs.bill import local_zone
from crm_bridge.tariffs.model import zone_of
from crm_bridge.tariffs.power_factor import pf_standards

# ServiceError lives in crm_bridge.errors (the bill raises it too); it is still importable from here.
__all__ = ["ContractInputs", "Evidence", "ProductionHours", "ServiceError", "bill_of", "check_frame",
           "contract_in_force", "evidence", "kw_of", "missing_mask", "months_covered", "priced_by_band",
           "production_hours", "settings", "shift_hours", "shift_hours_of"]



class Dated(Protocol):
    """Anything valid over [valid_from, valid_to): a registry Contract row, a version read from a spreadsheet."""

    @property
    def valid_from(self) -> date: ...

    @property
    def valid_to(self) -> date | None: ...


V = TypeVar("V", bound=Dated)


class ContractInputs(BaseModel):
    """The contract terms the services need (a plain copy of the registry's Contract row).

    `basic_charge_mode` is the one enum (capacity | demand | contract). `timezone` is the customer's zone: prices
    and months are on its clock (the tariff's zone when not given).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    transformer_kva: float = Field(gt=0)
    hv_motors_kw: float = Field(0.0, ge=0)
    contract_demand_kw: float = Field(gt=0)
    basic_charge_mode: BasicChargeMode = BasicChargeMode.CONTRACT
    pf_standard: float = Field(0.90, gt=0, le=1)
    bill_threshold: float | None = Field(None, ge=0)
    tariff_id: str
    timezone: str | None = None

    @field_validator("basic_charge_mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> BasicChargeMode:
        return BasicChargeMode.parse(v)

    @field_validator("pf_standard")
    @classmethod
    def _standard(cls, v: float) -> float:
        if round(v, 2) not in pf_standards():
            raise ValueError(f"no PF adjustment table for standard {v}; known: "
                             f"{', '.join(f'{s:.2f}' for s in pf_standards())}")
        return round(v, 2)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                zone_of(v)
            except TariffError as exc:
                raise ValueError(str(exc)) from None
        return v

    @classmethod
    def from_contract(cls, row: Any, timezone: str | None = None) -> ContractInputs:
        """The terms of a registry Contract row (or anything with its attributes); bad terms raise ServiceError.

        `timezone`: the customer's zone (Customer.timezone, or the gateway's customer config).
        """
        what = f"contract {getattr(row, 'id', None) or '(unsaved)'}"
        try:
            mode = row.basic_charge_mode
            return cls(transformer_kva=row.transformer_kva, hv_motors_kw=row.hv_motors_kw or 0.0,
                       contract_demand_kw=row.contract_demand_kw, basic_charge_mode=mode,
                       pf_standard=row.pf_standard if row.pf_standard is not None else 0.90,
                       bill_threshold=row.bill_threshold, tariff_id=row.tariff_id, timezone=timezone)
        except AttributeError as exc:
            raise ServiceError(f"{what}: no term {exc.name!r}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"])
            raise ServiceError(f"{what}: {field} = {err.get('input')!r}: {err['msg']}") from None


def contract_in_force(versions: Iterable[V], first: date, end: date | None = None) -> V | None:
    """The contract version that bills the period [first, end) (a month, or the one day `first` without `end`).

    Versions have `valid_from` and `valid_to` (None: open). The version in force on `first` bills the period; when
    none is (the account's first contract starts within the period), the first version starting before `end` does.
    A change within a month therefore takes effect from the next month, as the supply contract's terms are read
    once per billing month.
    """
    end = end or first + timedelta(days=1)
    starting: list[V] = []
    for v in versions:
        if v.valid_from <= first and (v.valid_to is None or v.valid_to > first):
            return v
        if first < v.valid_from < end:
            starting.append(v)
    return min(starting, key=lambda v: v.valid_from, default=None)


class Evidence(BaseModel):
    """Which data a result stands on: the period, how many intervals were used and missing, and assumptions."""

    model_config = ConfigDict(frozen=True)
    data: str
    period_start: datetime | None
    period_end: datetime | None
    intervals: int
    missing_intervals: int
    assumptions: list[str] = []


@cache
def settings() -> dict[str, Any]:
    text = resources.files("crm_bridge").joinpath("data", "services.toml").read_text("utf-8")
    return tomllib.loads(text)


REQUIRED = ("kwh",)


def check_frame(frame: pd.DataFrame, what: str, columns: tuple[str, ...] = REQUIRED) -> pd.DatetimeIndex:
    """The frame's tz-aware index; a clear ServiceError for empty, naive or column-less input."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ServiceError(f"{what}: the frame must be indexed by interval start times")
    if frame.index.tz is None:
        raise ServiceError(f"{what}: interval times must be tz-aware (the customer's local time)")
    if len(frame) == 0:
        raise ServiceError(f"{what}: no intervals given")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ServiceError(f"{what}: the frame lacks column(s) {', '.join(missing)}")
    idx = pd.DatetimeIndex(frame.index)
    if idx.has_duplicates:
        raise ServiceError(f"{what}: interval {idx[idx.duplicated()][0]} appears more than once")
    if not idx.is_monotonic_increasing:
        back = next(k for k in range(1, len(idx)) if idx[k] < idx[k - 1])
        raise ServiceError(f"{what}: intervals out of order at {idx[back]} (after {idx[back - 1]})")
    return idx


def missing_mask(frame: pd.DataFrame) -> np.ndarray:
    """Intervals that are missing: status `missing` when the frame says, else no kWh (pending is not missing)."""
    if "status" in frame.columns:
        return (frame["status"] == "missing").to_numpy() | (frame["status"].isna() & frame["kwh"].isna()).to_numpy()
    return frame["kwh"].isna().to_numpy()


def evidence(frame: pd.DataFrame, data: str, assumptions: list[str] | None = None) -> Evidence:
    idx = pd.DatetimeIndex(frame.index)
    missing = missing_mask(frame)
    return Evidence(data=data, period_start=idx[0].to_pydatetime(),
                    period_end=(idx[-1] + pd.Timedelta(minutes=15)).to_pydatetime(), intervals=len(frame),
                    missing_intervals=int(missing.sum()), assumptions=assumptions or [])


def months_covered(idx: pd.DatetimeIndex) -> float:
    """How many months of intervals the index spans, counted in days of the first interval's month."""
    first = pd.Timestamp(idx[0])
    return len(idx) / (96 * first.days_in_month)


def kw_of(frame: pd.DataFrame) -> pd.Series:
    """15-min mean kW: the frame's kw column when present, else kWh x 4."""
    return frame["kw"] if "kw" in frame.columns else frame["kwh"] * 4


def bill_of(frame: pd.DataFrame, contract: ContractInputs, tariff: Tariff, what: str,
            now: datetime | None = None) -> MonthBill:
    """The month bill of a frame holding one local month's intervals (to date); `now` defaults to the frame's end."""
    idx = check_frame(frame, what)
    local = tariff.to_local(idx, local_zone(tariff, contract))
    first: date = local[0].date().replace(day=1)
    last: date = local[-1].date().replace(day=1)
    if first != last:
        raise ServiceError(f"{what}: the intervals run from {first:%Y-%m} into {last:%Y-%m}; give one month")
    return month_bill(frame, contract, tariff, first,
                      now=now or (pd.Timestamp(idx[-1]) + pd.Timedelta(minutes=15)).to_pydatetime())


def priced_by_band(kwh: pd.Series, tariff: Tariff,
                   tz: str | tzinfo | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Energy (kWh) and its cost per TOU band, NaN intervals counting nothing: energy_cost's figures, no groupby."""
    table = tariff.price_table(pd.DatetimeIndex(kwh.index), tz)
    values = np.nan_to_num(kwh.to_numpy(dtype=float))
    names, which = np.unique(table["band"].to_numpy().astype(str), return_inverse=True)
    energy = np.bincount(which, weights=values, minlength=len(names))
    cost = np.bincount(which, weights=values * table["price"].to_numpy(), minlength=len(names))
    return ({str(b): float(v) for b, v in zip(names, energy, strict=True)},
            {str(b): float(v) for b, v in zip(names, cost, strict=True)})


SHIFTS_WHERE = "crm_bridge/data/services.toml [shift_hours]"


def shift_hours_of(doc: Mapping[str, Any]) -> dict[int, tuple[int, int]]:
    """The `[shift_hours]` table of a services.toml document, checked; a ServiceError names the bad key.

    Keys are the shift counts 1, 2 and 3 (each one present); values local [from, to) whole hours,
    0 <= from < to <= 24: the hours a plan row with that many shifts produces.
    """
    raw = doc.get("shift_hours")
    if not isinstance(raw, Mapping):
        raise ServiceError(f"{SHIFTS_WHERE}: missing; give 1, 2 and 3 = [from, to] hours")
    out: dict[int, tuple[int, int]] = {}
    for key, span in raw.items():
        if key not in ("1", "2", "3"):
            raise ServiceError(f"{SHIFTS_WHERE} key {key!r}: a shift count is 1, 2 or 3")
        hours = span if isinstance(span, list) else []
        if (len(hours) != 2 or not all(isinstance(h, int) and not isinstance(h, bool) for h in hours)
                or not 0 <= hours[0] < hours[1] <= 24):
            raise ServiceError(f"{SHIFTS_WHERE} key {key}: {span!r} must be [from, to] whole hours with "
                               "0 <= from < to <= 24")
        out[int(key)] = (hours[0], hours[1])
    lacking = [str(n) for n in (1, 2, 3) if n not in out]
    if lacking:
        raise ServiceError(f"{SHIFTS_WHERE}: key(s) {', '.join(lacking)} missing; give 1, 2 and 3 = [from, to] hours")
    return dict(sorted(out.items()))


@cache
def shift_hours() -> dict[int, tuple[int, int]]:
    """Local [from, to) hours of a plan row's shifts by their number (the data file's `[shift_hours]`)."""
    return shift_hours_of(settings())


class ProductionHours(BaseModel):
    """Which intervals are production time, and what that stands on (shown as the base load's assumption)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    producing: pd.Series  # bool per interval, on the frame's index
    source: str  # "plan", "calendar" or "plan+calendar"
    assumption: str


def production_hours(idx: pd.DatetimeIndex, plan: pd.DataFrame | None, calendar_off: np.ndarray
                     ) -> ProductionHours:
    """Production time per interval from the production plan, the shift calendar where the plan says nothing.

    `plan` is a parsed plan (forecasting.plan_from_frame: rows on tz-aware starts, `operating`, `shift`, optional
    end). A row that is not operating (operating 0, or 0 shifts) is off all its time. A row with a `shift` count
    produces during shift_hours()[count] (3 shifts: all day, so no idle nights); a row with its own `end` produces for
    its whole span (its rows are the shifts) and the time between such rows is off; an operating row without either
    takes its hours from the calendar. Intervals no row holds take the calendar (`calendar_off`: True = off).
    """
    from forecasting import plan_on

    calendar = pd.Series(~np.asarray(calendar_off, dtype=bool), index=idx)
    if plan is None or plan.empty:
        return ProductionHours(producing=calendar, source="calendar", assumption="")
    rows = plan_on(idx, plan)
    explicit = "_end" in plan.columns
    held = rows.notna().any(axis=1).to_numpy()
    if explicit:  # where a row's own end has passed, plan_on holds nothing: off until the next row
        after_first = idx >= plan.index[0]
        held = held | after_first
    if not held.any():  # a plan for other dates: the calendar, as without one
        return ProductionHours(producing=calendar, source="calendar", assumption="")
    op = rows["operating"].to_numpy(dtype=float) if "operating" in rows.columns else np.ones(len(idx))
    op = np.where(np.isnan(op), 1.0, op)
    producing = calendar.to_numpy().copy()
    hour = idx.hour.to_numpy() + idx.minute.to_numpy() / 60
    shifts = rows["shift"].to_numpy(dtype=float) if "shift" in rows.columns else np.full(len(idx), np.nan)
    counted = held & ~np.isnan(shifts)
    in_shift = np.zeros(len(idx), dtype=bool)
    spans = shift_hours()
    for n, (lo, hi) in spans.items():
        in_shift |= (np.clip(np.round(np.nan_to_num(shifts)), 0, 3) == n) & (hour >= lo) & (hour < hi)
    producing[counted] = (in_shift & (op > 0))[counted]
    own_end = held & ~counted if explicit else np.zeros(len(idx), dtype=bool)
    producing[own_end] = (rows.notna().any(axis=1).to_numpy() & (op > 0))[own_end]
    flag_only = np.zeros(len(idx), dtype=bool) if explicit else held & ~counted
    producing[flag_only] = (calendar.to_numpy() & (op > 0))[flag_only]
    counts = np.clip(np.round(np.nan_to_num(shifts)), 0, 3)
    days = pd.Series(np.where(counted & (op > 0), counts, np.nan), index=idx)
    per_day = days.groupby(idx.tz_localize(None).normalize()).max().dropna()
    tally = per_day[per_day > 0].astype(int).value_counts()
    pairs = sorted((int(n), int(c)) for n, c in zip(tally.index, tally.to_numpy(dtype=int), strict=True))
    parts = [f"{n} shift{'s' if n != 1 else ''} ({spans[n][0]:02d}:00–{spans[n][1]:02d}:00) on {c} "
             f"day{'s' if c != 1 else ''}" for n, c in pairs]
    day_key = idx.tz_localize(None).normalize()
    grp = pd.DataFrame({"held": held, "on": producing}, index=idx).groupby(day_key).agg({"held": "all", "on": "any"})
    stopped = int((grp["held"] & ~grp["on"]).sum())
    if stopped:
        parts.append(f"not operating on {stopped} day{'s' if stopped != 1 else ''}")
    if own_end.any():
        parts.append("production during the plan rows' own start-end spans")
    if flag_only.any():
        parts.append("calendar hours on the plan's operating days")
    source = "plan" if held.all() else "plan+calendar"
    note = "" if held.all() else f"; shift calendar for {int((~held).sum())} intervals the plan does not cover"
    return ProductionHours(producing=pd.Series(producing, index=idx), source=source,
                           assumption="off-hours from the production plan: " + ", ".join(parts) + note)
