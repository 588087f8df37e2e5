"""Day-ahead forecasts for 1,000 synthetic customers (8 weeks of 15-min history each) through the batch runner.

A local process pool on this machine's cores; the same call takes a Dask executor. Prints one JSON object.
Usage: .venv/bin/python bench/forecast_scale.py [--customers 1000] [--weeks 8] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecasting import ForecastError, forecast_day_ahead  # noqa: E402


def customers(n: int, weeks: int, seed: int = 0) -> tuple[dict[str, pd.Series], dict[str, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2026-11-23", tz="Asia/Shanghai")
    idx = pd.date_range(end - pd.Timedelta(weeks=weeks), end, freq="15min", inclusive="left")
    wall = idx.tz_localize(None)
    hour = (wall.hour + wall.minute / 60).to_numpy()
    days = pd.date_range(wall[0].normalize(), end.tz_localize(None) + pd.Timedelta(days=1), freq="D")
    histories, plans = {}, {}
    for i in range(n):
        peak = rng.uniform(200, 5000)
        base = rng.uniform(0.1, 0.5)
        day_ops = (days.weekday < 5 + rng.integers(0, 2)) & (rng.random(len(days)) > 0.03)
        ops = pd.Series(day_ops, index=days).reindex(wall.normalize()).to_numpy()
        shape = np.where((hour >= 8) & (hour < 20), 1.0, 0.6)
        values = peak * np.where(ops, shape, base) * (1 + rng.normal(0, 0.05, len(idx)))
        histories[f"c{i:04d}"] = pd.Series(values, index=idx)
        plans[f"c{i:04d}"] = pd.DataFrame({"operating": day_ops.astype(float)}, index=days.tz_localize(end.tz))
    return histories, plans


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    t = time.perf_counter()
    histories, plans = customers(args.customers, args.weeks)
    made = time.perf_counter() - t
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        out = forecast_day_ahead(histories, plans, executor=pool)
    wall = time.perf_counter() - t
    failed = [k for k, v in out.items() if isinstance(v, ForecastError)]
    ok = [v for v in out.values() if isinstance(v, pd.DataFrame)]
    print(json.dumps({
        "customers": args.customers, "weeks_of_history": args.weeks, "workers": args.workers,
        "wall_s": round(wall, 1), "per_customer_ms": round(1000 * wall / args.customers, 1),
        "forecast_rows": sum(len(v) for v in ok), "failed": len(failed), "data_generation_s": round(made, 1),
        "target_wall_s": 300,
    }))


if __name__ == "__main__":
    main()
