"""The portal's energy-accounting pages: cost centres, energy performance (with the production upload), purchase.

Every figure comes from a use case, called as its API route calls it: the month bill split over cost centres from
`gateway.usecases.allocation.allocation`, SEC, the baseline, CUSUM, CO2 and budgets from
`gateway.usecases.performance.Performance`, next month's purchase view from `gateway.usecases.planning.purchase`.
This module only arranges them, writes them with `gateway.portal.units` and says in the reader's language why a
figure is not there. Money is shown only to roles holding the money capability, as on the API.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse

from crm_bridge.tariffs.model import next_month
from gateway.api.deps import UseCasesDep
from gateway.api.roles import Capability, allowed, needs
from gateway.api.scope import ActorDep, CustomerId, GatewayDep
from gateway.auth import Principal
from gateway.portal import Csrf, User, _lang, _month_reason, _nav, _render, i18n
from gateway.portal.charts import status_of
from gateway.portal.units import HOVER, cash, pct, q
from gateway.runtime import Gateway
from gateway.usecases import BadInput, BeforeTariff, NoContract, UseCaseError, parse_month
from gateway.usecases import allocation as uc_alloc
from gateway.usecases import planning as uc_planning
from gateway.usecases.figures import UseCases, customer_config
from gateway.usecases.performance import Performance, ProductionRejected, month_of, problems_in

router = APIRouter(include_in_schema=False)
MONTH = r"^\d{4}-\d{2}$"
BAR = "#14345a"


def _money(p: Principal) -> bool:
    return allowed(p.role, Capability.MONEY)


def _status(counts: dict[str, Any]) -> str:
    """The worst status a line's intervals hold (measured, estimated, missing, pending)."""
    return status_of({f"{k}_intervals": v for k, v in counts.items()}) if any(counts.values()) else "missing"


def _bar(x: list[str], y: list[float | None], texts: list[str], name: str, unit: str) -> dict[str, Any]:
    """A plain bar chart (one trace, hover text made by units) as static/portal.js draws it."""
    return {"traces": [{"type": "bar", "x": x, "y": y, "name": name, "customdata": texts, "hovertemplate": HOVER,
                        "marker": {"color": BAR}}],
            "layout": {"margin": {"t": 20, "r": 20}, "xaxis": {"type": "category"},
                       "yaxis": {"title": {"text": unit}, "rangemode": "tozero", "tickformat": ",~r"}}}


# -- the reasons the use cases give in English, in the reader's language --------------------------------------------

_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<n>\d+) months with data; the baseline needs at least (?P<k>\d+)$"), "ep_why_few_months"),
    (re.compile(r"^output does not vary"), "ep_why_flat_output"),
    (re.compile(r"^the drivers (?P<drivers>.+) move together"), "ep_why_collinear"),
    (re.compile(r"^R\^2 (?P<r2>[\d.]+) below (?P<min>[\d.]+)"), "ep_why_low_r2"),
    (re.compile(r"^CV\(RMSE\) (?P<cv>[\d.]+%) above (?P<max>[\d.]+%)"), "ep_why_high_cv"),
    (re.compile(r"^no adequate baseline"), "ep_why_no_baseline"),
    (re.compile(r"^(?P<n>\d+) complete month\(s\) after (?P<m>[\d-]+); at least (?P<k>\d+)"), "ep_why_few_after"),
    (re.compile(r"^(?P<n>\d+) complete month\(s\) before (?P<m>[\d-]+); at least (?P<k>\d+)"), "ep_why_few_before"),
    (re.compile(r"^the plan covers (?P<n>\d+) days of (?P<m>[\d-]+)"), "ep_why_plan_short"),
    (re.compile(r"^the plan is in (?P<plan>.+), the actuals in (?P<actual>.+): not comparable"), "ep_why_plan_unit"),
    (re.compile(r"^the baseline uses degree days"), "ep_why_degree_days"),
    (re.compile(r"^the customer's grid region is not set"), "ep_why_no_region"),
    (re.compile(r"^no emission factor for region (?P<region>.+) in or before (?P<year>\d+)$"), "ep_why_no_factor"),
    (re.compile(r"^the factor of (?P<used>\d+), the newest published for (?P<year>\d+)$"), "ep_why_older_factor"),
    (re.compile(r"^bill: the cost centre's line of the (?P<m>[\d-]+) allocation; the month has missing intervals$"),
     "ep_why_centre_bill_missing"),
    (re.compile(r"^bill: the cost centre's line of the (?P<m>[\d-]+) allocation$"), "ep_why_centre_bill"),
    (re.compile(r"^projection: account projection x share so far (?P<share>[\d.]+) %$"), "ep_why_centre_projection"),
    (re.compile(r"^no cost centre '(?P<code>.+)' in the allocation of (?P<m>[\d-]+)$"), "ep_why_centre_absent"),
    (re.compile(r"^no month-to-date allocation for cost centre '(?P<code>.+)' yet$"), "ep_why_centre_no_mtd"),
    (re.compile(r"^the bill is in (?P<bill>\w+), the budget in (?P<budget>\w+)"), "ep_why_currency"),
    (re.compile(r"^the month has not begun"), "ep_why_not_begun"),
    (re.compile(r"^the month has just begun"), "ep_why_just_begun"),
    (re.compile(r"^the month has missing intervals"), "ep_why_month_missing"),
    (re.compile(r"^no contract on file"), "no_contract"),
    (re.compile(r"^to: (?P<m>[\d-]+) has not begun"), "ep_why_to_future"),
    (re.compile(r"^adequate when R\^2 >= (?P<r2>[\d.]+) .*CV\(RMSE\) <= (?P<cv>[\d.]+%) .*over >= (?P<n>\d+) "),
     "ep_criteria"),
]


def reason(text: str | None, lang: str) -> str | None:
    """A reason the use cases wrote in English, said in `lang`; an unforeseen one keeps its words, marked as such."""
    if not text:
        return None
    for pattern, key in _REASONS:
        m = pattern.match(text)
        if m:
            return i18n.text(key, lang, **m.groupdict())
    return i18n.text("ep_why_other", lang, text=text)


def _excluded(row: dict[str, Any], lang: str) -> str | None:
    """Why a month is out of the model, from the month's own counts (the same order as the use case's checks)."""
    if row["in_model"]:
        return None
    if row["kwh"] is None:
        return i18n.text("ep_out_no_energy", lang)
    if row["pending_intervals"]:
        return i18n.text("ep_out_pending", lang, n=row["pending_intervals"])
    if row["missing_intervals"]:
        return i18n.text("ep_out_missing", lang, n=row["missing_intervals"])
    return i18n.text("ep_out_production", lang, n=row["production_days"], days=row["days"])


# -- cost centres ----------------------------------------------------------------------------------------------------

def costs_view(v: UseCases, customer: str, first: date, lang: str, money: bool) -> dict[str, Any]:
    """The month's allocation as the page shows it: rows per cost centre and the residual, the totals, a chart."""
    with v.gw.db() as s:
        centres = uc_alloc.cost_centres(s, customer)
    if not centres:
        return {"centres": 0, "alloc": None, "reason": None}
    try:
        a = uc_alloc.allocation(v, customer, first)
    except UseCaseError as exc:
        today = datetime.now(ZoneInfo(customer_config(v.gw, customer).timezone)).date()
        # A formula naming a meter no longer the customer's, or a rule the bill cannot be split by: BadInput.
        why = {"key": "ep_alloc_failed"} if isinstance(exc, BadInput) else _month_reason(exc, first, today)
        return {"centres": len(centres), "alloc": None, "reason": why}
    bands = sorted({m.element.removeprefix("energy_") for line in a.lines for m in line.money
                    if m.element.startswith("energy_")}, key=lambda b: ("critical_peak", "peak", "flat",
                                                                           "valley").index(b)
                   if b in ("critical_peak", "peak", "flat", "valley") else 9)
    rows: list[dict[str, Any]] = []
    for line in a.lines:
        by = {m.element: m for m in line.money}
        energy = sum((m.amount for m in line.money if m.element.startswith("energy_")), Decimal(0))
        counts = line.intervals.model_dump()
        share = (line.total / a.total * 100) if money and a.total else (
            Decimal(repr(line.kwh)) / Decimal(repr(a.bill_kwh)) * 100 if a.bill_kwh else None)
        rows.append({
            "code": line.code, "name": line.name, "kind": line.kind, "residual": line.kind == "residual",
            "formulas": line.formulas, "kwh": q(line.kwh, "kWh", lang),
            "bands": [q(by[f"energy_{b}"].kwh if f"energy_{b}" in by else None, "kWh", lang) for b in bands],
            "energy": cash(energy, a.currency, lang) if money else None,
            "basic": cash(by["basic_charge"].amount if "basic_charge" in by else 0, a.currency, lang)
            if money else None,
            "pf": cash(by["pf_adjustment"].amount if "pf_adjustment" in by else 0, a.currency, lang) if money else None,
            "funds": cash(by["government_funds"].amount if "government_funds" in by else 0, a.currency, lang)
            if money else None,
            "total": cash(line.total, a.currency, lang) if money else None,
            "rule_share": pct(line.share * 100, lang), "share": pct(share, lang), "share_value": share,
            "status": _status(counts), "counts": counts,
        })
    chart = _bar([r["code"] for r in rows], [float(r["share_value"]) if r["share_value"] is not None else None
                                             for r in rows],
                 [f"{r['code']}: {r['share']}" for r in rows], i18n.text("ep_share", lang) if money
                 else i18n.text("ep_share_kwh", lang), "%")
    band_kwh = {b: sum((line_m.kwh or 0.0 for line in a.lines for line_m in line.money
                        if line_m.element == f"energy_{b}"), 0.0) for b in bands}
    return {
        "centres": len(centres), "reason": None, "alloc": a, "rows": rows, "bands": bands, "chart": chart,
        "total": cash(a.total, a.currency, lang) if money else None, "total_value": str(a.total) if money else None,
        "bill_kwh": q(a.bill_kwh, "kWh", lang), "band_totals": [q(band_kwh[b], "kWh", lang) for b in bands],
        "shares": [(code, pct(s * 100, lang)) for code, s in a.shares.items()],
        "missing": [{"centre": m.cost_centre, "meter": m.meter, "status": m.status, "n": m.intervals,
                     "first": m.first.isoformat(), "last": m.last.isoformat()} for m in a.missing],
        "negative": a.negative_residual,
    }


@router.get("/portal/c/{customer_id}/costs", dependencies=[needs(Capability.METERED_DATA)])
def costs_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, p: User,
               month: Annotated[str | None, Query(max_length=7)] = None) -> HTMLResponse:
    """The month bill over the customer's cost centres; money (and the SAP CO export) with the money capability."""
    tz = ZoneInfo(customer_config(gw, customer_id).timezone)
    first = parse_month(month, tz)
    lang = _lang(request, p, gw)
    view = costs_view(v, customer_id, first, lang, _money(p))
    return _render(request, gw, "costs.html.j2", p, page="costs", costs=view, money=_money(p),
                   month=f"{first:%Y-%m}", prev_month=f"{(first - timedelta(days=1)).replace(day=1):%Y-%m}",
                   next_month=f"{next_month(first):%Y-%m}", **_nav(gw, customer_id))


# -- performance -----------------------------------------------------------------------------------------------------

def performance_view(v: UseCases, customer: str, last: date, lang: str, money: bool) -> dict[str, Any]:
    """The use case's performance over the 12 months to `last`, its budgets (money) and the charts."""
    first = last
    for _ in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    with v.gw.db() as s:
        perf = Performance(v, s)
        try:
            result = perf.performance(customer, first, last, money)
        except UseCaseError as exc:
            return {"result": None, "error": reason(str(exc), lang)}
        budgets = perf.budgets(customer)["budgets"] if money else []
    months = result["months"]
    for row in months:
        row["why"] = _excluded(row, lang)
        co2 = row["co2"]
        row["co2_note"] = reason(co2["note"], lang) if co2 else None
    labels = [r["month"] for r in months]
    sec_chart = _bar(labels, [r["sec"] for r in months],
                     [q(None) if r["sec"] is None else f"{i18n.num(r['sec'], lang, 4)} kWh/{result['unit'] or ''}"
                      for r in months], i18n.text("ep_sec", lang), f"kWh/{result['unit'] or '-'}")
    cusum = [r["cusum_savings_kwh"] for r in months]
    cusum_chart = {"traces": [{"type": "scatter", "mode": "lines+markers", "x": labels, "y": cusum,
                               "name": i18n.text("ep_cusum", lang), "connectgaps": False,
                               "customdata": [q(c, "kWh", lang) for c in cusum], "hovertemplate": HOVER,
                               "line": {"color": BAR}}],
                   "layout": {"margin": {"t": 20, "r": 20}, "xaxis": {"type": "category"},
                              "yaxis": {"title": {"text": "kWh"}, "tickformat": ",~r"}}}
    base = result["baseline"]
    names = {"output": i18n.text("ep_driver_output", lang), "hdd": i18n.text("ep_driver_hdd", lang),
             "cdd": i18n.text("ep_driver_cdd", lang)}
    terms = [f"{c:,.4g}" if k == "intercept" else f"{c:+,.4g} × {names[k]}"
             for k, c in base["coefficients"].items() if k == "intercept" or k in names]
    this = f"{last:%Y-%m}"
    advice = [{**a, "why": reason(a["reason"], lang)} for a in (result["advice"] or [])]
    return {"result": result, "error": None, "months": months, "sec_chart": sec_chart, "cusum_chart": cusum_chart,
            "formula": ("kWh = " + " ".join(terms)) if terms else None, "baseline_why": reason(base["reason"], lang),
            "criteria": reason(base["criteria"], lang),
            "budgets": [{**b, "why": reason(b["note"], lang)} for b in budgets if b["month"] == this],
            "next_why": reason(result["next_month"]["note"], lang), "advice": advice}


def _performance(request: Request, gw: Gateway, v: UseCases, p: Principal, customer: str, to: str | None,
                 status: int = 200, **extra: Any) -> HTMLResponse:
    tz = ZoneInfo(customer_config(gw, customer).timezone)
    last = month_of(to, "to") if to else parse_month(None, tz)
    lang = _lang(request, p, gw)
    view = performance_view(v, customer, last, lang, _money(p))
    this = datetime.now(tz).date().replace(day=1)
    return _render(request, gw, "performance.html.j2", p, status=status, page="performance", perf=view,
                   money=_money(p), to=f"{last:%Y-%m}", upload=extra.get("upload"),
                   prev_to=f"{(last - timedelta(days=1)).replace(day=1):%Y-%m}",
                   next_to=f"{next_month(last):%Y-%m}" if last < this else None, **_nav(gw, customer))


@router.get("/portal/c/{customer_id}/performance", dependencies=[needs(Capability.METERED_DATA)])
def performance_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, p: User,
                     to: Annotated[str | None, Query(pattern=MONTH)] = None) -> HTMLResponse:
    """SEC, the ISO 50006 baseline and CUSUM, CO2, the budget (money), advice measured (money), the upload form."""
    return _performance(request, gw, v, p, customer_id, to)


@router.post("/portal/c/{customer_id}/performance/production",
             dependencies=[Csrf, needs(Capability.METERED_DATA)])
def production_upload(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, p: User,
                      actor: ActorDep, file: Annotated[UploadFile, File()],
                      kind: Annotated[Literal["actual", "plan"], Form()] = "actual") -> HTMLResponse:
    """The production file through the same use case as the API: 422 with every bad row, or the days stored."""
    from crm_bridge.services.production_io import MAX_BYTES

    data = file.file.read(MAX_BYTES + 1)
    lang = _lang(request, p, gw)
    name = (file.filename or "")[:200]
    with gw.db() as s:
        try:
            stored = Performance(v, s).upload(actor.username, customer_id, data, kind)
        except ProductionRejected as exc:
            upload = {"ok": False, "file": name, "count": exc.count, "errors": problems_in(exc.errors, lang)}
            return _performance(request, gw, v, p, customer_id, None, status=422, upload=upload)
    upload = {"ok": True, "file": name, "kind": kind, **stored}
    return _performance(request, gw, v, p, customer_id, None, upload=upload)


# -- purchase --------------------------------------------------------------------------------------------------------

@router.get("/portal/c/{customer_id}/purchase", dependencies=[needs(Capability.METERED_DATA)])
def purchase_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, p: User,
                  month: Annotated[str | None, Query(max_length=7)] = None) -> HTMLResponse:
    """Next month's (or `month`'s) forecast energy by TOU band; expected cost low to high with money."""
    tz = ZoneInfo(customer_config(gw, customer_id).timezone)
    first = parse_month(month, tz) if month else None
    lang = _lang(request, p, gw)
    view, why = None, None
    try:
        view = uc_planning.purchase(v, customer_id, first)
    except BadInput as exc:
        why = i18n.text("ep_purchase_month", lang, month=month or "", n=uc_planning.MONTHS_AHEAD) \
            if exc.where == "month" else i18n.text("ep_purchase_none", lang)
    except BeforeTariff as exc:
        why = i18n.text("before_tariff", lang, tariff=exc.tariff_id, date=exc.first_date.isoformat())
    except NoContract:
        why = i18n.text("no_contract", lang)
    except UseCaseError:
        why = i18n.text("ep_purchase_none", lang)
    shown = view.month if view else f"{(first or next_month(datetime.now(tz).date())):%Y-%m}"
    ahead = [next_month(datetime.now(tz).date())]
    while len(ahead) < uc_planning.MONTHS_AHEAD:
        ahead.append(next_month(ahead[-1]))
    return _render(request, gw, "purchase.html.j2", p, page="purchase", view=view, why=why, money=_money(p),
                   month=shown, months=[f"{m:%Y-%m}" for m in ahead], **_nav(gw, customer_id))


__all__ = ["costs_view", "performance_view", "reason", "router"]
