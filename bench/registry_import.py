"""Bulk-onboarding benchmark: `registry import` of N customers (3 sites, 10 meters, a contract, 5 equipment rows each).

The import (`gateway.cli.registry.import_rows`: every row checked with the registry API's models and rules, matched
against the registry, then written in one transaction) runs on a freshly migrated registry; the baseline, measured
in the same run on another fresh registry, is a plain SQLAlchemy bulk insert (executemany `insert()`) of the same
rows with their ids given, so no checks, no look-ups. A second import of the same rows (which must change nothing)
is timed too. Target (issue 11): 1,000 customers in under 60 s.

Prints one JSON object as its last stdout line.
Usage: .venv/bin/python bench/registry_import.py [--customers 1000] [--url sqlite:///... | postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from crm_bridge.registry import make_engine, migrate  # noqa: E402
from crm_bridge.registry.models import (  # noqa: E402
    AccountManager,
    Contract,
    Customer,
    Equipment,
    ManagerAssignment,
    Meter,
    MeterAssignment,
    Site,
)
from gateway.usecases.registry_import import KINDS, Rows, import_rows  # noqa: E402

SITES, METERS, EQUIPMENT, MANAGERS = 3, 10, 5, 20
START = date(2026, 1, 1)


def sheet_rows(n: int) -> Rows:
    """The spreadsheet's rows for `n` customers, as `read_sheets` gives them."""
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    rows["managers"] = [{"code": f"am-{m:02d}", "name": f"Manager {m}", "email": f"am{m}@utility.example"}
                        for m in range(MANAGERS)]
    for c in range(n):
        code = f"c{c:05d}"
        rows["customers"].append({"code": code, "name": f"Customer {c}", "timezone": "Asia/Shanghai",
                                  "industry": "steel", "annual_revenue": 1e8 + c, "managers": f"am-{c % MANAGERS:02d}"})
        for s in range(SITES):
            rows["sites"].append({"code": f"{code}-s{s}", "customer": code, "name": f"Works {s}", "address": None})
        for m in range(METERS):
            rows["meters"].append({"code": f"{code}-m{m}", "site": f"{code}-s{m % SITES}", "description": None,
                                   "valid_from": START})
        rows["contracts"].append({"customer": code, "valid_from": START, "transformer_kva": 4000.0,
                                  "hv_motors_kw": 0.0, "contract_demand_kw": 2500.0, "basic_charge_mode": "contract",
                                  "pf_standard": 0.9, "bill_threshold": None, "tariff_id": "guangdong-1-10kv"})
        for e in range(EQUIPMENT):
            rows["equipment"].append({"customer": code, "name": f"T{e}", "kind": "transformer",
                                      "site": f"{code}-s{e % SITES}", "rating": 2500.0, "rating_unit": "kVA"})
    return {k: [(i + 2, r) for i, r in enumerate(v)] for k, v in rows.items()}


def baseline(db: sessionmaker[Session], n: int) -> None:
    """The same rows by executemany insert with their ids given: the floor of what writing them costs."""
    customers = [{"id": c + 1, "code": f"c{c:05d}", "name": f"Customer {c}", "timezone": "Asia/Shanghai",
                  "industry": "steel", "annual_revenue": 1e8 + c} for c in range(n)]
    managers = [{"id": m + 1, "code": f"am-{m:02d}", "name": f"Manager {m}", "email": f"am{m}@utility.example"}
                for m in range(MANAGERS)]
    links = [{"manager_id": c % MANAGERS + 1, "customer_id": c + 1} for c in range(n)]
    sites = [{"id": c * SITES + s + 1, "customer_id": c + 1, "code": f"c{c:05d}-s{s}", "name": f"Works {s}"}
             for c in range(n) for s in range(SITES)]
    meters = [{"id": c * METERS + m + 1, "code": f"c{c:05d}-m{m}"} for c in range(n) for m in range(METERS)]
    assignments = [{"meter_id": c * METERS + m + 1, "site_id": c * SITES + m % SITES + 1, "valid_from": START}
                   for c in range(n) for m in range(METERS)]
    contracts = [{"customer_id": c + 1, "valid_from": START, "transformer_kva": 4000.0, "hv_motors_kw": 0.0,
                  "contract_demand_kw": 2500.0, "basic_charge_mode": "contract", "pf_standard": 0.9,
                  "tariff_id": "guangdong-1-10kv"} for c in range(n)]
    equipment = [{"customer_id": c + 1, "site_id": c * SITES + e % SITES + 1, "kind": "transformer", "name": f"T{e}",
                  "rating": 2500.0, "rating_unit": "kVA"} for c in range(n) for e in range(EQUIPMENT)]
    with db() as s:
        for model, rows in ((AccountManager, managers), (Customer, customers), (ManagerAssignment, links),
                            (Site, sites), (Meter, meters), (MeterAssignment, assignments), (Contract, contracts),
                            (Equipment, equipment)):
            s.execute(insert(model), rows)
        s.commit()


def fresh(url: str | None, folder: Path, name: str) -> sessionmaker[Session]:
    target = url or f"sqlite:///{folder / name}.db"
    migrate(target)
    return sessionmaker(make_engine(target), expire_on_commit=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--url", help="an empty database to use for the import (default: SQLite files in a temp folder)")
    args = ap.parse_args()
    rows = sheet_rows(args.customers)
    total_rows = sum(len(v) for v in rows.values())
    with tempfile.TemporaryDirectory() as tmp:
        base_db, db = fresh(None, Path(tmp), "baseline"), fresh(args.url, Path(tmp), "import")
        t0 = time.perf_counter()
        baseline(base_db, args.customers)
        base_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        first = import_rows(db, rows)
        import_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = import_rows(db, rows)
        again_s = time.perf_counter() - t0
    if first.problems or not first.applied:
        raise SystemExit(f"the import failed: {[str(p) for p in first.problems[:5]]}")
    if any(second.created.values()) or any(second.updated.values()):
        raise SystemExit("the second import changed something")
    print(json.dumps({
        "customers": args.customers, "rows": total_rows, "created": first.created,
        "import_s": round(import_s, 2), "baseline_bulk_insert_s": round(base_s, 2),
        "ratio_to_baseline": round(import_s / base_s, 1), "second_import_s": round(again_s, 2),
        "target_s": 60, "within_target": import_s < 60,
        "database": "sqlite" if args.url is None else args.url.split(":", 1)[0]}))


if __name__ == "__main__":
    main()
