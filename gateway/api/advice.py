"""Saving advice ranked by money, for the API and the portal: from the last full month's figures and contract."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.api.errors import ApiError
from gateway.api.views import Views, customer_config


def advice_for(v: Views, customer: str) -> list[dict[str, Any]]:
    """Items with money per month and per year, the evidence and assumptions; largest saving first."""
    tz = ZoneInfo(customer_config(v.gw, customer).timezone)
    last_month = (datetime.now(tz).date().replace(day=1) - timedelta(days=1)).replace(day=1)
    try:
        view = v.month_view(customer, last_month)
    except ApiError:
        return []
    items: list[dict[str, Any]] = []
    bc = view.get("basic_charge")
    if bc:
        current = {"capacity": bc["capacity"], "max_demand": bc["demand"], "demand": bc["demand"],
                   "contract_demand": bc["contract"], "contract": bc["contract"]}.get(bc["current_mode"])
        best = min(x for x in (bc["capacity"], bc["demand"], bc["contract"]) if x is not None)
        saving = 0.0 if current is None else current - best
        if saving > 0:
            items.append({"kind": "basic_charge_mode", "title": f"Switch the basic charge to '{bc['cheapest']}'",
                          "money_per_month": round(saving, 2), "money_per_year": round(12 * saving, 2),
                          "evidence": f"{view['month']}: peak {view['peak_kw']} kW; capacity {bc['capacity']}, "
                                      f"max demand {bc['demand']}, contract {bc['contract']}",
                          "assumptions": "next months peak like this one"})
    pfa = view.get("pf_adjustment")
    if pfa and pfa["amount"] and pfa["amount"] > 0:
        items.append({"kind": "power_factor", "title": f"Raise PF from {pfa['pf']} to {pfa['standard']} or above",
                      "money_per_month": pfa["amount"], "money_per_year": round(12 * pfa["amount"], 2),
                      "evidence": f"{view['month']}: PF {pfa['pf']} against standard {pfa['standard']}: "
                                  f"+{pfa['percent']} %",
                      "assumptions": "same energy and PF in later months"})
    return sorted(items, key=lambda x: -x["money_per_month"])
