"""XLSX of the reports: typed cells with number formats, Excel dates, headers in the reader's language.

Dates are on the customer's clock, header rows frozen, columns sized to their content, and estimated, missing and
pending rows shaded and named.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from babel.numbers import get_currency_symbol
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reports.i18n import Texts
from reports.model import AlertRow, CustomerMonthReport, DailyBrief, Month, PortfolioReport, Report, RequestRow
from reports.render import RenderError, evidence_renderer, texts
from reports.tables import STATUS_FILLS

KWH = "#,##0.000"
KW = "#,##0.0"
PF = "0.00"
PCT = "0.0%"
COUNT = "#,##0"
DATE = "yyyy-mm-dd"
DATETIME = "yyyy-mm-dd hh:mm"
TEXT = "@"


def money_format(currency: str, f: Texts) -> str:
    """Two decimals with the currency's symbol in the reader's locale (¥ in zh, CN¥ in en)."""
    symbol = get_currency_symbol(currency, locale=f.locale).replace('"', "")
    return f'"{symbol}"#,##0.00;-"{symbol}"#,##0.00'


def local(t: datetime | None, f: Texts) -> datetime | None:
    """An aware moment as the customer's wall-clock time: Excel has no zones (the zone is named in the sheet)."""
    if t is None:
        return None
    return t.astimezone(f.tz).replace(tzinfo=None)


class Sheet:
    """One sheet: a bold, frozen header row, typed columns (a number format each) and widths from the content."""

    def __init__(self, wb: Workbook, title: str, headers: Sequence[str], formats: Sequence[str | None],
                 first: bool = False) -> None:
        ws = wb.active if first else wb.create_sheet()
        assert isinstance(ws, Worksheet)
        self.ws, self.formats = ws, list(formats)
        ws.title = title[:31]
        ws.append(list(headers))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws.freeze_panes = "A2"
        self.widths = [min(max(8, _width(h) + 2), 40) for h in headers]

    def row(self, values: Sequence[Any], status: str | None = None, formats: Sequence[str | None] | None = None
            ) -> None:
        self.ws.append([None if isinstance(v, float) and v != v else v for v in values])
        cells = self.ws[self.ws.max_row]
        for i, (cell, fmt) in enumerate(zip(cells, formats or self.formats, strict=False)):
            if fmt:
                cell.number_format = fmt
            if isinstance(cell.value, str):
                self.widths[i] = min(max(self.widths[i], _width(cell.value) + 2), 60)
            elif isinstance(cell.value, datetime):
                self.widths[i] = max(self.widths[i], 17)
            elif isinstance(cell.value, date):
                self.widths[i] = max(self.widths[i], 11)
            elif isinstance(cell.value, int | float):
                self.widths[i] = max(self.widths[i], 14)
        fill = STATUS_FILLS.get(status or "")
        if fill is not None:
            for cell in cells:
                cell.fill = fill

    def finish(self) -> None:
        for i, w in enumerate(self.widths, start=1):
            self.ws.column_dimensions[get_column_letter(i)].width = w


def _width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _day_status(d: Any) -> str:
    return "missing" if d.missing else "estimated" if d.estimated else "pending" if d.pending else "measured"


def _status_word(f: Texts, status: str) -> str:
    return f.t(status) if status in ("measured", "estimated", "missing", "pending") else status


def _summary_rows(x: CustomerMonthReport, f: Texts, money: str) -> list[tuple[str, Any, str | None]]:
    u, b = x.month.usage, x.month.bill
    n = u.intervals
    rows: list[tuple[str, Any, str | None]] = [
        (f.t("customer"), x.name, TEXT), (f.t("period"), f.month(x.month.first), TEXT),
        (f.t("times_in", tz=x.timezone), x.timezone, TEXT),
        (f.t("energy_kwh"), u.energy_kwh, KWH), (f.t("reactive_kvarh"), u.kvarh, KWH), (f.t("pf"), u.pf, PF),
        (f.t("peak_kw"), u.peak_kw, KW), (f.t("peak_at"), local(u.peak_at, f), DATETIME),
        (f.t("load_factor"), u.load_factor, PCT),
        (f.t("measured_intervals"), n.measured, COUNT), (f.t("estimated_intervals"), n.estimated, COUNT),
        (f.t("missing_intervals"), n.missing, COUNT), (f.t("pending_intervals"), n.pending, COUNT),
    ]
    if b is not None:
        rows += [(f.t("energy_charge") + f" ({b.currency})", b.energy_charge, money),
                 (f.t("basic_charge") + f" ({b.currency})", b.basic_charge, money),
                 (f.t("pf_adjustment") + f" ({b.currency})", b.pf_adjustment, money),
                 (f.t("government_funds") + f" ({b.currency})", b.government_funds, money),
                 (f.t("total_money", currency=b.currency), b.total, money)]
    if x.forecast is not None:
        rows += [(f.t("forecast_kwh"), x.forecast.forecast_kwh, KWH)]  # its one accuracy figure: the MAE/bias
    if x.forecast_accuracy is not None and x.forecast_accuracy.mae_kwh is not None:
        a = x.forecast_accuracy
        rows += [(f.t("forecast_mae_kwh"), a.mae_kwh, KWH), (f.t("forecast_bias_kwh"), a.bias_kwh, KWH)]
    return rows


def _bill_sheet(wb: Workbook, x: CustomerMonthReport, f: Texts, money: str) -> None:
    b = x.month.bill
    if b is None:
        return
    s = Sheet(wb, f.t("sheet_bill"), [f.t("item"), f.t("energy_kwh"), f.t("money", currency=b.currency)],
              [TEXT, KWH, money])
    for band, line in b.energy_by_band.items():
        s.row([f.label("band", band), line.kwh, line.money])
    s.row([f.t("energy_charge"), b.energy_kwh, b.energy_charge])
    s.row([f.t("basic_in_force", mode=f.label("mode", b.basic.mode.value)), None, b.basic_charge])
    for mode in ("capacity", "demand", "contract"):
        marks = [f.t("in_force")] * (b.basic.mode.value == mode) + [f.t("cheapest")] * (b.basic.cheapest.value == mode)
        s.row([f"{f.t('basic_charge')}: {f.label('mode', mode)}" + (f" ({', '.join(marks)})" if marks else ""),
               None, getattr(b.basic, mode)])
    s.row([f.t("pf_adjustment") + (f" ({b.pf_adjustment_pct} %)" if b.pf_adjustment_pct is not None else ""), None,
           b.pf_adjustment])
    s.row([f.t("government_funds"), None, b.government_funds])
    s.row([f.t("total"), None, b.total])
    for cell in s.ws[s.ws.max_row]:
        cell.font = Font(bold=True)
    s.finish()


def _compare_sheet(wb: Workbook, x: CustomerMonthReport, f: Texts, money: str) -> None:
    months: list[tuple[str, Month | None]] = [(f.t("this_month"), x.month), (f.t("month_before"), x.before),
                                              (f.t("last_year"), x.last_year)]
    s = Sheet(wb, f.t("comparison")[:31], [f.t("month"), f.t("period"), f.t("energy_kwh"), f.t("peak_kw"),
                                           f.t("load_factor"), f.t("pf"), f.t("total_money", currency=x.currency)],
              [TEXT, TEXT, KWH, KW, PCT, PF, money])
    for label, m in months:
        if m is None:
            s.row([label, f.t("no_data")])
            continue
        s.row([label, f.month(m.first), m.usage.energy_kwh, m.usage.peak_kw, m.usage.load_factor, m.usage.pf,
               m.bill.total if m.bill is not None else None])
    s.finish()


def _days_sheet(wb: Workbook, x: CustomerMonthReport, f: Texts) -> None:
    s = Sheet(wb, f.t("sheet_days"), [f.t("day"), f.t("energy_kwh"), f.t("reactive_kvarh"), f.t("peak_kw"), f.t("pf"),
                                      f.t("measured_intervals"), f.t("estimated_intervals"),
                                      f.t("missing_intervals"), f.t("pending_intervals"), f.t("row_status")],
              [DATE, KWH, KWH, KW, PF, COUNT, COUNT, COUNT, COUNT, TEXT])
    for d in x.month.usage.days:
        status = _day_status(d)
        s.row([d.day, d.kwh, d.kvarh, d.peak_kw, d.pf, d.measured, d.estimated, d.missing, d.pending,
               _status_word(f, status)], status=status)
    s.finish()


def _curve_sheet(wb: Workbook, curve: dict[str, Any], f: Texts) -> None:
    s = Sheet(wb, f.t("sheet_curve"), [f.t("interval_start"), f.t("actual_kw"), f.t("forecast_kw"),
                                       f.t("last_week_kw"), f.t("band"), f.t("row_status")],
              [DATETIME, KW, KW, KW, TEXT, TEXT])
    for p in curve["points"]:
        status = p["status"] or "measured"
        s.row([local(datetime.fromisoformat(p["start"]), f), p["actual_kw"], p["forecast_kw"], p["last_week_kw"],
               f.label("band", p["band"]) if p["band"] else None, _status_word(f, status)], status=status)
    s.finish()


def _alerts_sheet(wb: Workbook, alerts: list[AlertRow], f: Texts) -> None:
    s = Sheet(wb, f.t("sheet_alerts"), [f.t("opened"), f.t("severity"), f.t("status"), f.t("message")],
              [DATETIME, TEXT, TEXT, TEXT])
    for a in alerts:
        s.row([local(a.opened_at, f), f.label("severity", a.severity), f.label("alert", a.status), a.message])
    s.finish()


def _requests_sheet(wb: Workbook, requests: list[RequestRow], f: Texts) -> None:
    s = Sheet(wb, f.t("sheet_requests"), [f.t("request"), f.t("kind"), f.t("category"), f.t("status"),
                                          f.t("created")], [TEXT, TEXT, TEXT, TEXT, DATETIME])
    for r in requests:
        s.row([f"#{r.id} {r.title}", r.kind, r.category, f.label("ticket", r.status), local(r.created_at, f)])
    s.finish()


def _advice_sheet(wb: Workbook, advice: list[dict[str, Any]], f: Texts, money: str) -> None:
    evidence = evidence_renderer(f)
    s = Sheet(wb, f.t("sheet_advice"), [f.t("advice"), f.t("per_month"), f.t("per_year"), f.t("evidence"),
                                        f.t("assumptions")], [TEXT, money, money, TEXT, TEXT])
    for a in advice:
        s.row([a["title"], a["money_per_month"], a["money_per_year"], evidence(a["evidence"]),
               "\n".join(a.get("assumptions") or [])])
    s.finish()


def _customer_month(wb: Workbook, x: CustomerMonthReport, f: Texts) -> None:
    money = money_format(x.currency, f)
    s = Sheet(wb, f.t("sheet_summary"), [f.t("item"), f.t("value")], [TEXT, None], first=True)
    for label, value, fmt in _summary_rows(x, f, money):
        s.row([label, value], formats=[TEXT, fmt])
    s.finish()
    _bill_sheet(wb, x, f, money)
    _compare_sheet(wb, x, f, money)
    _days_sheet(wb, x, f)
    if x.peak_day is not None:
        _curve_sheet(wb, x.peak_day, f)
    if x.advice:
        _advice_sheet(wb, x.advice, f, money)
    _alerts_sheet(wb, x.alerts, f)
    _requests_sheet(wb, x.requests, f)


def _brief(wb: Workbook, x: DailyBrief, f: Texts) -> None:
    sm = x.curve["summary"]
    s = Sheet(wb, f.t("sheet_summary"), [f.t("item"), f.t("value")], [TEXT, None], first=True)
    rows: list[tuple[str, Any, str | None]] = [
        (f.t("customer"), x.name, TEXT), (f.t("day"), x.day, DATE), (f.t("times_in", tz=x.timezone), x.timezone, TEXT),
        (f.t("energy_kwh"), sm["kwh"], KWH), (f.t("peak_kw"), sm["peak_kw"], KW),
        (f.t("peak_at"), local(datetime.fromisoformat(sm["peak_at"]), f) if sm["peak_at"] else None, DATETIME),
        (f.t("load_factor"), sm["load_factor"], PCT),
        (f.t("last_week") + f" ({f.t('kwh')})", x.last_week["kwh"] if x.last_week else None, KWH),
        (f.t("forecast_kwh"), x.forecast.forecast_kwh if x.forecast else None, KWH),
        (f.t("missing_intervals"), sm["missing_intervals"], COUNT),
        (f.t("estimated_intervals"), sm["estimated_intervals"], COUNT)]
    if x.cost is not None:
        rows.append((f.t("day_cost", currency=x.currency), x.cost, money_format(x.currency, f)))
    for label, value, fmt in rows:
        s.row([label, value], formats=[TEXT, fmt])
    s.finish()
    _curve_sheet(wb, x.curve, f)
    _alerts_sheet(wb, x.alerts, f)


def _portfolio(wb: Workbook, x: PortfolioReport, f: Texts) -> None:
    money = money_format(x.currency, f)
    heads = [f.t("customer"), f.t("tier")]
    heads += [f"{f.month(m)} ({f.t('kwh')})" for m in x.month_firsts]
    heads += [f"{f.month(m)} ({x.currency})" for m in x.month_firsts]
    heads += [f.t("change_pct"), f.t("open_advice_money", currency=x.currency), f.t("open_alerts"),
              f.t("open_requests")]
    k = len(x.month_firsts)
    s = Sheet(wb, f.t("sheet_accounts"), heads, [TEXT, TEXT, *[KWH] * k, *[money] * k, PCT, money, COUNT, COUNT],
              first=True)
    for r in x.rows:
        s.row([r.name, r.tier, *[m.usage.energy_kwh if m else None for m in r.months],
               *[m.bill.total if m and m.bill else None for m in r.months], r.change, r.open_advice_per_month,
               r.open_alerts, r.open_requests])
    s.finish()
    t = Sheet(wb, f.t("sheet_tiers"), [f.t("customer"), f.t("tier"), f.t("reason"), f.t("time")],
              [TEXT, TEXT, TEXT, DATETIME])
    for c in x.tier_changes:
        t.row([c.customer, f.t("tier_change_text", old=c.old or "—", new=c.new), c.reason_in(f.lang), local(c.at, f)])
    t.finish()
    if x.desk is not None:
        d = x.desk
        ds = Sheet(wb, f.t("sheet_desk"), [f.t("item"), f.t("value")], [TEXT, None])
        for label, value, fmt in ((f.t("tickets"), d.count, COUNT), (f.t("mean_ack"), d.mean_ack_min, KW),
                                  (f.t("ack_breaches"), d.ack_breaches, COUNT),
                                  (f.t("mean_resolve"), d.mean_resolve_min, KW),
                                  (f.t("resolve_breaches"), d.resolve_breaches, COUNT),
                                  (f.t("satisfaction"), d.mean_satisfaction, PF)):
            ds.row([label, value], formats=[TEXT, fmt])
        ds.finish()


def render_xlsx(report: Report) -> bytes:
    """The report as an XLSX workbook in the report's language."""
    f = texts(report)
    wb = Workbook()
    if isinstance(report, CustomerMonthReport):
        _customer_month(wb, report, f)
    elif isinstance(report, DailyBrief):
        _brief(wb, report, f)
    elif isinstance(report, PortfolioReport):
        _portfolio(wb, report, f)
    else:
        raise RenderError(f"no workbook for {type(report).__name__}")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
