"""Week-ahead (15-min) and month-ahead (daily energy and peak) forecasts with intervals, and their backtests.

Both read the same day × slot table as the day-ahead models (forecasting.models) and the plan for the days they
forecast; neither sees data after its origin. Intervals are empirical, from each model's own errors at the leads it
is used at (a week-ahead forecast is wrong by more on its seventh day than on its first): the last
`interval_days` days of the history are backcast from origins 1..7 days (week) or 1..31 days (month) before them,
each with only the data before its origin.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from forecasting.backtest import BacktestResult, backtest, origins_between
from forecasting.data import day_types
from forecasting.errors import ForecastError
from forecasting.models import MIN_DAYS, QUANTILES, DayModel, PlanProfile

WEEK_DAYS = 7
MONTH_LEADS = (1, 4, 8, 12, 16, 20, 24, 28, 31)  # lead days backcast for the month-ahead intervals
INTERVAL_COLUMNS = ("forecast", "lower80", "upper80", "lower95", "upper95")


def _lead_residuals(model: DayModel, leads: range | tuple[int, ...]) -> pd.DataFrame:
    """The model's errors on its last interval_days days, each forecast from `lead` days before (op, 4-h block)."""
    rows, n = [], len(model.table_)
    for i in range(max(MIN_DAYS, n - model.interval_days), n):
        actual = model.table_.iloc[i].to_numpy()
        if np.isnan(actual).all():
            continue
        extra = model.extra_.iloc[i] if len(model.extra_.columns) else None
        model.day_ = pd.Timestamp(model.table_.index[i])
        for lead in leads:
            if i - lead + 1 < MIN_DAYS:  # a short history calibrates on the leads it has
                continue
            point = model._day_point(i - lead + 1, model.ops_[i], int(model.types_[i]), extra)
            res = actual - point
            for k, slot in enumerate(model.table_.columns):
                if not np.isnan(res[k]):
                    rows.append((model.ops_[i], int(slot) // 240, res[k]))
    return pd.DataFrame(rows, columns=["op", "block", "res"])


class WeekProfile(PlanProfile):
    """The day-ahead plan profile for each of the next seven days, with intervals from its 1-7 day-ahead errors."""

    def __init__(self, n_days: int = 16, slot_window: int = 1, interval_days: int = 56, **kw: object) -> None:
        super().__init__(n_days, slot_window, interval_days=interval_days, **kw)
        self.name = f"week_profile_{n_days}" + (f"s{slot_window}" if slot_window else "")

    def _fit_residuals(self) -> None:
        self.residuals_ = _lead_residuals(self, range(1, WEEK_DAYS + 1))
        self._qcache = {}
        if self.interval_days and self.residuals_.empty:
            raise ForecastError(f"history too short for week-ahead intervals: it needs more than {MIN_DAYS} days "
                                "with data")


class WeekNaive(DayModel):
    """Baseline: each day as the same weekday in the last week before the origin (the week repeated)."""

    name = "week_naive"

    def __init__(self, interval_days: int = 56, **kw: object) -> None:
        super().__init__(interval_days=interval_days, **kw)  # type: ignore[arg-type]

    def _day_point(self, before: int, op: float, dtype: int, extra: pd.Series | None) -> np.ndarray:
        weekday = self.day_.weekday()
        for j in range(before - 1, max(-1, before - 8), -1):
            if pd.Timestamp(self.table_.index[j]).weekday() == weekday:
                return self._fill(self.table_.iloc[j].to_numpy().copy(), before)
        return self._fill(np.full(len(self.table_.columns), np.nan), before)

    def _fit_residuals(self) -> None:
        self.residuals_ = _lead_residuals(self, range(1, WEEK_DAYS + 1))
        self._qcache = {}


def _local_days_ahead(end: pd.Timestamp, days: int, step: pd.Timedelta) -> int:
    """Intervals from `end` (a local midnight) to the local midnight `days` later: 92 or 100 on DST days."""
    stop = (end.tz_localize(None) + pd.Timedelta(days=days)).tz_localize(end.tz, ambiguous=False,
                                                                        nonexistent="shift_forward")
    return int((stop - end) / step)


def forecast_week_ahead(history: pd.Series, plan: pd.DataFrame | None = None, holidays_country: str | None = "CN",
                        model: DayModel | None = None) -> pd.DataFrame:
    """The seven local days after the history's end, per interval: forecast, lower80, upper80, lower95, upper95.

    The history must end at a local midnight (the origin); its last hours may be NaN (not yet measured at issue
    time). `attrs["model"]` names the model.
    """
    m = (model or WeekProfile(holidays_country=holidays_country)).fit(history, plan)
    out = m.predict(_local_days_ahead(m.end_, WEEK_DAYS, m.step_), plan)
    out.attrs["model"] = m.name
    return out


@dataclass
class MonthAhead:
    """A month-ahead forecast: `daily` (one row per local day) and `intervals` (each day's 15-min shape).

    daily: energy_kwh and peak_kw, each with _lower80/_upper80/_lower95/_upper95. intervals: forecast, lower80,
    upper80, lower95, upper95 in kWh, each day's profile scaled so its intervals add up to that day's energy (and
    its lower/upper to the day's energy bounds): the shape to price by TOU band.
    """

    month: str
    model: str
    daily: pd.DataFrame
    intervals: pd.DataFrame = field(repr=False)


def _month_of(end: pd.Timestamp, month: str | date | None) -> pd.Period:
    first_open = end.tz_localize(None)
    if month is None:  # the month starting at the origin, else the next calendar month
        p = pd.Period(first_open, freq="M")
        return p if first_open == p.start_time else p + 1
    text = month.isoformat()[:7] if isinstance(month, date) else str(month)
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise ForecastError(f"month {month!r} is not YYYY-MM")
    p = pd.Period(text, freq="M")
    if p.start_time < first_open:
        raise ForecastError(f"month {p} starts before the history ends ({end.isoformat()}): it is not ahead")
    return p


def _wall_slots(days: pd.DatetimeIndex, model: DayModel) -> np.ndarray:
    """How many wall-clock slots each local day really has (fewer on the day clocks go forward)."""
    n_slots = len(model.table_.columns)
    start = days.tz_localize(model.tz_, ambiguous="NaT", nonexistent="shift_forward")
    stop = (days + pd.Timedelta(days=1)).tz_localize(model.tz_, ambiguous="NaT", nonexistent="shift_forward")
    lost = ((stop - start) - pd.Timedelta(days=1)) / model.step_  # negative on the short day
    return np.asarray(n_slots + np.minimum(lost, 0), dtype=float)


class _DailyTable:
    """Daily energy and peak of a fitted model's table (a day with any missing interval has neither)."""

    def __init__(self, model: PlanProfile, n_days: int) -> None:
        values = model.table_.to_numpy()
        per_hour = pd.Timedelta(hours=1) / model.step_
        complete = (~np.isnan(values)).sum(axis=1) >= _wall_slots(pd.DatetimeIndex(model.table_.index), model)
        with np.errstate(all="ignore"):
            self.energy = np.where(complete, np.nansum(values, axis=1), np.nan)
            self.peak = np.where(complete, np.nanmax(np.where(np.isnan(values), -np.inf, values), axis=1) * per_hour,
                                 np.nan)
        self.model, self.n_days = model, n_days

    def point(self, before: int, op: float, dtype: int, extra: pd.Series | None) -> tuple[float, float]:
        has = ~np.isnan(self.energy[:before])
        for match in self.model.matchers(op, dtype, extra):
            picked = [j for j in range(before - 1, -1, -1) if has[j] and match(j)][: self.n_days]
            if len(picked) >= min(2, self.n_days):
                return float(np.median(self.energy[picked])), float(np.median(self.peak[picked]))
        return float("nan"), float("nan")


def forecast_month_ahead(history: pd.Series, plan: pd.DataFrame | None = None, month: str | date | None = None,
                         holidays_country: str | None = "CN", n_days: int = 8, interval_days: int = 56
                         ) -> MonthAhead:
    """Daily energy and peak for each day of `month` (default: the next calendar month), with 80/95 % intervals.

    Each day is the median of the last `n_days` days with its planned operating status and day type (relaxed like
    the day-ahead profile when too few, and by the plan's shift count first when it has one); intervals from the
    same median's errors 1 to 31 days ahead on the last `interval_days` days. The defaults were chosen on
    January-June of the real plant (bench/forecast_real.py). Raises ForecastError when the history is too short or
    the month is not ahead.
    """
    model = PlanProfile(n_days, slot_window=1, holidays_country=holidays_country, interval_days=0).fit(history, plan)
    target = _month_of(model.end_, month)
    table = _DailyTable(model, n_days)
    n = len(model.table_)
    res_e: dict[float, list[float]] = {}
    res_p: dict[float, list[float]] = {}
    for i in range(max(MIN_DAYS + 1, n - interval_days), n):
        if np.isnan(table.energy[i]):
            continue
        for lead in MONTH_LEADS:
            if i - lead + 1 < MIN_DAYS:
                continue
            e, p = table.point(i - lead + 1, model.ops_[i], int(model.types_[i]),
                               model.extra_.iloc[i] if len(model.extra_.columns) else None)
            if not np.isnan(e):
                res_e.setdefault(model.ops_[i], []).append(table.energy[i] - e)
                res_p.setdefault(model.ops_[i], []).append(table.peak[i] - p)
    every_e = [r for v in res_e.values() for r in v]
    every_p = [r for v in res_p.values() for r in v]

    def q(res: dict[float, list[float]], every: list[float], op: float) -> np.ndarray:
        group = res.get(op, [])
        group = group if len(group) >= 20 else every
        return np.quantile(group, QUANTILES)

    first = pd.Timestamp(target.start_time).tz_localize(model.tz_)
    days = pd.date_range(target.start_time, target.end_time.normalize(), freq="D")
    day_index = pd.DatetimeIndex(days).tz_localize(model.tz_, ambiguous="NaT", nonexistent="shift_forward")
    ops = model._day_ops(pd.DatetimeIndex(days), plan)
    types = day_types(days, holidays_country)
    extras = model._day_extra(pd.DatetimeIndex(days), plan)
    points = [table.point(n, float(ops[k]), int(types[k]), extras.iloc[k] if len(extras.columns) else None)
              for k in range(len(days))]
    lacking = [str(d.date()) for d, (e, _) in zip(days, points, strict=True) if np.isnan(e)]
    if lacking:
        raise ForecastError(f"no complete past day like {', '.join(lacking[:3])}{' ...' if len(lacking) > 3 else ''}"
                            " to forecast from (a day with any missing interval is not used)")
    if not every_e:
        raise ForecastError(f"history too short for month-ahead intervals: it needs more than {MIN_DAYS + 1} "
                            "complete days")
    rows = []
    for k, (e, p) in enumerate(points):
        qe, qp = q(res_e, every_e, float(ops[k])), q(res_p, every_p, float(ops[k]))
        rows.append([e, e + qe[1], e + qe[2], e + qe[0], e + qe[3], p, p + qp[1], p + qp[2], p + qp[0], p + qp[3]])
    cols = [f"{what}{suffix}" for what in ("energy_kwh", "peak_kw")
            for suffix in ("", "_lower80", "_upper80", "_lower95", "_upper95")]
    daily = pd.DataFrame(np.maximum(np.array(rows, dtype=float), 0.0), index=day_index, columns=cols)
    daily["operating"] = ops

    # Each day's 15-min shape from the profile, scaled to the day's energy and its bounds.
    stop = (target.end_time.normalize() + pd.Timedelta(days=1)).tz_localize(model.tz_, ambiguous=False,
                                                                               nonexistent="shift_forward")
    shape = model.predict(int((stop - model.end_) / model.step_), plan)["forecast"]
    shape = shape[shape.index >= first]
    day_of = pd.DatetimeIndex(shape.index).tz_localize(None).normalize()
    totals = shape.groupby(day_of).transform("sum").to_numpy()
    with np.errstate(all="ignore"):
        share = np.where(totals > 0, shape.to_numpy() / totals, 1.0 / np.maximum(1, shape.groupby(day_of)
                                                                                   .transform("size").to_numpy()))
    per_day = daily.set_axis(pd.DatetimeIndex(days))
    intervals = pd.DataFrame(
        {c: share * per_day[f"energy_kwh{s}"].reindex(day_of).to_numpy()
         for c, s in zip(INTERVAL_COLUMNS, ("", "_lower80", "_upper80", "_lower95", "_upper95"), strict=True)},
        index=shape.index)
    return MonthAhead(month=str(target), model=f"month_profile_{n_days}", daily=daily, intervals=intervals)


# -- backtests --------------------------------------------------------------------------------------------------
def week_origins(history: pd.Series, start: pd.Timestamp | None, end: pd.Timestamp | None) -> list[pd.Timestamp]:
    """Weekly origins: every seventh local midnight from `start`, with a whole week of actuals after it."""
    days = origins_between(history, start, end)
    last = pd.DatetimeIndex(history.index)[-1]
    return [o for o in days[::WEEK_DAYS] if o + pd.Timedelta(days=WEEK_DAYS) <= last + pd.Timedelta(hours=1)]


def month_origins(history: pd.Series, start: pd.Timestamp | None, end: pd.Timestamp | None) -> list[pd.Timestamp]:
    """The first local midnight of each month among the day-ahead origins between `start` and `end`."""
    return [o for o in origins_between(history, start, end) if o.day == 1]


def backtest_week(history: pd.Series, plan: pd.DataFrame | None, make_model: Callable[[], DayModel],
                  origins: list[pd.Timestamp], issue_lead: pd.Timedelta | None = None) -> BacktestResult:
    """Rolling-origin week-ahead backtest (7 local days from each origin), the day-ahead backtest's metrics."""
    if not origins:
        raise ForecastError("no week-ahead origins in the requested range")
    step = pd.Series(pd.DatetimeIndex(history.index)[1:] - pd.DatetimeIndex(history.index)[:-1]).mode().iloc[0]
    return backtest(history, plan, make_model, origins, lambda o: _local_days_ahead(o, WEEK_DAYS, step),
                    issue_lead=issue_lead)


def _score(actual: np.ndarray, point: np.ndarray, lo80: np.ndarray | None = None, hi80: np.ndarray | None = None,
           lo95: np.ndarray | None = None, hi95: np.ndarray | None = None) -> dict[str, float | int | None]:
    ok = ~(np.isnan(actual) | np.isnan(point))
    err = point[ok] - actual[ok]
    out: dict[str, float | int | None] = {"mae": float(np.mean(np.abs(err))) if ok.any() else None,
                                          "bias": float(np.mean(err)) if ok.any() else None, "n": int(ok.sum())}
    for name, lo, hi in (("coverage80", lo80, hi80), ("coverage95", lo95, hi95)):
        if lo is not None and hi is not None:
            out[name] = float(np.mean((actual[ok] >= lo[ok]) & (actual[ok] <= hi[ok]))) if ok.any() else None
    return out


def backtest_month(history: pd.Series, plan: pd.DataFrame | None, origins: list[pd.Timestamp],
                   holidays_country: str | None = "CN", n_days: int = 8, issue_lead: pd.Timedelta | None = None,
                   interval_days: int = 56) -> dict[str, object]:
    """Month-ahead backtest: from each origin (a month's first midnight), the month's daily energy and peak.

    Scored on the days whose actuals are complete: MAE, bias (forecast - actual) and 80/95 % coverage of daily
    energy and daily peak, plus the month's total energy error; against two naive baselines made from the same
    data: `flat_28d` (the mean day of the last 28 days, every day) and `week_repeated` (the last week before the
    origin, repeated).
    """
    if not origins:
        raise ForecastError("no month-ahead origins in the requested range")
    cols: dict[str, list[np.ndarray]] = {}
    per_origin: list[dict[str, object]] = []

    def add(key: str, values: np.ndarray) -> None:
        cols.setdefault(key, []).append(values)

    t_total = 0.0
    totals = [0.0, 0.0]  # actual and forecast kWh over the scored days
    for origin in origins:
        train = history[history.index < origin]
        if issue_lead is not None and issue_lead > pd.Timedelta(0):
            train = train.where(train.index < origin - issue_lead)
        t0 = time.perf_counter()
        fc = forecast_month_ahead(train, plan, None, holidays_country, n_days, interval_days)
        t_total += time.perf_counter() - t0
        truth = PlanProfile(n_days, holidays_country=holidays_country, interval_days=0).fit(
            history[history.index < origin + pd.Timedelta(days=32)], plan)
        actual = _DailyTable(truth, n_days)
        want = pd.DatetimeIndex(fc.daily.index).tz_localize(None)
        pos = pd.DatetimeIndex(truth.table_.index).get_indexer(want)
        ae = np.where(pos >= 0, actual.energy[pos], np.nan)
        ap = np.where(pos >= 0, actual.peak[pos], np.nan)
        past = _DailyTable(PlanProfile(n_days, holidays_country=holidays_country, interval_days=0).fit(train, plan),
                           n_days)
        flat_e, flat_p = np.nanmean(past.energy[-28:]), np.nanmean(past.peak[-28:])
        last_week = pd.DatetimeIndex(past.model.table_.index)[-WEEK_DAYS:]
        wd = {d.weekday(): k for k, d in enumerate(last_week)}
        week_e = np.array([past.energy[-WEEK_DAYS:][wd[d.weekday()]] for d in want])
        week_p = np.array([past.peak[-WEEK_DAYS:][wd[d.weekday()]] for d in want])
        d = fc.daily
        add("ae", ae)
        add("ap", ap)
        for col in d.columns:
            add(str(col), d[col].to_numpy())
        for key, values in (("flat_e", np.full(len(want), flat_e)), ("flat_p", np.full(len(want), flat_p)),
                            ("week_e", week_e), ("week_p", week_p)):
            add(key, values)
        ok = ~np.isnan(ae)
        totals[0] += float(np.sum(ae[ok]))
        totals[1] += float(np.sum(d["energy_kwh"].to_numpy()[ok]))
        per_origin.append({"origin": origin.isoformat(), "month": fc.month, "days_scored": int(ok.sum()),
                           "energy_total_kwh": float(np.sum(ae[ok])),
                           "energy_total_forecast_kwh": float(np.sum(d["energy_kwh"].to_numpy()[ok]))})
    c = {k: np.concatenate(v) for k, v in cols.items()}
    tot_a, tot_f = totals
    return {
        "origins": len(origins), "per_origin": per_origin, "fit_predict_s_mean": t_total / len(origins),
        "energy_kwh": _score(c["ae"], c["energy_kwh"], c["energy_kwh_lower80"], c["energy_kwh_upper80"],
                             c["energy_kwh_lower95"], c["energy_kwh_upper95"]),
        "peak_kw": _score(c["ap"], c["peak_kw"], c["peak_kw_lower80"], c["peak_kw_upper80"], c["peak_kw_lower95"],
                          c["peak_kw_upper95"]),
        "month_total_error_pct": (tot_f - tot_a) / tot_a * 100 if tot_a else None,
        "baselines": {"flat_28d": {"energy_kwh": _score(c["ae"], c["flat_e"]), "peak_kw": _score(c["ap"], c["flat_p"])},
                      "week_repeated": {"energy_kwh": _score(c["ae"], c["week_e"]),
                                        "peak_kw": _score(c["ap"], c["week_p"])}},
    }
