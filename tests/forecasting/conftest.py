"""Synthetic plants with known structure and noise."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synth(days=49, tz="Asia/Shanghai", start="2026-01-05", noise=10.0, seed=1, shutdowns=(), freq="15min"):
    """Operating weekdays and Saturdays with a day-shift profile, Sundays and `shutdowns` (dates) at base load."""
    rng = np.random.default_rng(seed)
    end = (pd.Timestamp(start) + pd.Timedelta(days=days)).tz_localize(tz)  # local midnight, across DST too
    idx = pd.date_range(pd.Timestamp(start, tz=tz), end, freq=freq, inclusive="left")
    wall = idx.tz_localize(None)
    hour = wall.hour + wall.minute / 60
    day = wall.normalize()
    stopped = (wall.weekday == 6) | np.isin(day, pd.DatetimeIndex(list(shutdowns)))
    level = np.where((hour >= 8) & (hour < 18), 400.0, 220.0)
    level = np.where(wall.weekday == 5, level * 0.8, level)
    value = np.where(stopped, 60.0, level) + rng.normal(0, noise, len(idx))
    history = pd.Series(value, index=idx)
    days_idx = pd.date_range(day[0], day[-1] + pd.Timedelta(days=7), freq="D")
    plan = pd.DataFrame({"operating": [0.0 if (d.weekday() == 6 or d in set(pd.DatetimeIndex(list(shutdowns))))
                                       else 1.0 for d in days_idx]},
                        index=days_idx.tz_localize(tz))
    return history, plan
