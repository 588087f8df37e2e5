"""Day-ahead load models: baselines and plan-aware models, all with 80 % and 95 % prediction intervals.

Every model follows `fit(history, plan) -> self` and `predict(h, plan) -> frame` (columns forecast, lower80,
upper80, lower95, upper95 on the next `h` interval starts in the history's time zone). History is arranged by local
day and wall-clock slot, so DST days (92 or 100 intervals) need no special case. A day's production status comes
from the plan (`operating`, also `planned_output_t` and `shift` when present); without a plan every day counts as
operating.

Intervals are empirical: the model's own day-ahead errors on the last `interval_days` days of the history (each made
with only the data before that day), grouped by operating status and 4-hour block, give the quantiles.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable
from typing import Self

import numpy as np
import pandas as pd
import statsmodels.api as sm

from forecasting.data import DAYTYPE_SATURDAY, day_types, plan_on
from forecasting.errors import ForecastError

QUANTILES = (0.025, 0.10, 0.90, 0.975)
MIN_DAYS = 7


class DayModel(abc.ABC):
    """Shared machinery: the day × slot table, day features, backcast residuals and intervals."""

    name = "model"

    def __init__(self, holidays_country: str | None = "CN", interval_days: int = 28) -> None:
        self.holidays_country = holidays_country
        self.interval_days = interval_days

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, history: pd.Series, plan: pd.DataFrame | None = None) -> Self:
        idx = pd.DatetimeIndex(history.index)
        if idx.tz is None:
            raise ForecastError("history must be indexed by tz-aware interval starts")
        if len(history) < 2:
            raise ForecastError("history has fewer than two intervals")
        step = pd.Timedelta(idx[1] - idx[0]) if len(idx) > 1 else pd.Timedelta(minutes=15)
        step = pd.Series(idx[1:] - idx[:-1]).mode().iloc[0] if len(idx) > 2 else step
        if step not in (pd.Timedelta(minutes=15), pd.Timedelta(hours=1)):
            raise ForecastError(f"history interval must be 15 min or 1 h, not {step}")
        self.tz_ = idx.tz
        self.step_ = step
        self.end_ = idx[-1] + step
        self.plan_ = plan
        wall = idx.tz_localize(None)
        slots = (wall.hour * 60 + wall.minute).to_numpy()
        days = wall.normalize()
        table = pd.DataFrame({"day": days, "slot": slots, "v": history.to_numpy(dtype=float)})
        self.table_ = table.pivot_table(index="day", columns="slot", values="v", aggfunc="mean", dropna=False)
        all_slots = np.arange(0, 1440, int(step.total_seconds() // 60))
        self.table_ = self.table_.reindex(columns=all_slots)
        full_days = pd.date_range(days[0], days[-1], freq="D")
        self.table_ = self.table_.reindex(full_days)
        if int(self.table_.notna().any(axis=1).sum()) < MIN_DAYS:
            raise ForecastError(f"history covers fewer than {MIN_DAYS} days with data")
        day_index = pd.DatetimeIndex(self.table_.index)
        self.ops_ = self._day_ops(day_index, plan)
        self.types_ = day_types(day_index, self.holidays_country)
        self.extra_ = self._day_extra(day_index, plan)
        self._fit_model()
        self._fit_residuals()
        return self

    def _day_ops(self, days: pd.DatetimeIndex, plan: pd.DataFrame | None) -> np.ndarray:
        """A day operates when the plan says so at any point of it (no plan: every day)."""
        if plan is None or "operating" not in plan.columns:
            return np.ones(len(days))
        # Daytime probes: clocks change at night, so these local times always exist exactly once.
        probe = pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in (6, 10, 14, 18)]).tz_localize(
            self.tz_, ambiguous="NaT", nonexistent="shift_forward")
        ops = plan_on(probe, plan)["operating"].to_numpy(dtype=float).reshape(len(days), 4)
        with np.errstate(all="ignore"):
            return np.where(np.isnan(ops).all(axis=1), 1.0, (np.nan_to_num(ops) > 0).any(axis=1).astype(float))

    def _day_extra(self, days: pd.DatetimeIndex, plan: pd.DataFrame | None) -> pd.DataFrame:
        cols = [c for c in ("planned_output_t", "shift") if plan is not None and c in plan.columns]
        if not cols:
            return pd.DataFrame(index=days)
        probe = (days + pd.Timedelta(hours=12)).tz_localize(self.tz_, ambiguous="NaT", nonexistent="shift_forward")
        vals = plan_on(pd.DatetimeIndex(probe), plan)[cols]
        vals.index = days
        return vals.fillna(0.0)

    def _fit_model(self) -> None:  # noqa: B027 - most models need nothing beyond the table
        """Fit what the model needs from self.table_/ops_/types_ (all days)."""

    @abc.abstractmethod
    def _day_point(self, before: int, op: float, dtype: int, extra: pd.Series | None) -> np.ndarray:
        """Point forecast (one value per slot) for a day with these features, from table rows [0, before)."""

    def _fit_residuals(self) -> None:
        rows, n = [], len(self.table_)
        for i in range(max(MIN_DAYS, n - self.interval_days), n):
            actual = self.table_.iloc[i].to_numpy()
            if np.isnan(actual).all():
                continue
            extra = self.extra_.iloc[i] if len(self.extra_.columns) else None
            self.day_ = pd.Timestamp(self.table_.index[i])  # the day being forecast, for models that need its date
            point = self._day_point(i, self.ops_[i], int(self.types_[i]), extra)
            res = actual - point
            for k, slot in enumerate(self.table_.columns):
                if not np.isnan(res[k]):
                    rows.append((self.ops_[i], int(slot) // 240, res[k]))
        self.residuals_ = pd.DataFrame(rows, columns=["op", "block", "res"])
        self._qcache: dict[tuple[float, int], np.ndarray] = {}

    def _quantiles(self, op: float, block: int) -> np.ndarray:
        if self.residuals_.empty:
            return np.full(len(QUANTILES), np.nan)
        key = (op, block)
        if key not in self._qcache:
            r = self.residuals_
            grp = r[(r["op"] == op) & (r["block"] == block)]["res"]
            if len(grp) < 40:
                grp = r[r["op"] == op]["res"]
            if len(grp) < 40:
                grp = r["res"]
            self._qcache[key] = (np.quantile(grp, QUANTILES) if len(grp) else np.zeros(len(QUANTILES)))
        return self._qcache[key]

    # -- predicting ----------------------------------------------------------------------------------
    def predict(self, h: int, plan: pd.DataFrame | None = None) -> pd.DataFrame:
        if h <= 0:
            raise ForecastError(f"horizon must be positive, not {h}")
        plan = plan if plan is not None else self.plan_
        index = pd.date_range(self.end_, periods=h, freq=self.step_)
        wall = index.tz_localize(None)
        days = wall.normalize()
        out = np.full((h, 5), np.nan)
        n = len(self.table_)
        for day in days.unique():
            pos = np.flatnonzero(days == day)
            dday = pd.DatetimeIndex([day])
            op = float(self._day_ops(dday, plan)[0])
            dtype = int(day_types(dday, self.holidays_country)[0])
            extra_frame = self._day_extra(dday, plan)
            extra = extra_frame.iloc[0] if len(extra_frame.columns) else None
            self.day_ = pd.Timestamp(day)
            point = self._day_point(n, op, dtype, extra)
            slot_pos = {int(s): k for k, s in enumerate(self.table_.columns)}
            for p in (int(x) for x in pos):
                k = slot_pos[int(wall[p].hour * 60 + wall[p].minute)]
                q = self._quantiles(op, int(self.table_.columns[k]) // 240)
                v = point[k]
                out[p] = [v, v + q[1], v + q[2], v + q[0], v + q[3]]
        out = np.maximum(out, 0.0)  # a load is never negative
        return pd.DataFrame(out, index=index, columns=["forecast", "lower80", "upper80", "lower95", "upper95"])

    # -- helpers for subclasses ------------------------------------------------------------------------
    def _fill(self, point: np.ndarray, before: int) -> np.ndarray:
        """Slots a model could not fill take the median of the last 7 days at that slot (never left empty)."""
        if np.isnan(point).any():
            recent = self.table_.iloc[max(0, before - 7):before].to_numpy()
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a slot empty all week: the next line fills it
                fallback = np.nanmedian(recent, axis=0) if len(recent) else np.zeros_like(point)
            point = np.where(np.isnan(point), fallback, point)
            point = np.where(np.isnan(point), np.nanmean(self.table_.to_numpy()), point)
        return point


class SeasonalNaive(DayModel):
    """The same slot `days` days earlier (1: yesterday, 7: same weekday last week)."""

    def __init__(self, days: int = 7, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.days = days
        self.name = "seasonal_naive_week" if days == 7 else f"seasonal_naive_{days}d"

    def _day_point(self, before: int, op: float, dtype: int, extra: pd.Series | None) -> np.ndarray:
        src = before - self.days
        if 0 <= src < len(self.table_):
            return self._fill(self.table_.iloc[src].to_numpy().copy(), before)
        return self._fill(np.full(len(self.table_.columns), np.nan), before)


class PlanAwareNaive(DayModel):
    """The last day with the same operating status."""

    name = "plan_aware_naive"

    def _day_point(self, before: int, op: float, dtype: int, extra: pd.Series | None) -> np.ndarray:
        for j in range(before - 1, -1, -1):
            if self.ops_[j] == op and not np.isnan(self.table_.iloc[j].to_numpy()).all():
                return self._fill(self.table_.iloc[j].to_numpy().copy(), before)
        return self._fill(np.full(len(self.table_.columns), np.nan), before)


class PlanProfile(DayModel):
    """Median, slot by slot, of the last `n_days` days with the same operating status and day type.

    Day types are weekday, Saturday, Sunday/holiday. The median shrugs off outliers, and a short window follows
    level shifts within about a week. With too few matching days it relaxes the day type, then the status.
    `slot_window` > 0 pools each slot's neighbours within that many slots into its median (a plant's schedule
    jitters by a quarter-hour from day to day; pooling trades a little sharpness for a steadier median).
    """

    def __init__(self, n_days: int = 8, slot_window: int = 0, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.n_days = n_days
        self.slot_window = slot_window
        self.name = f"plan_profile_{n_days}" + (f"s{slot_window}" if slot_window else "")

    def matchers(self, op: float, dtype: int, extra: pd.Series | None) -> list[Callable[[int], bool]]:
        """Which earlier days (table rows) stand for a day like this one, from the closest match to any day.

        With the plan's `shift` count for the day, days with the same count come first: a three-shift day looks
        like the last three-shift days, not like the last one-shift weekdays.
        """
        same_type: list[Callable[[int], bool]] = [
            lambda j: self.ops_[j] == op and self.types_[j] == dtype,
            lambda j: self.ops_[j] == op and (self.types_[j] == DAYTYPE_SATURDAY) == (dtype == 1),
            lambda j: self.ops_[j] == op,
            lambda j: True]
        shift = float(extra["shift"]) if extra is not None and "shift" in extra.index else 0.0
        if shift > 0 and op > 0:
            shifts = self.extra_["shift"].to_numpy(dtype=float)
            return [lambda j: shifts[j] == shift and same_type[0](j),
                    lambda j: shifts[j] == shift and self.ops_[j] == op, *same_type]
        return same_type

    def _pooled(self, rows: np.ndarray) -> np.ndarray:
        if not self.slot_window:
            return rows
        n_slots = rows.shape[1]
        parts = [rows]
        for s in range(1, self.slot_window + 1):
            pad = np.full((rows.shape[0], s), np.nan)
            parts.append(np.hstack([pad, rows[:, : n_slots - s]]))  # the slot s earlier (none before midnight)
            parts.append(np.hstack([rows[:, s:], pad]))  # the slot s later
        return np.vstack(parts)

    def _day_point(self, before: int, op: float, dtype: int, extra: pd.Series | None) -> np.ndarray:
        values = self.table_.to_numpy()
        has = ~np.isnan(values[:before]).all(axis=1)
        for match in self.matchers(op, dtype, extra):
            picked = [j for j in range(before - 1, -1, -1) if has[j] and match(j)][: self.n_days]
            if len(picked) >= min(2, self.n_days):
                with np.errstate(all="ignore"):
                    return self._fill(np.nanmedian(self._pooled(values[picked]), axis=0), before)
        return self._fill(np.full(values.shape[1], np.nan), before)


class PlanRegression(DayModel):
    """statsmodels WLS on slot × operating-status dummies, day type and planned output/shifts.

    Recent days weigh more (half-life `half_life_days`) over the last `window_days`.
    """

    def __init__(self, window_days: int = 56, half_life_days: float = 14.0, **kw: object) -> None:
        kw.setdefault("interval_days", 14)
        super().__init__(**kw)  # type: ignore[arg-type]
        self.window_days = window_days
        self.half_life_days = half_life_days
        self.name = "plan_regression"

    def _design(self, ops: np.ndarray, types: np.ndarray, extra: pd.DataFrame) -> np.ndarray:
        n_slots, n_days = len(self.table_.columns), len(ops)
        x = np.zeros((n_days, n_slots, 2 * n_slots + 2 + len(extra.columns)))
        slot = np.arange(n_slots)
        x[:, slot, slot] = (ops <= 0)[:, None]  # slot profile of a stopped day...
        x[:, slot, n_slots + slot] = (ops > 0)[:, None]  # ...and of an operating day
        x[:, :, 2 * n_slots] = (types == 1)[:, None]
        x[:, :, 2 * n_slots + 1] = (types == 2)[:, None]
        for k, col in enumerate(extra.columns):
            x[:, :, 2 * n_slots + 2 + k] = (extra[col].to_numpy(dtype=float) * (ops > 0))[:, None]
        return x.reshape(n_days * n_slots, -1)

    def _coef(self, before: int) -> np.ndarray:
        lo = max(0, before - self.window_days)
        y = self.table_.iloc[lo:before].to_numpy().ravel()
        x = self._design(self.ops_[lo:before], self.types_[lo:before], self.extra_.iloc[lo:before])
        age = np.repeat(np.arange(before - lo)[::-1], len(self.table_.columns))
        w = 0.5 ** (age / self.half_life_days)
        ok = ~np.isnan(y)
        model = sm.WLS(y[ok], x[ok], weights=w[ok])
        try:
            res = model.fit(method="qr")
        except np.linalg.LinAlgError:  # collinear dummies (e.g. no stopped day in the window): minimum-norm fit
            res = model.fit(method="pinv")
        return np.asarray(res.params)

    def _fit_model(self) -> None:
        self._coef_cache: dict[int, np.ndarray] = {}

    def _day_point(self, before: int, op: float, dtype: int, extra: pd.Series | None) -> np.ndarray:
        # The backcast days all use one fit made before the first of them: still out of sample, two fits in all.
        n = len(self.table_)
        if before < n:
            before = max(MIN_DAYS, n - self.interval_days)
        if before not in self._coef_cache:
            self._coef_cache[before] = self._coef(before)
        extra_frame = pd.DataFrame([extra.to_numpy()], columns=self.extra_.columns) if extra is not None and len(
            self.extra_.columns) else pd.DataFrame(np.zeros((1, len(self.extra_.columns))),
                                                   columns=self.extra_.columns)
        x = self._design(np.array([op]), np.array([dtype]), extra_frame)
        return self._fill(x @ self._coef_cache[before], before)


def model_factories(holidays_country: str | None = "CN") -> dict[str, Callable[[], DayModel]]:
    """Every model by name, as a factory (a backtest makes a fresh model at each origin)."""
    c = holidays_country
    return {
        "seasonal_naive_1d": lambda: SeasonalNaive(1, holidays_country=c),
        "seasonal_naive_week": lambda: SeasonalNaive(7, holidays_country=c),
        "plan_aware_naive": lambda: PlanAwareNaive(holidays_country=c),
        "plan_profile_8": lambda: PlanProfile(8, holidays_country=c),
        "plan_profile_4": lambda: PlanProfile(4, holidays_country=c),
        # chosen on Jan-Jun of the real plant (bench/forecast_real.py): 16 days, slots pooled +-1, 56 days calibrate
        "plan_profile_16s1": lambda: PlanProfile(16, slot_window=1, holidays_country=c, interval_days=56),
        "plan_regression": lambda: PlanRegression(holidays_country=c),
    }


BASELINES = ("seasonal_naive_1d", "seasonal_naive_week", "plan_aware_naive")
