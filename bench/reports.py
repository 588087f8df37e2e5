"""Monthly PDF reports benchmark: N customers' reports of one month through the shared batch executor.

Builds a real gateway's data folder: N customers (default 100), each with a meter whose last full month (local, on
the Asia/Shanghai clock) and a day either side are written to the embedded store from the demo's load model
(`gateway.demo.backfill.history_readings`), a contract on the Guangdong 10 kV tariff (so each report has money and
advice) and a stored day-ahead forecast for the month (so it has forecast accuracy). Then it times
`gateway.usecases.reports.month_reports`: the N monthly PDFs made through `report_executor` (a process pool on this
machine's cores, as `report customer --all` and the scheduled job use it). The baseline in the same run: a plain
serial loop in one process (`customer_report`, one after the other) over the first `--baseline` customers, and that
time per report x N. Issue 13's target: 100 reports in <= 60 s on 2 cores.

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/reports.py [--customers 100] [--workers N] [--baseline 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TZ = "Asia/Shanghai"


def _config(data_dir: Path, n: int) -> str:
    parts = [f'[gateway]\ndata_dir = "{data_dir}"\nenvironment = "development"\nrun_scheduler = false\n']
    for i in range(n):
        cid = f"c{i:03d}"
        parts.append(f'[[customers]]\nid = "{cid}"\nname = "Plant {i}"\ntimezone = "{TZ}"\n'
                     f'language = "{"zh" if i % 2 == 0 else "en"}"\n')
        parts.append(f'[[sites]]\nid = "{cid}-site"\ncustomer = "{cid}"\n')
        parts.append(f'[[meters]]\nid = "{cid}-m1"\nsite = "{cid}-site"\ndevice = "{cid}-dev"\n')
        parts.append(f'[[devices]]\ntype = "modbus"\nname = "{cid}-dev"\nhost = "127.0.0.1"\nport = 1\n'
                     f'unit = {i % 247 + 1}\nprofile = "generic"\n')
    return "\n".join(parts)


def build_world(folder: Path, n: int, month: date) -> Path:
    """The data folder and gateway.toml of N customers with `month`'s history, contracts and forecasts."""
    from sqlalchemy import select

    from collectors.sim.load import LoadModel
    from crm_bridge.registry.models import Contract, Customer
    from gateway.config import load_config
    from gateway.demo.backfill import history_readings
    from gateway.runtime import Gateway

    config = folder / "gateway.toml"
    config.write_text(_config(folder / "state", n))
    gw = Gateway.from_config(load_config(config))
    tz = ZoneInfo(TZ)
    start = datetime.combine(month - timedelta(days=1), datetime.min.time(), tz)
    nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    end = min(datetime.combine(nxt + timedelta(days=1), datetime.min.time(), tz), datetime.now(tz))
    start_ns, end_ns = int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9
    tags = gw.directory.tags
    for i in range(n):
        model = LoadModel(peak_kw=rng_peak(i), seed=100 + i, timezone=TZ)
        gw.store.write(history_readings(model, f"c{i:03d}-dev", tags[f"c{i:03d}-dev"], start_ns, end_ns, end_ns))
    with gw.db() as s:
        for i in range(n):
            customer = s.scalar(select(Customer).where(Customer.code == f"c{i:03d}"))
            peak = rng_peak(i)
            s.add(Contract(customer=customer, transformer_kva=peak * 1.4, contract_demand_kw=peak * 0.9,
                           basic_charge_mode=("contract", "capacity", "demand")[i % 3], pf_standard=0.9,
                           bill_threshold=peak * 500.0, tariff_id="guangdong-1-10kv"))
        s.commit()
    idx = pd.date_range(pd.Timestamp(month, tz=TZ), pd.Timestamp(nxt, tz=TZ), freq="15min", inclusive="left")
    for i in range(n):
        actual = gw.query.customer_intervals(f"c{i:03d}", idx[0], idx[-1] + pd.Timedelta(minutes=15))["kwh"]
        fc = actual.fillna(actual.mean()) * 1.03  # a forecast 3 % high: the report shows its accuracy
        gw.query.store_forecast(f"c{i:03d}", pd.DataFrame({"forecast": fc, "lower80": fc * 0.9, "upper80": fc * 1.1,
                                                           "lower95": fc * 0.8, "upper95": fc * 1.2}), time.time_ns())
    gw.store.close()
    return config


def rng_peak(i: int) -> float:
    return 800.0 + 37.0 * (i % 50)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--baseline", type=int, default=10, help="reports in the serial baseline loop (0: none)")
    ap.add_argument("--keep", type=Path, help="build the world in DIR and keep it, or use the one an earlier run kept "
                                              "there (default: a temp dir, removed)")
    args = ap.parse_args()
    os.environ.setdefault("GATEWAY_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    month = (datetime.now(ZoneInfo(TZ)).date().replace(day=1) - timedelta(days=1)).replace(day=1)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-reports-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        config = folder / "gateway.toml"
        if not config.exists():  # a world kept by an earlier run (--keep) is used again as it is
            config = build_world(folder, args.customers, month)
        world_s = time.perf_counter() - t
        print(f"world: {args.customers} customers, {month:%Y-%m}, {world_s:.1f} s", file=sys.stderr)
        result = run(config, args.customers, args.workers, args.baseline, month)
        result["world_build_s"] = round(world_s, 1)
        print(json.dumps(result))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def run(config: Path, n: int, workers: int, baseline_n: int, month: date) -> dict[str, object]:
    from gateway.config import load_config
    from gateway.runtime import offline_sources
    from gateway.usecases import UseCases
    from gateway.usecases.reports import MonthReportJob, customer_report, month_reports, report_executor

    cfg = load_config(config, secrets={"store", "database"})
    uc = UseCases(offline_sources(cfg))  # migrated and in step with the config, as the CLI leaves it
    jobs = [MonthReportJob(c.id, month, "pdf") for c in cfg.customers[:n]]

    t = time.perf_counter()
    sizes: list[int] = []
    errors: list[str] = []
    cpu = 0.0
    with report_executor(cfg, workers) as pool:
        for done in month_reports(cfg, jobs, pool):
            cpu += done.cpu_s
            if done.content is None:
                errors.append(f"{done.job.customer}: {done.error}")
            else:
                sizes.append(len(done.content))
    wall = time.perf_counter() - t
    print(f"batch: {len(sizes)} PDFs in {wall:.1f} s on {workers} workers", file=sys.stderr)

    baseline: dict[str, object] | None = None
    if baseline_n:
        customer_report(uc, jobs[-1].customer, month, "pdf")  # the serial loop's imports and first fonts, uncounted
        t, c = time.perf_counter(), time.process_time()
        for job in jobs[:baseline_n]:
            customer_report(uc, job.customer, month, "pdf")
        spent, spent_cpu = time.perf_counter() - t, time.process_time() - c
        per = spent / baseline_n
        baseline = {"kind": "plain serial loop in one process (customer_report)", "reports": baseline_n,
                    "seconds": round(spent, 2), "per_report_s": round(per, 3), "for_all_reports_s": round(per * n, 1),
                    "cpu_s_per_report": round(spent_cpu / baseline_n, 3)}
        print(f"baseline: {baseline_n} reports one after the other, {per:.3f} s each", file=sys.stderr)
    return {
        "reports": len(sizes), "month": f"{month:%Y-%m}", "seconds": round(wall, 1),
        "per_report_s": round(wall / max(len(sizes), 1), 3), "workers": workers, "cores": os.cpu_count(),
        "target_s": 60, "errors": errors[:5], "failed": len(errors),
        "mean_pdf_kb": round(sum(sizes) / max(len(sizes), 1) / 1024, 1),
        # CPU time in the workers per report: what the machine's other load does not inflate; with W idle cores the
        # batch needs about N x this / W seconds
        "cpu_s_per_report": round(cpu / max(len(jobs), 1), 3), "load_average_1min": round(os.getloadavg()[0], 1),
        "baseline": baseline,
        "speedup_vs_serial": round(baseline["for_all_reports_s"] / wall, 2) if baseline else None,  # type: ignore[operator]
    }


if __name__ == "__main__":
    main()
