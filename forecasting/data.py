"""Input handling: validated history series, production plans expanded to intervals, and calendar features."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

from forecasting.errors import ForecastError

DAYTYPE_WEEKDAY, DAYTYPE_SATURDAY, DAYTYPE_SUNDAY_HOLIDAY = 0, 1, 2


def history_from_frame(frame: pd.DataFrame, source: str = "history", tz: str | None = None) -> pd.Series:
    """A `timestamp,value` table -> a float series on tz-aware interval starts.

    Rows must be sorted, unique and numeric; the error names the file (`source`), the row (1-based, after the header)
    and the column.
    """
    for col in ("timestamp", "value"):
        if col not in frame.columns:
            raise ForecastError(f"{source}: missing column {col!r} (found {', '.join(map(str, frame.columns))})")
    ts = pd.to_datetime(frame["timestamp"], errors="coerce", utc=True, format="ISO8601")
    bad = ts.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise ForecastError(f"{source}: row {row}, column 'timestamp': {frame['timestamp'].iloc[row - 2]!r} "
                            "is not an ISO 8601 time")
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = values.isna() & frame["value"].notna() & (frame["value"].astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise ForecastError(f"{source}: row {row}, column 'value': {frame['value'].iloc[row - 2]!r} is not a number")
    idx = pd.DatetimeIndex(ts)
    dup = idx.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup)[0]) + 2
        raise ForecastError(f"{source}: row {row}, column 'timestamp': {idx[row - 2].isoformat()} appears twice")
    back = np.flatnonzero(np.diff(idx.tz_convert("UTC").tz_localize(None).to_numpy().astype(np.int64)) < 0)
    if len(back):
        row = int(back[0]) + 3
        raise ForecastError(f"{source}: row {row}, column 'timestamp': rows are not sorted by time")
    series = pd.Series(values.to_numpy(dtype=float), index=idx, name="value")
    return series.tz_convert(tz) if tz else series


def plan_from_frame(frame: pd.DataFrame, source: str = "plan", tz: str | None = None) -> pd.DataFrame:
    """A production plan table (`start`, optional `end`, numeric columns) -> rows on tz-aware starts."""
    if "start" not in frame.columns:
        raise ForecastError(f"{source}: missing column 'start'")
    starts = pd.to_datetime(frame["start"], errors="coerce", utc=True, format="ISO8601")
    if starts.isna().any():
        row = int(np.flatnonzero(starts.isna().to_numpy())[0]) + 2
        raise ForecastError(f"{source}: row {row}, column 'start': {frame['start'].iloc[row - 2]!r} is not a time")
    out = pd.DataFrame(index=pd.DatetimeIndex(starts))
    for col in frame.columns:
        if col in ("start", "end"):
            continue
        vals = pd.to_numeric(frame[col], errors="coerce")
        if vals.isna().any():
            row = int(np.flatnonzero(vals.isna().to_numpy())[0]) + 2
            raise ForecastError(f"{source}: row {row}, column {col!r}: {frame[col].iloc[row - 2]!r} is not a number")
        out[col] = vals.to_numpy(dtype=float)
    if "end" in frame.columns:
        ends = pd.to_datetime(frame["end"], errors="coerce", utc=True, format="ISO8601")
        out["_end"] = pd.DatetimeIndex(ends)
    if not out.index.is_monotonic_increasing:
        raise ForecastError(f"{source}: rows are not sorted by 'start'")
    if out.index.has_duplicates:
        raise ForecastError(f"{source}: two rows start at {out.index[out.index.duplicated()][0].isoformat()}")
    return out.tz_convert(tz) if tz else out


def plan_on(index: pd.DatetimeIndex, plan: pd.DataFrame | None) -> pd.DataFrame:
    """Each plan row holds from its start until the next row (or its own `end`); NaN where no row holds."""
    if plan is None or plan.empty:
        return pd.DataFrame(index=index)
    cols = [c for c in plan.columns if c != "_end"]
    pos = plan.index.searchsorted(index, side="right") - 1
    out = pd.DataFrame(index=index, columns=cols, dtype=float)
    ok = pos >= 0
    if ok.any():
        out.loc[ok, cols] = plan[cols].to_numpy()[pos[ok]]
        if "_end" in plan.columns:
            ends = pd.DatetimeIndex(plan["_end"]).to_numpy()[pos[ok]]
            expired = ~pd.isna(ends) & (index[ok].to_numpy() >= ends)
            out.iloc[np.flatnonzero(ok)[expired], :] = np.nan
    return out


@lru_cache(maxsize=64)
def _holiday_dates(country: str, years: tuple[int, ...]) -> frozenset[object]:
    import holidays

    try:
        return frozenset(holidays.country_holidays(country, years=list(years)).keys())
    except NotImplementedError:
        raise ForecastError(f"no holiday calendar for country {country!r}") from None


def day_types(dates: Iterable[pd.Timestamp], country: str | None) -> np.ndarray:
    """0 weekday, 1 Saturday, 2 Sunday or public holiday (holidays from the `holidays` package)."""
    dates = list(dates)
    hol = _holiday_dates(country, tuple(sorted({d.year for d in dates}))) if country and dates else frozenset()
    out = np.zeros(len(dates), dtype=int)
    for i, d in enumerate(dates):
        if d.weekday() == 6 or d.date() in hol:
            out[i] = DAYTYPE_SUNDAY_HOLIDAY
        elif d.weekday() == 5:
            out[i] = DAYTYPE_SATURDAY
    return out
