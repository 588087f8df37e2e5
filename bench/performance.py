"""Energy-performance benchmark: production files at the size limit, and the ISO 50006 model for many customers.

Parts, each against a baseline measured in the same run:
- read_production on a CSV and an XLSX of --rows rows (every cell checked, row errors collected) against
  pandas.read_csv / openpyxl reading the same file with no checks (the least any reader costs);
- energy_performance (OLS with degree days, R², CV(RMSE), CUSUM, EnPI) for --customers customers of 36 months
  against a bare np.polyfit of the same months (the least any baseline costs).
When ../shared/data holds the Korean steel plant's file, its 2018 months' kWh (from the file, as the months' sums
of its 15-min intervals) are fitted against a synthetic output as a real-data sanity line (not a timing).

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/performance.py [--rows 20000] [--customers 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_bridge.services.performance import energy_performance  # noqa: E402
from crm_bridge.services.production_io import read_production  # noqa: E402

STEEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "steel_industry_2018_jan_sep.csv"


def _files(rows: int) -> tuple[bytes, bytes]:
    from openpyxl import Workbook

    first = date(2020, 1, 1)
    lines = [f"L{i % 20}" for i in range(rows)]
    days = [first + timedelta(days=i // 20) for i in range(rows)]
    out = np.random.default_rng(1).uniform(10, 500, rows).round(3)
    csv = "date,output,unit,line,hdd\n" + "".join(f"{d},{o},t,{ln},{i % 30}\n" for i, (d, o, ln) in
                                                  enumerate(zip(days, out, lines, strict=True)))
    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["date", "output", "unit", "line", "hdd"])
    for i, (d, o, ln) in enumerate(zip(days, out, lines, strict=True)):
        ws.append([d, float(o), "t", ln, i % 30])
    buf = io.BytesIO()
    wb.save(buf)
    return csv.encode(), buf.getvalue()


def _best(f, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--customers", type=int, default=2000)
    args = ap.parse_args()
    csv, xlsx = _files(args.rows)
    print(f"files: csv {len(csv)} B, xlsx {len(xlsx)} B, {args.rows} rows", file=sys.stderr)
    out: dict[str, object] = {"rows": args.rows, "customers": args.customers}
    out["csv_read_production_s"] = _best(lambda: read_production(csv, "plan"))
    out["csv_pandas_baseline_s"] = _best(lambda: pd.read_csv(io.BytesIO(csv)))

    def openpyxl_only() -> None:
        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(xlsx), read_only=True, data_only=True)
        for _ in wb.worksheets[0].iter_rows(values_only=True):
            pass
        wb.close()

    out["xlsx_read_production_s"] = _best(lambda: read_production(xlsx, "plan"), 1)
    out["xlsx_openpyxl_baseline_s"] = _best(openpyxl_only, 1)
    rng = np.random.default_rng(2)
    idx = pd.date_range("2023-01-01", periods=36, freq="MS")
    frames = []
    for _ in range(args.customers):
        o, h = rng.uniform(800, 1200, 36), rng.uniform(0, 400, 36)
        frames.append(pd.DataFrame({"kwh": 5e4 + 120 * o + 30 * h + rng.normal(0, 800, 36), "output": o, "hdd": h},
                                   index=idx))
    t = time.perf_counter()
    valid = sum(energy_performance(f, baseline_months=12).valid for f in frames)
    out["model_s"] = time.perf_counter() - t
    t = time.perf_counter()
    for f in frames:
        np.polyfit(f["output"].to_numpy()[:12], f["kwh"].to_numpy()[:12], 1)
    out["polyfit_baseline_s"] = time.perf_counter() - t
    out["model_valid_share"] = valid / args.customers
    out["model_per_customer_ms"] = 1000 * float(out["model_s"]) / args.customers  # type: ignore[arg-type]
    if STEEL.exists():
        steel = pd.read_csv(STEEL)
        end = pd.to_datetime(steel["date"], format="%d/%m/%Y %H:%M")
        end = end.where(end.dt.strftime("%H:%M") != "00:00", end + pd.Timedelta(days=1))  # midnight rows: README
        start = end - pd.Timedelta(minutes=15)
        monthly = steel.groupby(start.dt.to_period("M"))["Usage_kWh"].sum()
        output = monthly.to_numpy() / 500 + np.random.default_rng(3).normal(0, 5, len(monthly))  # t at ~500 kWh/t
        ep = energy_performance(pd.DataFrame({"kwh": monthly.to_numpy(), "output": output},
                                             index=monthly.index.to_timestamp()))
        out["steel_months"] = len(monthly)
        out["steel_model"] = {"valid": ep.valid, "reason": ep.reason, "r2": ep.r2, "cv_rmse": ep.cv_rmse}
    out["csv_x_baseline"] = float(out["csv_read_production_s"]) / float(out["csv_pandas_baseline_s"])  # type: ignore[arg-type]
    out["xlsx_x_baseline"] = float(out["xlsx_read_production_s"]) / float(out["xlsx_openpyxl_baseline_s"])  # type: ignore[arg-type]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
