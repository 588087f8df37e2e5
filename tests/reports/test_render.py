"""The customer report, daily brief and portfolio written as PDF, HTML and XLSX from real month bills.

The bills are crm_bridge's `month_bill` of synthetic months (no store needed); the PDF is read back with poppler
(text, fonts, pages as images), the XLSX with openpyxl.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from babel.numbers import format_currency, format_decimal
from openpyxl import load_workbook

from crm_bridge.services import ContractInputs
from crm_bridge.tariffs import load_tariff, month_bill
from forecasting.metrics import ForecastAccuracy
from reports.model import (
    AlertRow,
    CustomerMonthReport,
    DailyBrief,
    DeskFigures,
    ForecastCheck,
    Month,
    PortfolioReport,
    PortfolioRow,
    RequestRow,
    TierChangeRow,
)
from reports.render import render, render_html
from tests.reports.pdf import ink, pdf_fonts, pdf_pages, pdf_text

SH = "Asia/Shanghai"
TARIFF = load_tariff("guangdong-1-10kv")
TERMS = ContractInputs(transformer_kva=4000.0, contract_demand_kw=2500.0, basic_charge_mode="contract",
                       pf_standard=0.9, tariff_id=TARIFF.id, timezone=SH)
LATER = datetime(2027, 1, 1, tzinfo=UTC)


def _month(first: str, scale: float = 1.0, gaps: bool = True) -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp(first, tz=SH), pd.Timestamp(first, tz=SH) + pd.offsets.MonthBegin(1),
                        freq="15min", inclusive="left")
    hour = idx.hour + idx.minute / 60
    kw = scale * (600 + 900 * ((hour >= 8) & (hour < 20)) + 50 * np.sin(np.arange(len(idx)) / 7))
    frame = pd.DataFrame({"kwh": kw / 4, "kvarh": kw / 4 * 0.45}, index=idx)
    frame["status"] = "measured"
    if gaps:
        frame.iloc[100:104, frame.columns.get_loc("status")] = "estimated"
        frame.iloc[500:540, frame.columns.get_loc("status")] = "missing"
        frame.iloc[500:540, [0, 1]] = np.nan
    return frame


def _bill(first: str, scale: float = 1.0):
    return month_bill(_month(first, scale), TERMS, TARIFF, first[:7], tz=SH, now=LATER)


@pytest.fixture(scope="module")
def bills():
    return {"2026-11": _bill("2026-11-01"), "2026-10": _bill("2026-10-01", 0.9), "2025-11": _bill("2025-11-01", 1.1)}


def _peak_day(bill) -> dict:
    day = bill.peak_at.date()
    idx = pd.date_range(pd.Timestamp(day, tz=SH), periods=96, freq="15min")
    points = [{"start": t.isoformat(), "actual_kw": 1000.0 + i, "status": "measured", "forecast_kw": 990.0 + i,
               "last_week_kw": 900.0, "band": "peak" if 10 <= t.hour < 12 else "flat"} for i, t in enumerate(idx)]
    return {"date": day.isoformat(), "points": points,
            "summary": {"kwh": 25_000.0, "peak_kw": 1095.0, "peak_at": idx[95].isoformat(), "load_factor": 0.95,
                        "missing_intervals": 0, "estimated_intervals": 0, "intervals": 96}}


def _report(bills, lang: str, money: bool = True) -> CustomerMonthReport:
    nov, octo, last = (bills[k] for k in ("2026-11", "2026-10", "2025-11"))
    at = datetime(2026, 11, 12, 2, 0, tzinfo=UTC)
    return CustomerMonthReport(
        customer="acme", name="Acme 钢铁" if lang == "zh" else "Acme Steel", lang=lang, timezone=SH,  # type: ignore[arg-type]
        made_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        month=Month(date(2026, 11, 1), nov, nov if money else None),
        before=Month(date(2026, 10, 1), octo, octo if money else None),
        last_year=Month(date(2025, 11, 1), last, last if money else None),
        peak_day=_peak_day(nov), forecast=ForecastCheck(400_000.0, 380_000.0, 2800, 0.93),
        alerts=[AlertRow(at, "warning", "pf_low", "open", "PF 0.86 below 0.90")],
        advice=[{"title": "Move 200 kW of load from peak to valley", "money_per_month": 1234.5,
                 "money_per_year": 14814.0, "currency": "CNY", "assumptions": ["same production next month"],
                 "evidence": {"data": "15-min kWh", "period_start": "2026-11-01T00:00:00+08:00",
                              "period_end": "2026-12-01T00:00:00+08:00", "intervals": 2880,
                              "missing_intervals": 40}}] if money else None,
        requests=[RequestRow(7, "Question about the October bill", "request", "billing", "acknowledged", at)])


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_pdf_holds_the_bill_total_in_the_readers_locale(bills, lang):
    report = _report(bills, lang)
    pdf = render(report, "pdf")
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    bill = bills["2026-11"]
    locale = {"zh": "zh_CN", "en": "en_US"}[lang]
    total = format_currency(round(bill.total, 2), "CNY", locale=locale)
    assert total in text
    assert format_decimal(round(bill.energy_kwh), format="#,##0", locale=locale) in text
    for band, line in bill.energy_by_band.items():
        assert format_currency(round(line.money, 2), "CNY", locale=locale) in text, band
    assert format_currency(round(bill.basic.demand, 2), "CNY", locale=locale) in text, "the other modes compared"
    assert format_currency(round(bills["2026-10"].total, 2), "CNY", locale=locale) in text, "the month before"
    if lang == "zh":
        assert "合计" in text
        assert "功率因数" in text
        assert "Total" not in text
    else:
        assert "Total" in text
        assert "Power factor" in text
        assert not re.search(r"[\u4e00-\u9fff]", text.replace("Acme Steel", "")), "no Chinese in the English report"
    assert "['" not in text, "evidence is shown as text, never a Python list"
    evidence = {"zh": "15-min kWh，2026-11-01 00:00 至", "en": "15-min kWh, 2026-11-01 00:00 to"}[lang]
    assert evidence in text, "the advice's evidence in a sentence"


def test_the_chinese_pdf_embeds_a_cjk_font_and_its_pages_have_ink(bills):
    pdf = render(_report(bills, "zh"), "pdf")
    fonts = pdf_fonts(pdf)
    cjk = [f for f in fonts if "CJK" in f["name"]]
    assert cjk, fonts
    assert all(f["emb"] == "yes" for f in fonts), fonts
    assert all("Sans" in f["name"] for f in fonts), "one sans family throughout, the page numbers too"
    pages = pdf_pages(pdf)
    assert 2 <= len(pages) <= 6, len(pages)
    assert all(ink(p) > 0.01 for p in pages), [ink(p) for p in pages]
    text = pdf_text(pdf)
    assert "千瓦时" in text  # the chart's axis label is text in the PDF
    assert "12:00" in text, "the peak day chart's time axis"


def test_without_money_there_is_no_money(bills):
    text = pdf_text(render(_report(bills, "en", money=False), "pdf"))
    assert "¥" not in text
    assert "CN¥" not in text
    assert "No money in this report" in text
    assert format_decimal(round(bills["2026-11"].energy_kwh), format="#,##0", locale="en_US") in text


def test_the_html_is_small_script_free_and_self_contained(bills):
    for lang in ("zh", "en"):
        html = render_html(_report(bills, lang))
        assert len(html.encode()) < 200_000
        assert "<script" not in html
        assert html.count("<svg") == 2, "overview and peak-day charts, as inline SVG"
        assert not re.search(r'(src|href)="(https?:)?//', html), "nothing is loaded from elsewhere"
    assert '<html lang="zh-CN">' in render_html(_report(bills, "zh"))


def test_the_xlsx_has_formats_dates_and_headers_in_the_readers_language(bills):
    bill = bills["2026-11"]
    for lang, sheet, energy, total, money_fmt in (("zh", "概况", "电量（千瓦时）", "合计（CNY）", "¥"),
                                                   ("en", "Summary", "Energy (kWh)", "Total (CNY)", "CN¥")):
        wb = load_workbook(io.BytesIO(render(_report(bills, lang), "xlsx")))
        ws = wb.worksheets[0]
        assert ws.title == sheet
        assert ws.freeze_panes == "A2"
        rows = {r[0].value: r[1] for r in ws.iter_rows(min_row=2)}
        assert rows[energy].value == pytest.approx(bill.energy_kwh, rel=1e-14)
        assert rows[energy].number_format == "#,##0.000"
        assert rows[total].value == pytest.approx(bill.total, rel=1e-14)
        assert money_fmt in rows[total].number_format
        assert "0.00" in rows[total].number_format
        peak_label = "最大需量时间" if lang == "zh" else "Peak at"
        assert rows[peak_label].value == bill.peak_at.astimezone(ZoneInfo(SH)).replace(tzinfo=None)
        assert rows[peak_label].is_date
        assert rows[peak_label].number_format == "yyyy-mm-dd hh:mm"
        lf = "负荷率" if lang == "zh" else "Load factor"
        assert rows[lf].number_format == "0.0%"
        days = wb.worksheets[3]
        header = [c.value for c in days[1]]
        assert days.freeze_panes == "A2"
        assert days.column_dimensions["A"].width >= 10
        first = days[2]
        assert first[0].is_date
        assert first[0].number_format == "yyyy-mm-dd"
        assert isinstance(first[1].value, float)
        assert first[1].number_format == "#,##0.000"
        status = header.index("数据状态" if lang == "zh" else "Data")
        marks = {r[status].value: r[status].fill.fgColor.rgb for r in days.iter_rows(min_row=2)}
        missing, estimated = ("缺失", "估算") if lang == "zh" else ("Missing", "Estimated")
        assert missing in marks, marks
        assert estimated in marks, marks
        assert marks[missing] != marks[estimated], "estimated and missing rows are shaded apart"


def _brief(lang: str) -> DailyBrief:
    curve = _peak_day(_bill("2026-11-01"))
    return DailyBrief(customer="acme", name="Acme", lang=lang, timezone=SH,  # type: ignore[arg-type]
                      made_at=datetime(2026, 11, 20, tzinfo=UTC), day=date.fromisoformat(curve["date"]), curve=curve,
                      last_week={"kwh": 20_000.0}, forecast=ForecastCheck(25_000.0, 24_000.0, 96, 0.96),
                      cost=18_765.43, currency="CNY", alerts=[])


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_daily_brief_is_one_page_with_its_cost(lang):
    pdf = render(_brief(lang), "pdf")
    assert len(pdf_pages(pdf)) == 1
    text = pdf_text(pdf)
    assert format_currency(18_765.43, "CNY", locale={"zh": "zh_CN", "en": "en_US"}[lang]) in text
    assert "+25.0%" in text, "25,000 kWh against 20,000 the same weekday last week"
    assert ("上周同日" if lang == "zh" else "Same weekday last week") in text


def test_the_portfolio_names_the_largest_changes_and_the_desk(bills):
    months = [Month(date(2026, 10, 1), bills["2026-10"], bills["2026-10"]),
              Month(date(2026, 11, 1), bills["2026-11"], bills["2026-11"])]
    stopped = [months[0], Month(date(2026, 11, 1), _bill("2026-11-01", 0.3), _bill("2026-11-01", 0.3))]
    report = PortfolioReport(
        manager="am-a", manager_name="Manager A", lang="en", timezone=SH, made_at=datetime(2026, 12, 1, tzinfo=UTC),
        month=date(2026, 11, 1), month_firsts=[date(2026, 10, 1), date(2026, 11, 1)],
        rows=[PortfolioRow("acme", "Acme", "A", months, 1000.0, 1, 2),
              PortfolioRow("beta", "Beta", "B", stopped, None, 0, 0)],
        tier_changes=[TierChangeRow("beta", "A", "B", "annual kWh fell", datetime(2026, 11, 3, tzinfo=UTC))],
        desk=DeskFigures(3, 2, 1, 42.0, 600.0, 1, 0, 4.5))
    text = pdf_text(render(report, "pdf"))
    assert "possible stoppage" in text
    assert re.search(r"A\s*→\s*B", text), "the tier change"
    assert "4.5" in text
    wb = load_workbook(io.BytesIO(render(report, "xlsx")))
    ws = wb["Accounts"]
    assert ws.freeze_panes == "A2"
    change = [c.value for c in ws[1]].index("Change against the month before")
    assert ws.cell(3, change + 1).value == pytest.approx(
        stopped[1].usage.energy_kwh / stopped[0].usage.energy_kwh - 1)
    assert ws.cell(3, change + 1).number_format == "0.0%"


def test_the_month_report_gives_its_forecast_one_accuracy_figure(bills):
    acc = ForecastAccuracy(mae_kwh=12.5, bias_kwh=-1.5, intervals=2700, estimated=60, missing=40, pending=0,
                           no_forecast=0)
    report = replace(_report(bills, "en"), forecast_accuracy=acc)
    html = render_html(report)
    assert re.search(r'id="forecast-mae">[^<]*MAE 12\.50 kWh per 15 min', html)
    assert "WAPE" not in html
    assert 'id="forecast-accuracy"' not in html
    summary = {r[0].value: r[1].value for r in load_workbook(io.BytesIO(render(report, "xlsx"))).worksheets[0]
               .iter_rows()}
    assert summary["Day-ahead forecast MAE (kWh per 15 min)"] == acc.mae_kwh
    assert summary["Day-ahead forecast bias (kWh per 15 min)"] == acc.bias_kwh
    assert not [k for k in summary if "WAPE" in str(k)]
