"""Tariff documents: versions with validity dates, TOU bands by month and time of day, prices as data.

Prices are looked up on the local clock (the customer's zone, else the tariff's own `timezone`): a tz-aware index in
any zone is converted first, a naive one is refused. A date before the first version raises TariffNotInForce.
"""

from __future__ import annotations

import tomllib
from datetime import date, timedelta, tzinfo
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crm_bridge.errors import TariffError, TariffNotInForce

SLOTS_PER_DAY = 96
# Files beside the tariffs that hold rules, not tariffs.
RULE_FILES = frozenset({"pf_adjustment.toml", "contract_demand.toml"})


@cache
def contract_rules() -> dict[str, float]:
    """The national contract-demand rules (floor share, 105 % threshold, excess multiplier) from the data file."""
    text = resources.files("crm_bridge").joinpath("data", "tariffs", "contract_demand.toml").read_text("utf-8")
    return {k: float(v) for k, v in tomllib.loads(text).items()}


def zone_of(tz: str | tzinfo) -> tzinfo:
    """A time zone from its IANA name (or itself); TariffError naming it when unknown."""
    if not isinstance(tz, str):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise TariffError(f"unknown time zone {tz!r}") from None


def _minutes(text: str) -> int:
    hh, mm = text.split(":")
    minutes = int(hh) * 60 + int(mm)
    if not 0 <= minutes <= 1440 or minutes % 15:
        raise ValueError(f"{text!r} is not a quarter-hour between 00:00 and 24:00")
    return minutes


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    band: str
    months: list[int]
    start: str
    end: str

    @field_validator("months")
    @classmethod
    def _months(cls, v: list[int]) -> list[int]:
        if not v or any(not 1 <= m <= 12 for m in v):
            raise ValueError("months must be 1..12")
        return v

    @model_validator(mode="after")
    def _span(self) -> Band:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError(f"band {self.band!r}: start {self.start} is not before end {self.end}")
        return self


class TariffVersion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    valid_from: date
    basic_per_kw_month: float = Field(ge=0)
    basic_per_kva_month: float = Field(ge=0)
    # 发改办价格〔2016〕1583号: unless a version says otherwise, the national rules of contract_demand.toml.
    contract_floor_share_of_capacity: float = Field(
        default_factory=lambda: contract_rules()["contract_floor_share_of_capacity"], ge=0, le=1)
    contract_excess_threshold: float = Field(default_factory=lambda: contract_rules()["contract_excess_threshold"],
                                             ge=1)
    contract_excess_multiplier: float = Field(
        default_factory=lambda: contract_rules()["contract_excess_multiplier"], ge=1)
    government_funds_per_kwh: float = Field(0.0, ge=0)
    energy_prices: dict[str, float]
    bands: list[Band]
    # Whole days priced as one band (e.g. a province's deep-valley pricing on public holidays).
    holidays: list[date] = []
    holiday_band: str | None = None

    @model_validator(mode="after")
    def _covers_every_slot_once(self) -> TariffVersion:
        grid = np.full((12, SLOTS_PER_DAY), "", dtype=object)
        for b in self.bands:
            if b.band not in self.energy_prices:
                raise ValueError(f"band {b.band!r} has no price in energy_prices")
            lo, hi = _minutes(b.start) // 15, _minutes(b.end) // 15
            for m in b.months:
                clash = [s for s in range(lo, hi) if grid[m - 1, s]]
                if clash:
                    raise ValueError(f"month {m} {b.start}-{b.end}: {b.band!r} overlaps {grid[m - 1, clash[0]]!r}")
                grid[m - 1, lo:hi] = b.band
        gaps = np.argwhere(grid == "")
        if len(gaps):
            m, s = gaps[0]
            raise ValueError(f"month {m + 1} {s // 4:02d}:{(s % 4) * 15:02d} belongs to no band")
        if self.holidays and self.holiday_band is None:
            raise ValueError("holidays need a holiday_band (the band their whole day is priced at)")
        if self.holiday_band is not None and self.holiday_band not in self.energy_prices:
            raise ValueError(f"holiday_band {self.holiday_band!r} has no price in energy_prices")
        object.__setattr__(self, "_grid", grid)
        return self

    def band_grid(self) -> np.ndarray:
        """12 months x 96 quarter-hours of band names."""
        grid: np.ndarray = getattr(self, "_grid")  # noqa: B009 - set by the validator above
        return grid


class Tariff(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    currency: str = "CNY"
    # The clock the TOU bands are written on; a customer's own zone, when given, takes its place.
    timezone: str | None = None
    versions: list[TariffVersion]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Tariff:
        days = [v.valid_from for v in self.versions]
        if not days:
            raise ValueError("a tariff needs at least one version")
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError("versions must have strictly increasing valid_from dates")
        return self

    @property
    def first_date(self) -> date:
        """The day the first version starts: nothing before it can be priced."""
        return self.versions[0].valid_from

    def version_at(self, day: date) -> TariffVersion:
        """The version in force on `day` (a version holds until the next one starts); TariffNotInForce before."""
        current = None
        for v in self.versions:
            if v.valid_from <= day:
                current = v
        if current is None:
            raise TariffNotInForce(self.id, self.first_date, day)
        return current

    def versions_between(self, first: date, last: date) -> list[tuple[TariffVersion, date, int]]:
        """The versions in force over the days first..last: (version, its first day there, its number of days)."""
        if last < first:
            raise TariffError(f"tariff {self.id!r}: {last} is before {first}")
        self.version_at(first)
        out: list[tuple[TariffVersion, date, int]] = []
        for k, v in enumerate(self.versions):
            nxt = self.versions[k + 1].valid_from if k + 1 < len(self.versions) else None
            lo = max(first, v.valid_from)
            hi = last if nxt is None else min(last, nxt - timedelta(days=1))
            if lo <= hi:
                out.append((v, lo, (hi - lo).days + 1))
        return out

    def local_zone(self, tz: str | tzinfo | None = None) -> tzinfo:
        """The zone prices are looked up in: the customer's `tz` when given, else the tariff's own."""
        if tz is not None:
            return zone_of(tz)
        if self.timezone is None:
            raise TariffError(f"tariff {self.id!r} names no time zone: give the customer's to price on its clock")
        return zone_of(self.timezone)

    def to_local(self, index: pd.DatetimeIndex, tz: str | tzinfo | None = None) -> pd.DatetimeIndex:
        """`index` on the local clock; a naive index is refused (its clock is unknown)."""
        if not isinstance(index, pd.DatetimeIndex):
            raise TariffError(f"tariff {self.id!r}: intervals must be indexed by their start times")
        if index.tz is None:
            raise TariffError(f"tariff {self.id!r}: interval times are naive (no time zone); prices are looked up "
                              "on the customer's local clock, so give tz-aware times")
        return index.tz_convert(self.local_zone(tz))

    def price_table(self, index: pd.DatetimeIndex, tz: str | tzinfo | None = None) -> pd.DataFrame:
        """Band, energy price, government funds and version start of every interval start, on the local clock.

        The index may be in any zone (it is converted to `tz`, else the tariff's zone); the result keeps it as given.
        """
        local = self.to_local(index, tz)
        wall = local.tz_localize(None)
        slot = (wall.hour * 4 + wall.minute // 15).to_numpy()
        month = wall.month.to_numpy() - 1
        day = wall.normalize()
        bands = np.empty(len(index), dtype=object)
        price = np.empty(len(index))
        funds = np.empty(len(index))
        starts = [pd.Timestamp(v.valid_from) for v in self.versions]
        which = np.searchsorted(np.array(starts, dtype="datetime64[ns]"), day.to_numpy(), side="right") - 1
        if (which < 0).any():
            first = wall[int(np.flatnonzero(which < 0)[0])]
            raise TariffNotInForce(self.id, self.first_date, first.date())
        for k in np.unique(which):
            v = self.versions[int(k)]
            sel = which == k
            b = v.band_grid()[month[sel], slot[sel]]
            if v.holidays and v.holiday_band is not None:
                on_holiday = np.isin(day[sel].to_numpy(), np.array([pd.Timestamp(h) for h in v.holidays],
                                                                     dtype="datetime64[ns]"))
                b = np.where(on_holiday, v.holiday_band, b)
            bands[sel] = b
            price[sel] = [v.energy_prices[x] for x in b]
            funds[sel] = v.government_funds_per_kwh
        valid_from = np.array([v.valid_from for v in self.versions], dtype=object)[which]
        return pd.DataFrame({"band": bands, "price": price, "funds": funds, "valid_from": valid_from}, index=index)


@cache
def available_tariffs() -> tuple[str, ...]:
    folder = resources.files("crm_bridge").joinpath("data", "tariffs")
    return tuple(sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                        if p.name.endswith(".toml") and p.name not in RULE_FILES))


def parse_tariff(doc: dict[str, Any], source: str = "tariff") -> Tariff:
    try:
        return Tariff.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise TariffError(f"{source}: {where}: {err['msg']}") from None


@cache
def load_tariff(tariff_id: str) -> Tariff:
    if tariff_id not in available_tariffs():
        raise TariffError(f"unknown tariff {tariff_id!r}; known: {', '.join(available_tariffs())}")
    text = resources.files("crm_bridge").joinpath("data", "tariffs", f"{tariff_id}.toml").read_text("utf-8")
    return parse_tariff(tomllib.loads(text), f"{tariff_id}.toml")


def next_month(day: date) -> date:
    """The first day of the month after the one `day` is in."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_days(first: date) -> int:
    """Days in the month that begins on `first`."""
    return (next_month(first) - first).days
