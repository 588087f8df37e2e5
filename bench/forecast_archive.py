"""Benchmark: the forecast archive (every issue kept) against the old one-forecast-per-interval readings, as JSON.

For the embedded store and a real influxd (v1): a year of nightly day-ahead issues for one customer (every 7th day
re-issued during the day), written through QueryService.store_forecast; then a month's `forecast` read (what the
day/month views and the month accuracy read) and the month's accuracy. Baseline, measured in the same run on the
same store: the same forecasts written the old way (readings of device `forecast:<customer>`, one series per
point) and read the old way (five `buckets` reads), which the archive replaces. Also the forecast measurement's
series count in influxd (one per customer and issue slot). Prints one JSON object as its last stdout line.
Usage: .venv/bin/python bench/forecast_archive.py [DAYS]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.reading import Quality, Reading  # noqa: E402
from gateway.query import FORECAST_COLUMNS, FORECAST_POINTS, QueryService, Topology  # noqa: E402
from gateway.store.base import TimeSeriesStore  # noqa: E402
from gateway.store.sqlite import SqliteStore  # noqa: E402
from tests.gateway.store.conftest import make_v1  # noqa: E402
from tests.servers.influx import run_influxd  # noqa: E402

TZ = "Asia/Shanghai"
TOPO = Topology(customer_tz={"c": TZ}, site_customer={"s": "c"}, meter_site={"m": "s"}, meter_device={"m": "d"})
FIRST = pd.Timestamp("2025-01-01", tz=TZ)


def _issues(days: int) -> list[tuple[pd.DataFrame, int]]:
    rng = np.random.default_rng(1)
    out = []
    for d in range(days):
        start = FIRST + pd.Timedelta(days=d)
        idx = pd.date_range(start, periods=96, freq="15min")
        v = 100 + 20 * rng.random(96)
        frame = pd.DataFrame({"forecast": v, "lower80": v - 5, "upper80": v + 5, "lower95": v - 9, "upper95": v + 9},
                             index=idx)
        out.append((frame, int((start - pd.Timedelta(hours=2, minutes=30)).value)))
        if d % 7 == 0:
            out.append((frame + 1.0, int((start + pd.Timedelta(hours=8)).value)))
    return out


def _legacy_readings(frame: pd.DataFrame, made: int) -> list[Reading]:
    return [Reading("forecast:c", p, float(frame.iloc[i][c]), "kWh", Quality.GOOD, int(ts.value), made, "c", "",
                    "forecast:c") for i, ts in enumerate(frame.index)
            for c, p in zip(FORECAST_COLUMNS, FORECAST_POINTS, strict=True)]


def _best(f: Callable[[], object], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def _run(store: TimeSeriesStore, legacy: TimeSeriesStore, issues: list[tuple[pd.DataFrame, int]]) -> dict[str, object]:
    after = pd.Timestamp("2026-06-01", tz="UTC").to_pydatetime()
    q = QueryService(store, TOPO, clock=lambda: after)
    old = QueryService(legacy, TOPO, clock=lambda: after)
    t = time.perf_counter()
    for frame, made in issues:
        q.store_forecast("c", frame, made, model="plan_profile_8")
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    for frame, made in issues:
        legacy.write(_legacy_readings(frame, made))
    legacy_write_s = time.perf_counter() - t
    start, end = FIRST + pd.DateOffset(months=5), FIRST + pd.DateOffset(months=6)
    month = q.forecast("c", start, end)
    assert month["forecast"].notna().all()
    assert month["day_ahead"].all()
    assert old.forecast("c", start, end)["forecast"].notna().all()  # (no archive rows there: the old read)
    return {"issues": len(issues), "write_per_issue_ms": round(1000 * write_s / len(issues), 2),
            "baseline_write_per_issue_ms": round(1000 * legacy_write_s / len(issues), 2),
            "month_read_ms": round(1000 * _best(lambda: q.forecast("c", start, end)), 1),
            "baseline_month_read_ms": round(1000 * _best(lambda: old.forecast("c", start, end)), 1)}


def main(days: int = 365) -> dict[str, object]:
    issues = _issues(days)
    out: dict[str, object] = {"days": days}
    with tempfile.TemporaryDirectory() as tmp:
        out["embedded"] = _run(SqliteStore(Path(tmp) / "a.sqlite"), SqliteStore(Path(tmp) / "b.sqlite"), issues)
        with run_influxd(Path(tmp) / "influxd") as server:
            store, legacy = make_v1(server, "archive"), make_v1(server, "legacy")
            out["influx_v1"] = _run(store, legacy, issues)
            (series,) = store.query('SHOW SERIES FROM "forecast"')  # type: ignore[attr-defined]
            out["influx_v1"]["forecast_series"] = sum(len(s["values"]) for s in series)  # type: ignore[index]
            store.close()
            legacy.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) for a in sys.argv[1:]))))
