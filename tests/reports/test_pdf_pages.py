"""The monthly PDF looked at as a reader sees it: every page rendered to PNG by poppler's pdftoppm.

Every page has ink and more than one shade (not blank, not a solid block); pdftoppm renders as many pages as pdfinfo
counts; the charts' axes (tick values, hours, titles and legend) are text that pdftotext finds; the Chinese report has
Chinese characters and the English one none.
"""

from __future__ import annotations

import re

import pytest
from babel.numbers import format_decimal
from PIL import ImageStat

from reports.charts import nice_ticks
from reports.render import render
from tests.reports.pdf import ink, pdf_page_count, pdf_pages, pdf_text
from tests.reports.test_render import _bill, _report

HAN = re.compile(r"[\u4e00-\u9fff]")
# The charts' own words: titles, the y axis' unit, the legend (reports/locale/)
CHART_WORDS = {"zh": ("每日电量", "最大需量日", "千瓦时", "千瓦", "实际", "预测"),
               "en": ("Energy per day", "The peak day", "kWh", "kW", "Actual", "Forecast")}


@pytest.fixture(scope="module")
def bills():
    return {"2026-11": _bill("2026-11-01"), "2026-10": _bill("2026-10-01", 0.9), "2025-11": _bill("2025-11-01", 1.1)}


@pytest.fixture(scope="module", params=["zh", "en"])
def monthly(request, bills):
    report = _report(bills, request.param)
    return request.param, report, render(report, "pdf")


def test_every_page_renders_with_ink_and_the_page_count_is_pdfinfos(monthly):
    _, _, pdf = monthly
    pages = pdf_pages(pdf, dpi=50)
    assert len(pages) == pdf_page_count(pdf)
    assert len(pages) >= 2, "a month's report does not fit on one page"
    for number, page in enumerate(pages, start=1):
        assert ink(page) > 0.005, f"page {number} is blank"
        assert ImageStat.Stat(page.convert("L")).stddev[0] > 5, f"page {number} is one flat shade"
        assert ink(page) < 0.6, f"page {number} is mostly ink: not a page of text and charts"


def test_the_chart_axes_are_text(monthly):
    lang, report, pdf = monthly
    text = pdf_text(pdf)
    locale = {"zh": "zh_CN", "en": "en_US"}[lang]
    for word in CHART_WORDS[lang]:
        assert word in text, word
    days = [d.kwh for d in report.month.usage.days if d.kwh is not None]
    top = nice_ticks(max(days))[-1]  # the overview's highest y tick
    assert format_decimal(top, format="#,##0", locale=locale) in text
    assert report.peak_day is not None
    peak = max(p["actual_kw"] for p in report.peak_day["points"])
    assert format_decimal(nice_ticks(peak)[-1], format="#,##0", locale=locale) in text, "the peak day's y ticks"
    for hour in ("00:00", "06:00", "12:00", "18:00"):
        assert hour in text, f"the peak day's time axis: {hour}"


def test_the_chinese_report_has_chinese_characters_and_the_english_one_none(monthly):
    lang, report, pdf = monthly
    han = HAN.findall(pdf_text(pdf).replace(report.name, ""))
    if lang == "zh":
        assert len(han) > 200, len(han)
    else:
        assert han == []
