"""Services benchmark: every value-added service for N customers, one month of 15-min data each.

Synthetic plants made in the bench (shift profiles, weekends, noise, PF between 0.78 and 0.97, a few missing
intervals), each on one of the shipped tariffs. Per customer: the load-curve card, TOU advice, demand and
basic-charge advice, PF estimator, base load, bill forecast (as of the 20th), saving advice, and ISO 50006 energy
performance over 18 months of monthly data. Work is split over a process pool (default: every core).
Baselines in the same run: the same month priced by band with a plain pandas groupby (the least any bill needs),
and a naive pandas card (max, min, mean and a band groupby of the same day, no evidence, no missing flags).

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/services.py [--customers 1000] [--workers 2]
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

from crm_bridge.services import (  # noqa: E402
    ContractInputs,
    base_load,
    bill_forecast,
    demand_advice,
    energy_performance,
    load_curve_card,
    pf_advice,
    saving_advice,
    tou_advice,
)
from crm_bridge.tariffs import load_tariff  # noqa: E402

MONTH = "2026-07-01"
TARIFFS = ("sichuan-2023", "guangdong-1-10kv")
SERVICES = ("card", "tou", "demand", "pf", "base_load", "bill", "advice", "energy_performance")


def plant(i: int) -> tuple[pd.DataFrame, ContractInputs, pd.DataFrame]:
    rng = np.random.default_rng(i)
    tz = "Asia/Shanghai"
    idx = pd.date_range(pd.Timestamp(MONTH, tz=tz), periods=31 * 96, freq="15min")
    peak = rng.uniform(500, 8000)
    hour = idx.hour.to_numpy() + idx.minute.to_numpy() / 60
    on = ((hour >= 7) & (hour < 23)) & (idx.dayofweek.to_numpy() < 6)
    kw = peak * np.where(on, rng.uniform(0.7, 0.95), rng.uniform(0.1, 0.4)) * (1 + rng.normal(0, 0.05, len(idx)))
    pf = rng.uniform(0.78, 0.97)
    kwh = kw / 4
    kwh[rng.choice(len(idx), 3, replace=False)] = np.nan
    frame = pd.DataFrame({"kwh": kwh, "kvarh": kwh * np.tan(np.arccos(pf)), "kw": kwh * 4}, index=idx)
    contract = ContractInputs(transformer_kva=peak * 1.3, contract_demand_kw=peak * 0.9,
                              basic_charge_mode=("capacity", "demand", "contract")[i % 3],
                              bill_threshold=peak * 24 * 31 * 0.5, tariff_id=TARIFFS[i % 2])
    months = pd.date_range("2025-01-01", periods=18, freq="MS")
    output = rng.uniform(0.6, 1.0, 18) * peak
    monthly = pd.DataFrame({"kwh": 200 * peak + 300 * output + rng.normal(0, 5 * peak, 18), "output": output},
                           index=months)
    return frame, contract, monthly


def run_customers(ids: list[int]) -> dict[str, float]:
    spent = dict.fromkeys(SERVICES, 0.0)
    tariffs = {t: load_tariff(t) for t in TARIFFS}
    for i in ids:
        frame, contract, monthly = plant(i)
        tariff = tariffs[contract.tariff_id]
        day = frame.index.normalize()
        as_of = pd.Timestamp("2026-07-20", tz="Asia/Shanghai")
        t = time.perf_counter()
        load_curve_card(frame[day == day[-1]], tariff)
        t, spent["card"] = time.perf_counter(), spent["card"] + time.perf_counter() - t
        tou = tou_advice(frame, tariff)
        t, spent["tou"] = time.perf_counter(), spent["tou"] + time.perf_counter() - t
        demand = demand_advice(frame, contract, tariff, [0.8 * contract.transformer_kva] * 2)
        t, spent["demand"] = time.perf_counter(), spent["demand"] + time.perf_counter() - t
        pf = pf_advice(frame, contract, tariff, basic_charge=demand.charges.get(contract.basic_charge_mode))
        t, spent["pf"] = time.perf_counter(), spent["pf"] + time.perf_counter() - t
        base = base_load(frame, tariff)
        t, spent["base_load"] = time.perf_counter(), spent["base_load"] + time.perf_counter() - t
        bill_forecast(frame[frame.index < as_of], contract, tariff, as_of.to_pydatetime())
        t, spent["bill"] = time.perf_counter(), spent["bill"] + time.perf_counter() - t
        saving_advice(tou, demand, pf, base)
        t, spent["advice"] = time.perf_counter(), spent["advice"] + time.perf_counter() - t
        energy_performance(monthly, baseline_months=12, next_output=float(monthly["output"].mean()),
                           price_per_kwh=0.7)
        spent["energy_performance"] += time.perf_counter() - t
    return spent


def baseline(ids: list[int]) -> float:
    """Plain pandas: each month priced by TOU band with a groupby (no evidence, no versions, no other service)."""
    tariff = load_tariff(TARIFFS[0])
    grid = tariff.versions[-1].band_grid()
    prices = tariff.versions[-1].energy_prices
    spent = 0.0
    for i in ids:
        frame, _, _ = plant(i)
        t = time.perf_counter()
        idx = frame.index
        bands = grid[idx.month - 1, idx.hour * 4 + idx.minute // 15]
        by_band = frame["kwh"].groupby(bands).sum()
        sum(v * prices[b] for b, v in by_band.items())
        spent += time.perf_counter() - t
    return spent


def baseline_card(ids: list[int]) -> float:
    """Naive pandas: the day's kW max/min/mean with the time of the max, and kWh per band by groupby."""
    tariff = load_tariff(TARIFFS[0])
    grid = tariff.versions[-1].band_grid()
    spent = 0.0
    for i in ids:
        frame, _, _ = plant(i)
        day = frame[frame.index.normalize() == frame.index.normalize()[-1]]
        t = time.perf_counter()
        kw = day["kwh"] * 4
        pmax, pmin, pavg, at = kw.max(), kw.min(), kw.mean(), kw.idxmax()
        _ = (pavg / pmax, (pmax - pmin) / pmax, at)
        idx = day.index
        day["kwh"].groupby(grid[idx.month - 1, idx.hour * 4 + idx.minute // 15]).sum()
        spent += time.perf_counter() - t
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    ids = list(range(args.customers))
    chunks = [ids[k::args.workers] for k in range(args.workers)]
    gen = 0.0
    for i in ids[:50]:
        g = time.perf_counter()
        plant(i)
        gen += time.perf_counter() - g
    gen_per_customer = gen / 50
    print(f"data generation: {gen_per_customer * 1000:.1f} ms per customer (counted in the wall time)",
          file=sys.stderr)
    t = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        parts = list(pool.map(run_customers, chunks))
    wall = time.perf_counter() - t
    spent = {s: round(sum(p[s] for p in parts), 2) for s in SERVICES}
    print(f"services: {wall:.1f} s wall for {args.customers} customers", file=sys.stderr)
    with ProcessPoolExecutor(args.workers) as pool:
        base_cpu = sum(pool.map(baseline, chunks))
        card_cpu = sum(pool.map(baseline_card, chunks))
    print(json.dumps({
        "customers": args.customers, "workers": args.workers, "intervals_per_customer": 31 * 96,
        "wall_s": round(wall, 2), "target_s": 60, "cpu_s_per_service": spent,
        "ms_per_customer_all_services": round(sum(spent.values()) / args.customers * 1000, 2),
        "data_generation_ms_per_customer": round(gen_per_customer * 1000, 2),
        "baseline_groupby_pricing_cpu_s": round(base_cpu, 2),
        "tou_vs_baseline_cpu": round(spent["tou"] / base_cpu, 1) if base_cpu else None,
        "baseline_naive_card_cpu_s": round(card_cpu, 2),
        "card_vs_naive_card_cpu": round(spent["card"] / card_cpu, 1) if card_cpu else None,
    }))


if __name__ == "__main__":
    main()
