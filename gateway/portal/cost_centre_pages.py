"""The portal's cost-centre page: one site, line or cost centre's curve, bill share, SEC, baseline and budget.

Every figure is `gateway.usecases.cost_centre_view.CostCentreView`'s, called as the API route calls it; this module
only arranges them for the page, writes them with `gateway.portal.units`, draws the curve with
`gateway.portal.charts` as the curve pages do (status kept, gaps left gaps) and says in the reader's language why a
figure is not there. Money is shown only to roles holding the money capability.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from crm_bridge.tariffs.model import next_month
from gateway.api.deps import UseCasesDep
from gateway.api.roles import Capability, allowed, needs
from gateway.api.scope import CustomerId, GatewayDep
from gateway.portal import User, _lang, _nav, _render, i18n
from gateway.portal.charts import daily_chart, interval_chart, status_of
from gateway.portal.curve_pages import chart_labels
from gateway.portal.energy_pages import reason
from gateway.portal.units import cash, pct, q
from gateway.usecases import parse_day, parse_month
from gateway.usecases.allocation import CODE
from gateway.usecases.cost_centre_view import CostCentreView
from gateway.usecases.figures import customer_config

router = APIRouter(include_in_schema=False)
STATUSES = ("measured", "estimated", "missing", "pending")
_WHY = {"not_begun": "ep_why_not_begun", "no_projection": "cc_why_no_projection",
        "no_allocation": "cc_why_no_allocation", "unknown": "cc_why_unknown"}


def _curve_chart(curve: dict[str, Any], lang: str) -> dict[str, Any]:
    """Day and week: the 15-min kW as the week curve draws it; month: days as bars of kWh with their peak kW."""
    labels = chart_labels(lang)
    points = curve["intervals"]
    if curve["range"] != "month":
        rows = [{"start": p["start"], "kw_mean": p["kw"], "demand_max_kw": p["kw"], "status": p["status"]}
                for p in points]
        return interval_chart(rows, 15, labels, lang)
    days: dict[str, dict[str, Any]] = {}
    for p in points:
        d = days.setdefault(p["start"][:10], {"day": p["start"][:10], "kwh": None, "peak_kw": None,
                                              **{f"{s}_intervals": 0 for s in STATUSES}})
        d[f"{p['status']}_intervals"] += 1
        if p["kwh"] is not None:
            d["kwh"] = (d["kwh"] or 0.0) + p["kwh"]
            d["peak_kw"] = max(d["peak_kw"] or 0.0, p["kw"])
    return daily_chart(list(days.values()), labels, lang)


def _share(share: dict[str, Any], lang: str, money: bool) -> dict[str, Any]:
    line = share["line"]
    if line is None:
        return {"line": None, "why": reason(share["reason"], lang)}
    currency = share["currency"]
    elements = []
    for m in line.get("money") or []:
        band = m["element"].removeprefix("energy_") if m["element"].startswith("energy_") else None
        elements.append({"element": m["element"], "band": band, "kwh": q(m["kwh"], "kWh", lang),
                         "amount": cash(m["amount"], currency, lang), "value": m["amount"]})
    counts = line["intervals"]
    return {"line": line, "why": None, "elements": elements, "kwh": q(line["kwh"], "kWh", lang),
            "kwh_value": line["kwh"], "counts": counts, "status": status_of({f"{k}_intervals": v
                                                                             for k, v in counts.items()}),
            "rule_share": pct(Decimal(line["share"]) * 100, lang),
            "total": cash(line["total"], currency, lang) if money else None,
            "total_value": line["total"] if money else None,
            "of_total": pct(Decimal(share["share_of_total"]) * 100, lang) if money and share["share_of_total"]
            else None,
            "of_kwh": pct(Decimal(share["share_of_kwh"]) * 100, lang) if share["share_of_kwh"] else None,
            "bill_total": cash(share["bill_total"], currency, lang) if money else None,
            "bill_kwh": q(share["bill_kwh"], "kWh", lang)}


def _sec(sec: dict[str, Any], lang: str) -> dict[str, Any]:
    unit = sec["unit"] or "-"
    days = []
    for d in sec["days"]:
        if d["output"] is None:
            continue
        left = [f"{i18n.text('status_' + s, lang)} {d[f'{s}_intervals']}" for s in ("estimated", "missing", "pending")
                if d[f"{s}_intervals"]]
        days.append({**d, "day": d["day"].isoformat(), "kwh_text": q(d["kwh"], "kWh", lang),
                     "output_text": i18n.num(d["output"], lang, 3),
                     "sec_text": q(None) if d["sec"] is None else i18n.num(d["sec"], lang, 4),
                     "left_out": i18n.text("cc_excluded", lang, what=", ".join(left)) if left else None})
    base = sec["baseline"]
    m = sec["month"]
    return {"unit": unit, "line": sec["line"], "days": days, "month": m,
            "month_sec": q(None) if m["sec"] is None else i18n.num(m["sec"], lang, 4),
            "valid": base["valid"], "why": reason(base["reason"], lang),
            "r2": q(base["r2"], "pf", lang) if base["r2"] is not None else q(None),
            "cv": pct(base["cv_rmse"] * 100, lang) if base["cv_rmse"] is not None else q(None),
            "chart": {"traces": [{"type": "bar", "x": [d["day"] for d in days],
                                  "y": [d["sec"] for d in days], "name": i18n.text("ep_sec", lang),
                                  "customdata": [f"{d['sec_text']} kWh/{unit}" for d in days],
                                  "hovertemplate": "%{customdata}<extra>%{fullData.name}</extra>",
                                  "marker": {"color": "#14345a"}}],
                      "layout": {"margin": {"t": 20, "r": 20}, "xaxis": {"type": "category"},
                                 "yaxis": {"title": {"text": f"kWh/{unit}"}, "rangemode": "tozero"}}}}


def _budget(b: dict[str, Any] | None, lang: str) -> dict[str, Any] | None:
    if b is None:
        return None
    currency = b["currency"]
    basis = None
    if b["basis"] == "projection":
        basis = i18n.text("cc_basis_projection", lang, account=cash(b["account_projection"], currency, lang),
                          share=pct(Decimal(b["share"]) * 100, lang))
    elif b["basis"] == "bill":
        basis = i18n.text("cc_basis_bill", lang)
    return {**b, "amount_text": cash(b["amount"], currency, lang) if b["amount"] else None,
            "projected_text": cash(b["projected"], currency, lang), "basis_text": basis,
            "why_text": i18n.text(_WHY[b["why"]], lang) if b["why"] in _WHY else None}


def page_view(view: dict[str, Any], lang: str, money: bool) -> dict[str, Any]:
    """The use case's view arranged for the page: texts in `lang`, the charts' data."""
    curve = view["curve"]
    return {**view, "chart": _curve_chart(curve, lang), "counts": curve["counts"],
            "curve_kwh": q(curve["kwh"], "kWh", lang), "month_kwh": q(view["month_energy"]["kwh"], "kWh", lang),
            "missing": [{"centre": m["cost_centre"], "meter": m["meter"], "status": m["status"], "n": m["intervals"],
                         "first": str(m["first"]), "last": str(m["last"])} for m in curve["missing_inputs"]],
            "share_view": _share(view["share"], lang, money), "sec_view": _sec(view["sec"], lang),
            "budget_view": _budget(view["budget"], lang)}


@router.get("/portal/c/{customer_id}/costs/{code}", dependencies=[needs(Capability.METERED_DATA)])
def cost_centre_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, p: User,
                     code: Annotated[str, Path(pattern=CODE)],
                     month: Annotated[str | None, Query(max_length=7)] = None,
                     range_: Annotated[Literal["day", "week", "month"], Query(alias="range")] = "month",
                     day: Annotated[str | None, Query(alias="date", max_length=10)] = None) -> HTMLResponse:
    """One cost centre: curve, month bill share, SEC per day and month, baseline, budget (money) against projection."""
    tz = ZoneInfo(customer_config(gw, customer_id).timezone)
    first = parse_month(month, tz)
    shown = parse_day(day, tz) if day else None
    lang = _lang(request, p, gw)
    money = allowed(p.role, Capability.MONEY)
    with gw.db() as s:
        view = CostCentreView(v, s).view(customer_id, code, first, range_, shown, money)
    page = page_view(view, lang, money)
    curve_first: date = view["curve"]["first"]
    step = {"day": timedelta(days=1), "week": timedelta(days=7)}.get(range_)
    return _render(request, gw, "cost_centre.html.j2", p, page="costs", cc=page, money=money, code=code,
                   month=f"{first:%Y-%m}", range=range_, date=curve_first.isoformat(),
                   prev_month=f"{(first - timedelta(days=1)).replace(day=1):%Y-%m}",
                   next_month=f"{next_month(first):%Y-%m}",
                   prev_date=(curve_first - step).isoformat() if step else None,
                   next_date=(curve_first + step).isoformat() if step else None, **_nav(gw, customer_id))


__all__ = ["page_view", "router"]
