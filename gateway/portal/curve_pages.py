"""The portal's curve ranges (week, month, year), the live "kW now" page and its JSON, and the month view's extras.

Every figure comes from the use cases (`gateway.usecases.figures`): the range curves from `UseCases.series`, the
month's chart and comparison from `UseCases.month_view`, a site's energy so far today from `UseCases.series`; this
module only arranges them and writes them with `gateway.portal.units`. Nothing is filled: a bucket keeps its status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_timedelta
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from collectors.reading import ACTIVE_POWER_KW, Quality
from crm_bridge.tariffs.model import next_month
from gateway.api.deps import UseCasesDep
from gateway.api.roles import Capability, needs
from gateway.api.scope import AccessDep, CustomerId, GatewayDep
from gateway.portal import User, _lang, _nav, _render, i18n
from gateway.portal.charts import daily_chart, interval_chart, status_of
from gateway.portal.units import LOCALES, cash, change, q
from gateway.runtime import Gateway
from gateway.usecases import BeforeTariff, NoContract, NoData, UseCaseError, parse_day
from gateway.usecases.figures import MAX_SERIES_DAYS, TODAY_TTL_S, UseCases, customer_config

router = APIRouter(include_in_schema=False)
Range = Literal["day", "week", "month", "year"]
REFRESH_S = 10  # the live page asks again this often
STALE_MIN_S = 30.0  # a power reading older than 3 polls + 5 s, and at least this, is stale


def chart_labels(lang: str) -> dict[str, str]:
    """The charts' words in `lang` (legend entries and hover counts)."""
    t = i18n.text
    return {
        "measured": t("status_measured", lang), "estimated": t("status_estimated", lang),
        "missing": t("status_missing", lang), "pending": t("status_pending", lang), "actual": t("actual", lang),
        "days_measured": t("cv_days_measured", lang), "days_estimated": t("cv_days_estimated", lang),
        "days_missing": t("cv_days_missing", lang), "days_pending": t("cv_days_pending", lang),
        "daily_peak": t("cv_daily_peak", lang), "mean_kw": t("cv_mean_kw", lang), "max_kw": t("cv_max_kw", lang),
        "incomplete": t("cv_incomplete", lang),
    }


# -- curve ranges ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """A range's local days [first, last], the days before and after it, and how its curve is bucketed."""

    first: date
    last: date
    prev: date
    next: date
    freq: Literal["15min", "1h", "1d"]


def span_of(kind: Range, d: date) -> Span:
    """Week: Monday to Sunday around `d`, 15-min; month: its calendar month, hourly; year: its year, by day."""
    if kind == "week":
        first = d - timedelta(days=d.weekday())
        return Span(first, first + timedelta(days=6), first - timedelta(days=7), first + timedelta(days=7), "15min")
    if kind == "month":
        first = d.replace(day=1)
        return Span(first, next_month(first) - timedelta(days=1), (first - timedelta(days=1)).replace(day=1),
                    next_month(first), "1h")
    first = d.replace(month=1, day=1)
    return Span(first, first.replace(month=12, day=31), first.replace(year=first.year - 1),
                first.replace(year=first.year + 1), "1d")


def series_rows(v: UseCases, scope: Literal["customer", "site"], ident: str, first: date, last: date,
                freq: Literal["15min", "1h", "1d"]) -> list[dict[str, Any]]:
    """UseCases.series over [first, last], in pieces of at most MAX_SERIES_DAYS days (a year is four).

    Each piece is kept in the use cases' cache as they keep day curves: an hour once its last day is well over
    (it no longer changes), TODAY_TTL_S while it is not, so many readers of one range cost one store read.
    """
    rows: list[dict[str, Any]] = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=MAX_SERIES_DAYS - 1))
        tz = ZoneInfo(customer_config(v.gw, ident).timezone if scope == "customer"
                      else customer_config(v.gw, v.gw.directory.sites[ident].customer).timezone)
        over = datetime.combine(end + timedelta(days=1), datetime.min.time(), tz) < datetime.now(tz) - timedelta(
            minutes=20)
        rows += v.cache.get(("portal-series", scope, ident, start, end, freq), 3600.0 if over else TODAY_TTL_S,
                            partial(_series, v, scope, ident, start, end, freq))
        start = end + timedelta(days=1)
    return rows


def _series(v: UseCases, scope: Literal["customer", "site"], ident: str, first: date, last: date,
            freq: Literal["15min", "1h", "1d"]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = v.series(scope, ident, first, last, freq)["intervals"]
    return rows


def _as_day(row: dict[str, Any]) -> dict[str, Any]:
    """A day of UseCases.series at 1d as the month view's daily row (its kWh and its highest 15-min demand)."""
    return {"day": row["start"][:10], "kwh": row["kwh"], "peak_kw": row["demand_max_kw"],
            **{f"{s}_intervals": row.get(f"{s}_intervals", 0) for s in ("measured", "estimated", "missing", "pending")}}


def range_view(v: UseCases, customer: str, kind: Range, d: date, lang: str) -> dict[str, Any]:
    """The page's data for a week, month or year around `d`: the chart, the interval counts, the navigation."""
    span = span_of(kind, d)
    rows = series_rows(v, "customer", customer, span.first, span.last, span.freq)
    labels = chart_labels(lang)
    if span.freq == "1d":
        chart = daily_chart([_as_day(r) for r in rows], labels, lang)
    else:
        chart = interval_chart(rows, 15 if span.freq == "15min" else 60, labels, lang)
    counts = {s: sum(int(r.get(f"{s}_intervals", 0)) for r in rows) for s in ("measured", "estimated", "missing",
                                                                                "pending")}
    return {"range": kind, "first": span.first.isoformat(), "last": span.last.isoformat(),
            "prev": span.prev.isoformat(), "next": span.next.isoformat(), "chart": chart, "counts": counts,
            "buckets": len(rows), "freq": span.freq}


@router.get("/portal/c/{customer_id}/curve", dependencies=[needs(Capability.METERED_DATA)])
def curve_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, p: User,
               range_: Annotated[Range, Query(alias="range")] = "week",
               day: Annotated[str | None, Query(alias="date", max_length=10)] = None) -> Response:
    """Week (15-min), month (hourly mean and max) or year (daily energy and peak); `range=day` is the day page."""
    tz = ZoneInfo(customer_config(gw, customer_id).timezone)
    d = parse_day(day, tz)
    if range_ == "day":
        return RedirectResponse(f"/portal/c/{customer_id}/day?date={d.isoformat()}", status_code=303)
    lang = _lang(request, p, gw)
    view = range_view(v, customer_id, range_, d, lang)
    return _render(request, gw, "curve.html.j2", p, page="day", view=view, day=d.isoformat(),
                   **_nav(gw, customer_id))


# -- live "kW now" -------------------------------------------------------------------------------------------------

def stale_after_s(gw: Gateway, meter: str) -> float:
    """How old a meter's power reading may be and still be "now": 3 polls + 5 s (as the API's live values), >= 30 s."""
    return max(STALE_MIN_S, 3 * gw.query.topology.poll_s(meter) + 5)


def _ago(age_s: float, lang: str) -> str:
    return i18n.text("cv_ago", lang, d=format_timedelta(timedelta(seconds=max(age_s, 0.0)), granularity="second",
                                                          threshold=1.5, locale=LOCALES[lang]))


def live_sites(gw: Gateway, v: UseCases, customer: str, sites: list[str], lang: str,
               now_ns: int | None = None) -> dict[str, Any]:
    """The newest power reading of each site (the sum of its meters'), its age and status, and its energy today.

    A site sums its billing meters, or its sub-meters when it has none (gateway.query.Topology.meters_of).
    Its status: `live`, `stale` (its oldest meter reading is older than the meter's limit), `bad` (a meter's
    newest reading is not good) or `none` (a meter has no power reading at all: no kW is shown, never a part sum).
    Today's energy is UseCases.series of the site for the local day so far, with the intervals it is still missing.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    tz = ZoneInfo(customer_config(gw, customer).timezone)
    today = datetime.fromtimestamp(now_ns / 1e9, UTC).astimezone(tz).date()
    out = []
    for site in sites:
        meters = gw.query.topology.meters_of("site", site)
        devices = {gw.directory.meters[m].device: m for m in meters}
        latest = {x.device: x for x in gw.store.latest(list(devices)) if x.point == ACTIVE_POWER_KW}
        kw: float | None = 0.0
        age = 0.0
        status = "live"
        for device, meter in devices.items():
            x = latest.get(device)
            if x is None or x.value is None:
                kw, status = None, "none" if x is None else "bad"
                break
            if kw is not None:
                kw += float(x.value)
            meter_age = (now_ns - x.source_ts) / 1e9
            age = max(age, meter_age)
            if x.quality != Quality.GOOD:
                status = "bad"
            elif meter_age > stale_after_s(gw, meter) and status == "live":
                status = "stale"
        if not devices:
            kw, status = None, "none"
        day = series_rows(v, "site", site, today, today, "1d")
        row = day[0] if day else {}
        name = gw.directory.sites[site].name or site
        out.append({
            "site": site, "name": name, "kw": kw, "kw_text": q(kw, "kW", lang),
            "age_s": None if kw is None else round(age, 1), "age_text": "" if kw is None else _ago(age, lang),
            "status": status, "status_text": _live_status(status, lang),
            "today_kwh": row.get("kwh"), "today_kwh_text": q(row.get("kwh"), "kWh", lang),
            "today_status": status_of(row) if row else "missing",
            "today_missing": int(row.get("missing_intervals", 0)),
            "today_note": (i18n.text("cv_today_missing", lang, n=row.get("missing_intervals", 0))
                           if row.get("missing_intervals") else ""),
        })
    return {"customer": customer, "date": today.isoformat(), "refresh_s": REFRESH_S,
            "at": datetime.fromtimestamp(now_ns / 1e9, UTC).isoformat(), "sites": out}


def _live_status(status: str, lang: str) -> str:
    words = {"live": i18n.text("cv_live_live", lang), "stale": i18n.text("cv_live_stale", lang),
             "bad": i18n.text("cv_live_bad", lang), "none": i18n.text("cv_live_none", lang)}
    return words[status]


def _visible_sites(gw: Gateway, access: Any, customer: str) -> list[str]:
    return [s for s in gw.directory.sites_of(customer) if access.sees_site(gw, s)]


@router.get("/portal/c/{customer_id}/live", dependencies=[needs(Capability.METERED_DATA)])
def live_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, access: AccessDep,
              p: User) -> HTMLResponse:
    """Each site's kW now; static/portal.js asks live.json again every REFRESH_S seconds and rewrites the rows."""
    lang = _lang(request, p, gw)
    live = live_sites(gw, v, customer_id, _visible_sites(gw, access, customer_id), lang)
    return _render(request, gw, "live.html.j2", p, page="live", live=live, **_nav(gw, customer_id))


@router.get("/portal/c/{customer_id}/live.json", dependencies=[needs(Capability.METERED_DATA)])
def live_json(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, access: AccessDep,
              p: User) -> JSONResponse:
    """The live page's data (same scope as the page: another customer's id is a 404); read-only, never cached."""
    lang = _lang(request, p, gw)
    live = live_sites(gw, v, customer_id, _visible_sites(gw, access, customer_id), lang)
    return JSONResponse(live, headers={"Cache-Control": "no-store"})


# -- the month view's chart, total and comparison -----------------------------------------------------------------

def _why(exc: UseCaseError) -> str:
    """The message key that says why a month has no figures to compare."""
    if isinstance(exc, BeforeTariff):
        return "cv_cmp_before_tariff"
    if isinstance(exc, NoContract):
        return "no_contract"
    return "cv_no_data"


def _other(v: UseCases, customer: str, month: date) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return v.month_view(customer, month), None
    except NoData:
        return None, "cv_no_data"
    except UseCaseError as exc:
        return None, _why(exc)


def comparison(v: UseCases, customer: str, first: date, view: dict[str, Any], money: bool,
               lang: str) -> list[dict[str, Any]]:
    """The month shown against the month before and the same month last year: energy, peak and (with money) the total.

    Each with the other month's figure, the signed change and the % change; a month without data says so (its
    figures are never 0), a month with missing or pending intervals is marked incomplete.
    """
    others = (("prev", (first - timedelta(days=1)).replace(day=1)), ("last_year", first.replace(year=first.year - 1)))
    out = []
    for key, month in others:
        other, why = _other(v, customer, month)
        rows = []
        metrics: list[tuple[str, str, str | None]] = [("energy", "kwh", None), ("peak_demand", "peak_kw", None)]
        if money:
            metrics.append(("total", "total", view.get("currency")))
        for label, field, currency in metrics:
            now_value = view.get(field)
            then = None if other is None else other.get(field)
            if currency is not None:
                then_currency = None if other is None else other.get("currency")
                same = then_currency == currency
                diff = change(now_value, then if same else None, "", lang, currency)
                now_text, then_text = cash(now_value, currency, lang), cash(then, then_currency, lang)
            else:
                unit = "kWh" if field == "kwh" else "kW"
                diff = change(now_value, then, unit, lang)
                now_text, then_text = q(now_value, unit, lang), q(then, unit, lang)
            rows.append({"metric": label, "now": now_text, "then": then_text if then is not None else None,
                         "abs": diff["abs"], "pct": diff["pct"],
                         "why": why if other is None else ("cv_no_total" if then is None else None)})
        out.append({"key": key, "month": month.strftime("%Y-%m"), "found": other is not None, "why": why,
                    "complete": bool(other and other.get("complete")), "rows": rows})
    return out


def month_extras(v: UseCases, customer: str, first: date, view: dict[str, Any] | None, lang: str,
                 money: bool) -> dict[str, Any]:
    """What the month page shows beyond the month view's tables: the total, the daily chart, the comparison.

    `money`: whether the reader may see money (the total and the bill rows of the comparison).
    """
    if view is None:
        return {"daily_chart": None, "comparison": None, "total_text": None, "total_why": None}
    total_why = None
    if money and view.get("total") is None:
        # No bill without a contract on a tariff: say so instead of a total.
        total_why = "cv_no_bill"
    return {"daily_chart": daily_chart(view["daily"], chart_labels(lang), lang),
            "comparison": comparison(v, customer, first, view, money, lang),
            "total_text": cash(view.get("total"), view.get("currency"), lang) if money else None,
            "total_why": total_why}


__all__ = ["comparison", "live_sites", "month_extras", "range_view", "router", "span_of"]
