"""A deterministic industrial load model: shifts, weekends, a production plan, reactive power and counters.

Every value is a pure function of (meter parameters, time), so the demo's backfilled history, the live Modbus
and OPC UA simulators, and a restarted simulator all agree, and energy counters never step backwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

SLOT_S = 900  # 15-minute slots: the billing interval
_REF_NS = 1_577_836_800 * 10**9
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # 2020-01-01T00:00Z: counters start at zero here


def _hash01(*parts: int | np.ndarray) -> np.ndarray:
    """Cheap deterministic noise in [0, 1) from integers (works on numpy arrays too)."""
    x: np.ndarray = np.asarray(0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            x = (np.asarray(p, dtype=np.uint64) ^ x) * np.uint64(0xBF58476D1CE4E5B9)
            x = x ^ (x >> np.uint64(31))
    return (np.asarray(x, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True, slots=True)
class LoadModel:
    """One meter's load. `peak_kw` is the full-production level; `base_frac` the idle share of it."""

    peak_kw: float = 2000.0
    base_frac: float = 0.18
    timezone: str = "Asia/Shanghai"
    seed: int = 1
    saturday_shift: bool = True
    shutdown_prob: float = 0.04  # planned stoppage days in the production plan
    pf_full: float = 0.93
    pf_idle: float = 0.78

    # -- production plan -------------------------------------------------------------------------
    def plan_for(self, day: date) -> dict[str, float]:
        """The plan known a day ahead: operating flag, planned output (t) and number of shifts."""
        wd = day.weekday()
        ordinal = day.toordinal()
        shutdown = float(_hash01(self.seed, ordinal, 7)) < self.shutdown_prob
        if wd == 6 or shutdown:
            return {"operating": 0.0, "planned_output_t": 0.0, "shift": 0.0}
        if wd == 5:
            if not self.saturday_shift:
                return {"operating": 0.0, "planned_output_t": 0.0, "shift": 0.0}
            shifts = 1.0
        else:
            shifts = 3.0 if float(_hash01(self.seed, ordinal, 11)) < 0.5 else 2.0
        output = self.peak_kw * 0.011 * shifts * 8 * (0.9 + 0.2 * float(_hash01(self.seed, ordinal, 13)))
        return {"operating": 1.0, "planned_output_t": round(output, 1), "shift": shifts}

    # -- power -----------------------------------------------------------------------------------
    def slot_kw(self, slots: np.ndarray) -> np.ndarray:
        """Mean kW of each absolute 15-min slot (slot = floor(epoch_s / 900)); vectorised over years of slots."""
        slots = np.asarray(slots, dtype=np.int64)
        if len(slots) == 0:
            return np.zeros(0)
        utc = pd.DatetimeIndex(pd.to_datetime(slots * SLOT_S, unit="s", utc=True))
        wall = utc.tz_convert(self.timezone).tz_localize(None).to_numpy()
        local_s = wall.astype("datetime64[s]").astype(np.int64)  # wall-clock seconds
        hour = (local_s % 86400) / 3600.0
        day_codes, uniques = pd.factorize(local_s // 86400)
        plans = [self.plan_for(date.fromordinal(_EPOCH_ORDINAL + int(d))) for d in uniques]
        operating = np.array([p["operating"] for p in plans])[day_codes]
        shifts = np.array([p["shift"] for p in plans])[day_codes]
        base = self.base_frac
        level = np.full(len(slots), base)
        level = np.where((hour >= 8) & (hour < 16), np.where((hour >= 12) & (hour < 12.5), 0.7, 1.0), level)
        level = np.where((hour >= 16) & (shifts >= 2), 0.85, level)
        level = np.where((hour < 8) & (shifts >= 3), 0.55, level)
        level = np.where((hour >= 7.5) & (hour < 8), np.maximum(level, 0.6), level)  # ramp-up before day shift
        level = np.where(operating > 0, np.maximum(level, base), base)
        noise = 1.0 + 0.06 * (np.asarray(_hash01(self.seed, slots, 3)) - 0.5) * 2
        out: np.ndarray = np.maximum(level * noise * self.peak_kw, 0.0)
        return out

    def slot_pf(self, kw: np.ndarray) -> np.ndarray:
        frac = np.clip(kw / self.peak_kw, 0.0, 1.0)
        return self.pf_idle + (self.pf_full - self.pf_idle) * frac

    def slot_kvar(self, kw: np.ndarray) -> np.ndarray:
        pf = self.slot_pf(kw)
        return kw * np.tan(np.arccos(pf))

    # -- counters ----------------------------------------------------------------------------------
    def counters_at(self, t_ns: int) -> tuple[float, float]:
        """Active kWh and reactive kvarh registers at t: monotonic, zero at 2020-01-01."""
        t_s = (t_ns - _REF_NS) / 1e9
        if t_s <= 0:
            return 0.0, 0.0
        ref_slot = _REF_NS // 10**9 // SLOT_S
        n_full = int(t_s // SLOT_S)
        slots = np.arange(ref_slot, ref_slot + n_full + 1, dtype=np.int64)
        kw = self._cached_kw(slots)
        cum_kw = _KW_CACHE[self]["cum_kw"]
        cum_kvar = _KW_CACHE[self]["cum_kvar"]
        frac = (t_s - n_full * SLOT_S) / 3600.0
        hours = SLOT_S / 3600.0
        prev = n_full - 1
        kwh = (float(cum_kw[prev]) * hours if prev >= 0 else 0.0) + float(kw[-1]) * frac
        kvar_last = float(self.slot_kvar(kw[-1:])[0])
        kvarh = (float(cum_kvar[prev]) * hours if prev >= 0 else 0.0) + kvar_last * frac
        return kwh, kvarh

    def _cached_kw(self, slots: np.ndarray) -> np.ndarray:
        cache = _KW_CACHE.setdefault(self, {})
        first, last = int(slots[0]), int(slots[-1])
        have = _RANGES.get(self)
        if have is None or have[0] != first or have[1] < last:
            arr = self.slot_kw(np.arange(first, last + 96 * 2, dtype=np.int64))  # a little ahead
            _RANGES[self] = (first, last + 96 * 2 - 1)
            cache["kw"] = arr
            cache["cum_kw"] = np.cumsum(arr)
            cache["cum_kvar"] = np.cumsum(self.slot_kvar(arr))
        return cache["kw"][: last - first + 1]

    def instant(self, t_ns: int) -> dict[str, float]:
        """What a meter shows at t: power with a little jitter, voltages, currents, PF and counters."""
        slot = t_ns // 10**9 // SLOT_S
        kw_slot = float(self._cached_kw(np.array([_REF_NS // 10**9 // SLOT_S, slot]))[-1]) if slot else 0.0
        jitter = 1.0 + 0.01 * (float(_hash01(self.seed, t_ns // 10**9, 5)) - 0.5)
        kw = kw_slot * jitter
        pf = float(self.slot_pf(np.array([kw]))[0])
        kvar = kw * math.tan(math.acos(pf))
        kwh, kvarh = self.counters_at(t_ns)
        voltage = 400.0 * (1.0 + 0.01 * (float(_hash01(self.seed, t_ns // 10**9, 9)) - 0.5))
        current = kw * 1000.0 / (math.sqrt(3) * voltage * pf) if kw > 0 else 0.0
        return {
            "active_power_kw": kw,
            "reactive_power_kvar": kvar,
            "power_factor": pf,
            "voltage_ll_v": voltage,
            "current_a": current,
            "frequency_hz": 50.0 + 0.02 * (float(_hash01(self.seed, t_ns // 10**9, 17)) - 0.5),
            "active_energy_import_kwh": kwh,
            "reactive_energy_import_kvarh": kvarh,
        }


_KW_CACHE: dict[LoadModel, dict[str, np.ndarray]] = {}
_RANGES: dict[LoadModel, tuple[int, int]] = {}


def history_days(model: LoadModel, end: datetime, days: int) -> list[date]:
    """The local dates covered by `days` days of history ending at `end`."""
    tz = ZoneInfo(model.timezone)
    last = end.astimezone(tz).date()
    return [last - timedelta(days=i) for i in range(days, -1, -1)]
