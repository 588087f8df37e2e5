"""The monthly customer report: figures from the 15-min frame, self-contained HTML, XLSX, and the CLI."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from reports.monthly import ReportError, month_figures, render_html, render_xlsx


def _month(kw=None, tz="Asia/Shanghai"):
    idx = pd.date_range(pd.Timestamp("2026-10-01", tz=tz), pd.Timestamp("2026-11-01", tz=tz), freq="15min",
                        inclusive="left")
    kw = np.full(len(idx), 400.0) if kw is None else kw
    frame = pd.DataFrame({"kw": kw, "kwh": kw / 4, "kvarh": kw / 4 * 0.5}, index=idx)
    frame["pf"] = 1 / np.sqrt(1.25)
    frame["missing"] = frame["kwh"].isna()
    return frame


def test_constant_load_has_load_factor_one():
    f = month_figures(_month(), "c1", "Customer One", "2026-10")
    assert f.intervals == 31 * 96
    assert f.kwh == pytest.approx(400 * 24 * 31)
    assert f.peak_kw == pytest.approx(400)
    assert f.load_factor == pytest.approx(1.0)
    assert f.pf == pytest.approx(0.89)  # kWh / sqrt(kWh^2 + kvarh^2) with kvarh = kWh / 2, rounded to 0.01
    assert len(f.daily) == 31


def test_peak_time_and_missing_intervals_are_reported():
    kw = np.full(31 * 96, 100.0)
    kw[96 * 9 + 40] = 900.0  # Oct 10, 10:00 local
    kw[5:9] = np.nan
    f = month_figures(_month(kw), "c1", "C", "2026-10")
    assert f.peak_kw == pytest.approx(900)
    assert f.peak_at == "2026-10-10T10:00:00+08:00"
    assert f.missing_intervals == 4
    assert f.daily.loc["2026-10-01", "missing"] == 4
    html = render_html(f)
    assert "4 of 2976 15-minute intervals have no data" in html
    assert 'id="kpi-peak">900<' in html
    assert "Plotly.newPlot" in html
    assert 'src="http' not in html  # plotly.js is inlined from the installed package: it opens offline


def test_xlsx_summary_and_days():
    wb = load_workbook(io.BytesIO(render_xlsx(month_figures(_month(), "c1", "Customer One", "2026-10"))))
    summary = {row[0].value: row[1].value for row in wb["summary"].iter_rows(min_row=2)}
    assert summary["Energy (kWh)"] == pytest.approx(297600)
    assert wb["daily"].max_row == 32


def test_empty_or_naive_frames_are_clear_errors():
    with pytest.raises(ReportError, match="no intervals"):
        month_figures(_month().iloc[:0], "c1", "C", "2026-10")
    naive = _month()
    naive.index = naive.index.tz_localize(None)
    with pytest.raises(ReportError, match="tz-aware"):
        month_figures(naive, "c1", "C", "2026-10")
