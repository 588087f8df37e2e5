"""HTML and PDF of the reports: one Jinja template per report, static SVG charts, WeasyPrint for the PDF.

The HTML is self-contained and script-free (charts are inline SVG, no web fonts), so it is small and opens offline;
the PDF is WeasyPrint's rendering of the same HTML, with the Noto CJK fonts the system has (fonts-noto-cjk)
embedded. No network is touched: any URL a document might name is refused.
"""

from __future__ import annotations

import threading
from datetime import date
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from reports.charts import Series, bar_chart, line_chart
from reports.i18n import Texts
from reports.i18n import install as install_texts
from reports.model import CustomerMonthReport, DailyBrief, PortfolioReport, Report

Format = str  # "html" | "pdf" | "xlsx"
# A month's kWh this far from the month before's is named in the portfolio's largest changes: a possible stoppage
# (down) or growth (up).
CHANGE_WORTH_NAMING = 0.2
FORMATS = ("html", "pdf", "xlsx")


class RenderError(Exception):
    """A report could not be written in the format asked for."""


@cache
def _env() -> jinja2.Environment:
    """The reports' templates; texts through Jinja's i18n extension: `_(key, name=value)` in the report's language."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.i18n"])
    install_texts(env)
    return env


def texts(report: Report) -> Texts:
    currency = report.currency
    return Texts(report.lang, ZoneInfo(report.timezone), currency)


def evidence_renderer(f: Texts) -> Any:
    def render(ev: dict[str, Any]) -> str:
        """The evidence of an advice item as one sentence (data, period, intervals used and missing)."""
        start, end = ev.get("period_start"), ev.get("period_end")
        return f.t("evidence_text", data=ev.get("data", ""), start=f.when(_dt(start)), end=f.when(_dt(end)),
                   intervals=f.number(ev.get("intervals")), missing=f.number(ev.get("missing_intervals")))
    return render


def _dt(value: Any) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _compare(x: CustomerMonthReport, f: Texts) -> list[dict[str, Any]]:
    """The comparison table's rows: this month, the month before, the same month last year, change vs before."""
    months = [x.month, x.before, x.last_year]

    def row(label: str, get: Any, show: Any) -> dict[str, Any]:
        vals = [get(m) if m is not None else None for m in months]
        change = (vals[0] / vals[1] - 1) if vals[0] is not None and vals[1] else None
        return {"label": label, "cells": [show(v) for v in vals], "change": f.signed_percent(change)}

    rows = [row(f.t("energy_kwh"), lambda m: m.usage.energy_kwh, f.number),
            row(f.t("peak_kw"), lambda m: m.usage.peak_kw, f.number),
            row(f.t("load_factor"), lambda m: m.usage.load_factor, f.percent),
            row(f.t("pf"), lambda m: m.usage.pf, lambda v: f.number(v, 2))]
    if x.money:
        rows.append(row(f.t("total_money", currency=x.currency),
                        lambda m: m.bill.total if m.bill is not None else None, f.money))
    return rows


def _customer_month(x: CustomerMonthReport, f: Texts) -> dict[str, Any]:
    days = x.month.usage.days
    overview = bar_chart(f.t("overview"), f.t("kwh"), [str(d.day.day) for d in days], [d.kwh for d in days],
                         faint=[bool(d.missing or d.estimated) for d in days], fmt_tick=f.number)
    peak_chart: Markup | None = None
    peak_date: date | None = None
    if x.peak_day is not None:
        pts = x.peak_day["points"]
        peak_date = date.fromisoformat(x.peak_day["date"])
        series = [Series(f.t("actual"), [p["actual_kw"] for p in pts])]
        if any(p["forecast_kw"] is not None for p in pts):
            series.append(Series(f.t("forecast"), [p["forecast_kw"] for p in pts], dashed=True))
        peak_chart = line_chart(f.t("peak_day"), f.t("kw"), [p["start"][11:16] for p in pts], series,
                                shade=[p["band"] in ("peak", "critical_peak") for p in pts], fmt_tick=f.number)
    return {"compare": _compare(x, f), "overview": overview, "peak_chart": peak_chart, "peak_date": peak_date,
            "evidence": evidence_renderer(f)}


def _share(a: float | None, b: float | None) -> float | None:
    return a / b - 1 if a is not None and b else None


def _brief(x: DailyBrief, f: Texts) -> dict[str, Any]:
    pts = x.curve["points"]
    series = [Series(f.t("actual"), [p["actual_kw"] for p in pts])]
    if any(p["forecast_kw"] is not None for p in pts):
        series.append(Series(f.t("forecast"), [p["forecast_kw"] for p in pts], dashed=True))
    series.append(Series(f.t("last_week"), [p["last_week_kw"] for p in pts]))
    chart = line_chart(f.day(x.day), f.t("kw"), [p["start"][11:16] for p in pts], series,
                       shade=[p["band"] in ("peak", "critical_peak") for p in pts], fmt_tick=f.number)
    s = x.curve["summary"]
    actual = x.forecast.actual_kwh if x.forecast else None
    return {"chart": chart, "peak_at": _dt(s["peak_at"]),
            "vs_forecast": _share(actual, x.forecast.forecast_kwh if x.forecast else None),
            "vs_last_week": _share(s["kwh"], x.last_week["kwh"] if x.last_week else None)}


def _portfolio(x: PortfolioReport, f: Texts) -> dict[str, Any]:
    last = [r.months[-1] for r in x.rows]
    totals = {"kwh": sum(m.usage.energy_kwh for m in last if m is not None),
              "money": sum(m.bill.total for m in last if m is not None and m.bill is not None),
              "advice": sum(r.open_advice_per_month or 0.0 for r in x.rows),
              "alerts": sum(r.open_alerts for r in x.rows), "requests": sum(r.open_requests for r in x.rows)}
    per_month: list[float | None] = [
        sum(m.usage.energy_kwh for m in (r.months[i] for r in x.rows) if m is not None)
        for i in range(len(x.month_firsts))]
    chart = bar_chart(f.t("trends"), f.t("kwh"), [f.month(m) for m in x.month_firsts], per_month, fmt_tick=f.number)
    changes = sorted((r for r in x.rows if r.change is not None and abs(r.change) >= CHANGE_WORTH_NAMING),
                     key=lambda r: -abs(r.change or 0.0))[:10]
    return {"totals": totals, "trend_chart": chart, "changes": changes, "change_worth_naming": CHANGE_WORTH_NAMING}


def render_html(report: Report) -> str:
    """The report as one self-contained, script-free HTML document in the report's language."""
    f = texts(report)
    if isinstance(report, CustomerMonthReport):
        name, extra = "customer_month.html.j2", _customer_month(report, f)
    elif isinstance(report, DailyBrief):
        name, extra = "daily_brief.html.j2", _brief(report, f)
    elif isinstance(report, PortfolioReport):
        name, extra = "portfolio.html.j2", _portfolio(report, f)
    else:
        raise RenderError(f"no template for {type(report).__name__}")
    return _env().get_template(name).render(x=report, f=f, t=f.t, **extra)


def _no_network(url: str) -> dict[str, Any]:
    raise RenderError(f"a report may not load {url!r}: reports are self-contained")


_fonts = threading.local()


def _font_config() -> Any:
    """WeasyPrint's font configuration, one per thread and kept across renders.

    Made afresh for each document (WeasyPrint's default) it loads Pango's font map and the Noto CJK faces again for
    every report; kept, a batch worker's later reports find them ready. Per thread, since a Pango font map is not
    shared between threads (the API renders in a thread pool).
    """
    config = getattr(_fonts, "config", None)
    if config is None:
        from weasyprint.text.fonts import FontConfiguration

        config = _fonts.config = FontConfiguration()
    return config


def render_pdf(report: Report) -> bytes:
    """The report's HTML rendered by WeasyPrint; fonts come from the system (Noto CJK), nothing is fetched."""
    import weasyprint

    pdf = weasyprint.HTML(string=render_html(report), url_fetcher=_no_network).write_pdf(font_config=_font_config())
    if pdf is None:
        raise RenderError("WeasyPrint returned no PDF")
    return bytes(pdf)


def render(report: Report, fmt: Format) -> bytes:
    """The report as `html`, `pdf` or `xlsx` bytes."""
    if fmt == "html":
        return render_html(report).encode("utf-8")
    if fmt == "pdf":
        return render_pdf(report)
    if fmt == "xlsx":
        from reports.workbook import render_xlsx

        return render_xlsx(report)
    raise RenderError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")


MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
