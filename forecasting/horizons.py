"""Week-ahead (15-min) and month-ahead (daily energy and peak) forecasts with intervals, and their backtests.

Both read the same day × slot table as the day-ahead models (forecasting.models) and the plan for the days they
forecast; neither sees data after its origin. Intervals are empirical, from each model's own errors at the leads it
is used at (a week-ahead forecast is wrong by more on its seventh day than on its first): the history's last days
are backcast from origins 1..7 days (week) or 1..31 days (month) before them, each with only the data before its
origin.
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
from forecasting.data import DAYTYPE_SATURDAY, DAYTYPE_SUNDAY_HOLIDAY, DAYTYPE_WEEKDAY, day_types
from forecasting.errors import ForecastError
from forecasting.models import MIN_DAYS, QUANTILES, DayModel, PlanProfile

WEEK_DAYS = 7
MONTH_MAX_LEAD = 31  # the month-ahead intervals are calibrated on backcasts 1..31 days ahead
MIN_GROUP_DAYS = 8  # fewest days whose errors make a month-ahead quantile group
CALIBRATION_REACH = 112  # how far back a small group may look for its MIN_GROUP_DAYS days
ENERGY_STATS = ("median", "mean")
SHAPE_DAYS = 8  # the month-ahead 15-min shape: the day-ahead profile of the last 8 days like each day


@dataclass(frozen=True)
class MonthSettings:
    """How the month-ahead forecast picks its days and calibrates its intervals (see forecast_month_ahead).

    n_days: how many past days like the one forecast make its point; energy_stat: "median" or "mean" of their
    energies; plan_types: a public holiday the plan says the plant works counts as a working day of its weekday
    (else as a Sunday); interval_days / peak_interval_days: how many of the history's last days calibrate the
    energy / peak intervals.
    """

    n_days: int = 4
    energy_stat: str = "median"
    plan_types: bool = True
    interval_days: int = 28
    peak_interval_days: int = 84

    def label(self) -> str:
        return (f"month_profile_{self.n_days}" + ("_mean" if self.energy_stat == "mean" else "")
                + ("_plan_types" if self.plan_types else ""))


# Chosen on January-June of the real plant by bench/forecast_real.py (it never looks at July-September to choose).
MONTH_DEFAULTS = MonthSettings()
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
    """Daily energy and peak of a fitted model's table (a day with any missing interval has neither).

    `point` is the forecast of one day from the complete days before table row `before`: the median (or mean) energy
    and the median peak of the last `n_days` days like it (its planned status and day type, relaxed like the
    day-ahead profile when fewer than two, and by the plan's shift count first when it has one).
    """

    def __init__(self, model: PlanProfile, n_days: int, energy_stat: str = "median", plan_types: bool = True
                 ) -> None:
        values = model.table_.to_numpy()
        days = pd.DatetimeIndex(model.table_.index)
        per_hour = pd.Timedelta(hours=1) / model.step_
        complete = (~np.isnan(values)).sum(axis=1) >= _wall_slots(days, model)
        with np.errstate(all="ignore"):
            self.energy = np.where(complete, np.nansum(values, axis=1), np.nan)
            self.peak = np.where(complete, np.nanmax(np.where(np.isnan(values), -np.inf, values), axis=1) * per_hour,
                                 np.nan)
        self.model, self.n_days, self.energy_stat = model, n_days, energy_stat
        self.has = ~np.isnan(self.energy)
        self.ops = model.ops_
        self.types = self.worked_day_types(days, self.ops, model.types_) if plan_types else model.types_
        self.shifts = (model.extra_["shift"].to_numpy(dtype=float) if "shift" in model.extra_.columns
                       else np.zeros(len(days)))
        self._masks: dict[tuple[float, int, float], list[np.ndarray]] = {}

    @staticmethod
    def worked_day_types(days: pd.DatetimeIndex, ops: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Calendar day types, with a holiday the plan works counted as its weekday (or Saturday)."""
        weekday = np.asarray(days.dayofweek)
        worked_holiday = (np.asarray(ops) > 0) & (types == DAYTYPE_SUNDAY_HOLIDAY) & (weekday < 6)
        return np.where(worked_holiday, np.where(weekday == 5, DAYTYPE_SATURDAY, DAYTYPE_WEEKDAY), types)

    def _matching(self, op: float, dtype: int, shift: float) -> list[np.ndarray]:
        key = (op, dtype, shift)
        if key not in self._masks:
            same_op = self.ops == op
            masks = [same_op & (self.types == dtype),
                     same_op & ((self.types == DAYTYPE_SATURDAY) == (dtype == DAYTYPE_SATURDAY)), same_op,
                     np.ones(len(self.ops), dtype=bool)]
            if shift > 0 and op > 0:  # a three-shift day looks like the last three-shift days first
                masks = [masks[0] & (self.shifts == shift), same_op & (self.shifts == shift), *masks]
            self._masks[key] = [m & self.has for m in masks]
        return self._masks[key]

    def point(self, before: int, op: float, dtype: int, shift: float = 0.0) -> tuple[float, float]:
        for mask in self._matching(op, dtype, shift):
            picked = np.flatnonzero(mask[:before])[-self.n_days:]
            if len(picked) >= min(2, self.n_days):
                energy = self.energy[picked]
                return (float(np.mean(energy) if self.energy_stat == "mean" else np.median(energy)),
                        float(np.median(self.peak[picked])))
        return float("nan"), float("nan")


class _MonthResiduals:
    """The month-ahead point's own errors, backcast on the history's last days from every lead 1..MONTH_MAX_LEAD.

    Day i forecast from `lead` days before uses only the complete days up to i - lead, as the forecast itself uses
    those up to the history's last complete day. Quantiles by operating status, energy and peak each over its own
    window of days; a status with fewer than MIN_GROUP_DAYS days in the window takes its MIN_GROUP_DAYS latest days
    from further back (up to CALIBRATION_REACH), and all days pool only when even that is too few. The errors of one
    day at 31 leads are not 31 independent draws: the quantile levels get the split-conformal correction for the
    number of distinct days, (n + 1) / n, so that a few weeks of calibration do not make the intervals too narrow.
    """

    def __init__(self, table: _DailyTable, interval_days: int, peak_interval_days: int) -> None:
        n = len(table.energy)
        rows: list[tuple[float, int, float, float]] = []
        for i in range(max(MIN_DAYS + 1, n - max(interval_days, peak_interval_days, CALIBRATION_REACH)), n):
            if not table.has[i]:
                continue
            for lead in range(1, MONTH_MAX_LEAD + 1):
                if i - lead + 1 < MIN_DAYS:
                    break
                e, p = table.point(i - lead + 1, table.ops[i], int(table.types[i]), float(table.shifts[i]))
                if not np.isnan(e):
                    rows.append((float(table.ops[i]), n - i, table.energy[i] - e, table.peak[i] - p))
        self.frame = pd.DataFrame(rows, columns=["op", "age", "energy", "peak"])
        self.windows = {"energy": interval_days, "peak": peak_interval_days}
        self._cache: dict[tuple[str, float], np.ndarray] = {}

    def _recent(self, rows: pd.DataFrame, window: int) -> pd.DataFrame:
        ages = np.sort(rows["age"].unique())
        reach = max(window, int(ages[min(MIN_GROUP_DAYS, len(ages)) - 1]) if len(ages) else window)
        return rows[rows["age"] <= reach]

    def quantiles(self, kind: str, op: float) -> np.ndarray:
        """QUANTILES of the errors of `kind` ("energy" or "peak") on days with this operating status."""
        if (kind, op) not in self._cache:
            same = self.frame[self.frame["op"] == op]
            enough = same["age"].nunique() >= MIN_GROUP_DAYS
            group = self._recent(same if enough else self.frame, self.windows[kind])
            n_days = max(1, int(group["age"].nunique()))
            levels = np.clip(0.5 + (np.asarray(QUANTILES) - 0.5) * (n_days + 1) / n_days, 0.0, 1.0)
            self._cache[(kind, op)] = np.quantile(group[kind], levels)
        return self._cache[(kind, op)]


def _daily_forecast(model: PlanProfile, days: pd.DatetimeIndex, plan: pd.DataFrame | None,
                    holidays_country: str | None, settings: MonthSettings) -> pd.DataFrame:
    """Daily energy and peak with 80/95 % bounds for `days` (local dates after the history), from a fitted model."""
    table = _DailyTable(model, settings.n_days, settings.energy_stat, settings.plan_types)
    n = len(model.table_)
    ops = model._day_ops(days, plan)
    types = day_types(days, holidays_country)
    types = _DailyTable.worked_day_types(days, ops, types) if settings.plan_types else types
    extras = model._day_extra(days, plan)
    shifts = extras["shift"].to_numpy(dtype=float) if "shift" in extras.columns else np.zeros(len(days))
    points = [table.point(n, float(ops[k]), int(types[k]), float(shifts[k])) for k in range(len(days))]
    lacking = [str(d.date()) for d, (e, _) in zip(days, points, strict=True) if np.isnan(e)]
    if lacking:
        raise ForecastError(f"no complete past day like {', '.join(lacking[:3])}{' ...' if len(lacking) > 3 else ''}"
                            " to forecast from (a day with any missing interval is not used)")
    residuals = _MonthResiduals(table, settings.interval_days, settings.peak_interval_days)
    if residuals.frame.empty:
        raise ForecastError(f"history too short for month-ahead intervals: it needs more than {MIN_DAYS + 1} "
                            "complete days")
    rows = []
    for k, (e, p) in enumerate(points):
        qe, qp = residuals.quantiles("energy", float(ops[k])), residuals.quantiles("peak", float(ops[k]))
        rows.append([e, e + qe[1], e + qe[2], e + qe[0], e + qe[3], p, p + qp[1], p + qp[2], p + qp[0], p + qp[3]])
    cols = [f"{what}{suffix}" for what in ("energy_kwh", "peak_kw")
            for suffix in ("", "_lower80", "_upper80", "_lower95", "_upper95")]
    daily = pd.DataFrame(np.maximum(np.array(rows, dtype=float), 0.0), index=days, columns=cols)
    daily["operating"] = ops
    return daily


def forecast_month_ahead(history: pd.Series, plan: pd.DataFrame | None = None, month: str | date | None = None,
                         holidays_country: str | None = "CN", settings: MonthSettings = MONTH_DEFAULTS, *,
                         horizon_days: int | None = None) -> MonthAhead:
    """Daily energy and peak for each day of `month` (default: the next calendar month), with 80/95 % intervals.

    Each day's energy and peak are the median of the last `settings.n_days` complete days with its planned
    operating status and day type (relaxed like the day-ahead profile when too few, and by the plan's shift count
    first when it has one; a holiday the plan works counts as a working day). Intervals are empirical quantiles of
    the same point's own errors, backcast from every lead of 1 to 31 days over the history's last days, by
    operating status, energy and peak each with its own calibration window (_MonthResiduals). `horizon_days`
    forecasts that many days from the history's end instead of a calendar month (rolling-origin backtests). The
    15-min shape of each day is the day-ahead profile scaled to the day's energy. Raises ForecastError when the
    history is too short or the month is not ahead.
    """
    if settings.energy_stat not in ENERGY_STATS:
        raise ForecastError(f"energy_stat must be one of {', '.join(ENERGY_STATS)}, not {settings.energy_stat!r}")
    model = PlanProfile(SHAPE_DAYS, slot_window=1, holidays_country=holidays_country, interval_days=0).fit(
        history, plan)  # its 15-min profile shapes each day
    if horizon_days is not None:
        start = model.end_.tz_localize(None).normalize()
        if start != model.end_.tz_localize(None) or horizon_days < 1:
            raise ForecastError("a horizon in days needs a history ending at a local midnight and at least one day")
        days = pd.date_range(start, periods=horizon_days, freq="D")
        label = f"{days[0].date()}+{horizon_days}d"
    else:
        target = _month_of(model.end_, month)
        days = pd.date_range(target.start_time, target.end_time.normalize(), freq="D")
        label = str(target)
    daily = _daily_forecast(model, pd.DatetimeIndex(days), plan, holidays_country, settings)
    day_index = pd.DatetimeIndex(days).tz_localize(model.tz_, ambiguous="NaT", nonexistent="shift_forward")
    first = pd.Timestamp(days[0]).tz_localize(model.tz_)

    # Each day's 15-min shape from the profile, scaled to the day's energy and its bounds.
    stop = (days[-1] + pd.Timedelta(days=1)).tz_localize(model.tz_, ambiguous=False, nonexistent="shift_forward")
    shape = model.predict(int((stop - model.end_) / model.step_), plan)["forecast"]
    shape = shape[shape.index >= first]
    day_of = pd.DatetimeIndex(shape.index).tz_localize(None).normalize()
    totals = shape.groupby(day_of).transform("sum").to_numpy()
    with np.errstate(all="ignore"):
        share = np.where(totals > 0, shape.to_numpy() / totals, 1.0 / np.maximum(1, shape.groupby(day_of)
                                                                                   .transform("size").to_numpy()))
    intervals = pd.DataFrame(
        {c: share * daily[f"energy_kwh{s}"].reindex(day_of).to_numpy()
         for c, s in zip(INTERVAL_COLUMNS, ("", "_lower80", "_upper80", "_lower95", "_upper95"), strict=True)},
        index=shape.index)
    return MonthAhead(month=label, model=settings.label(),
                      daily=daily.set_axis(day_index), intervals=intervals)


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
                   holidays_country: str | None = "CN", settings: MonthSettings = MONTH_DEFAULTS,
                   issue_lead: pd.Timedelta | None = None, *, horizon_days: int | None = None,
                   check: Callable[[pd.Series], None] | None = None) -> dict[str, object]:
    """Month-ahead backtest: from each origin (a month's first midnight), the month's daily energy and peak.

    Scored on the days whose actuals are complete: MAE, bias (forecast - actual) and 80/95 % coverage of daily
    energy and daily peak, plus the month's total energy error (overall and per origin, signed: above zero the
    forecast ran high); against two naive baselines made from the same data: `flat_28d` (the mean day of the last
    28 days, every day) and `week_repeated` (the last week before the origin, repeated). `horizon_days` scores
    that many days from each origin (any midnight) instead of its calendar month; `check` is called with the
    history each forecast is handed (a leakage guard).
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
        if check is not None:
            check(train)
        t0 = time.perf_counter()
        fc = forecast_month_ahead(train, plan, None, holidays_country, settings, horizon_days=horizon_days)
        t_total += time.perf_counter() - t0
        truth = PlanProfile(8, holidays_country=holidays_country, interval_days=0).fit(
            history[history.index < origin + pd.Timedelta(days=32)], plan)
        actual = _DailyTable(truth, 8)
        want = pd.DatetimeIndex(fc.daily.index).tz_localize(None)
        pos = pd.DatetimeIndex(truth.table_.index).get_indexer(want)
        ae = np.where(pos >= 0, actual.energy[pos], np.nan)
        ap = np.where(pos >= 0, actual.peak[pos], np.nan)
        past = _DailyTable(PlanProfile(8, holidays_country=holidays_country, interval_days=0).fit(train, plan), 8)
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
        tot_a, tot_f = float(np.sum(ae[ok])), float(np.sum(d["energy_kwh"].to_numpy()[ok]))
        per_origin.append({"origin": origin.isoformat(), "month": fc.month, "days_scored": int(ok.sum()),
                           "energy_total_kwh": tot_a, "energy_total_forecast_kwh": tot_f,
                           "energy_total_error_pct": (tot_f - tot_a) / tot_a * 100 if tot_a else None})
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
