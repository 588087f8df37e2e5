"""The monthly customer report: energy, demand, power factor, money and daily profile of one customer for one month.

Pure: the figures are crm_bridge's one month bill (`month_bill`, or `month_usage` without a contract), never
re-derived here; the 15-min frame only feeds the time-of-day profile chart. Renders HTML (self-contained: plotly.js
from the installed package is inlined, so the file opens offline) or XLSX.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import plotly
import plotly.graph_objects as go
from openpyxl import Workbook
from openpyxl.styles import Font

from crm_bridge.errors import CrmError
from crm_bridge.tariffs import MonthBill, MonthUsage, month_usage


class ReportError(Exception):
    """A report cannot be made from what was given."""


@dataclass(frozen=True)
class MonthFigures:
    customer: str
    customer_name: str
    month: str  # YYYY-MM
    timezone: str
    kwh: float
    kvarh: float | None
    pf: float | None
    peak_kw: float | None
    peak_at: str | None
    load_factor: float | None
    missing_intervals: int
    estimated_intervals: int
    pending_intervals: int
    intervals: int
    usage: MonthUsage = field(repr=False)
    bill: MonthBill | None = field(repr=False)  # the money, when the customer has a contract on a shipped tariff
    daily: pd.DataFrame = field(repr=False)  # per local day: kwh, kvarh, peak_kw, pf, missing, estimated, pending
    profile: pd.DataFrame = field(repr=False)  # mean kW by time of day, busier days vs the rest


def month_figures(frame: pd.DataFrame, customer: str, customer_name: str, month: str, *,
                  bill: MonthBill | None = None, now: datetime | None = None) -> MonthFigures:
    """Figures of one month: `bill` when given (its metered part is the month's usage), else `month_usage`.

    `frame`: the query layer's 15-min frame of that month on the customer's clock (kwh, kvarh, status).
    """
    idx = pd.DatetimeIndex(frame.index)
    if idx.tz is None:
        raise ReportError("the interval frame must be indexed by tz-aware interval starts")
    if len(frame) == 0:
        raise ReportError(f"no intervals for {customer} in {month}")
    try:
        usage: MonthUsage = bill if bill is not None else month_usage(frame, month, idx.tz, now=now)
    except CrmError as exc:
        raise ReportError(f"{customer} {month}: {exc}") from None
    daily = pd.DataFrame(
        [{"kwh": np.nan if d.kwh is None else d.kwh, "kvarh": np.nan if d.kvarh is None else d.kvarh,
          "peak_kw": np.nan if d.peak_kw is None else d.peak_kw, "pf": np.nan if d.pf is None else d.pf,
          "missing": d.missing, "estimated": d.estimated, "pending": d.pending} for d in usage.days],
        index=[d.day.isoformat() for d in usage.days])
    kw = frame["kwh"] * 4
    # Days above the month's median energy stand in for production days when no plan is at hand.
    day_of = [d.date().isoformat() for d in idx]
    busy = daily["kwh"].reindex(day_of).to_numpy() > daily["kwh"].median()
    by_slot = pd.DataFrame({"kw": kw.to_numpy(), "slot": idx.strftime("%H:%M"), "busy": busy}, index=idx)
    profile = by_slot.pivot_table(index="slot", columns="busy", values="kw", aggfunc="mean")
    profile = profile.rename(columns={True: "busier_days_kw", False: "quieter_days_kw"})
    counts = usage.intervals
    return MonthFigures(
        customer=customer, customer_name=customer_name, month=usage.month, timezone=usage.timezone,
        kwh=usage.energy_kwh, kvarh=usage.kvarh, pf=usage.pf, peak_kw=usage.peak_kw,
        peak_at=usage.peak_at.isoformat(), load_factor=usage.load_factor, missing_intervals=counts.missing,
        estimated_intervals=counts.estimated, pending_intervals=counts.pending, intervals=counts.total,
        usage=usage, bill=bill, daily=daily, profile=profile,
    )


def _charts(fig: MonthFigures) -> tuple[str, str]:
    daily = go.Figure(go.Bar(x=list(fig.daily.index), y=fig.daily["kwh"], name="kWh"))
    daily.update_layout(title="Energy per day (kWh)", height=320, margin={"t": 40, "b": 40, "l": 50, "r": 10})
    profile = go.Figure()
    for col in fig.profile.columns:
        profile.add_trace(go.Scatter(x=list(fig.profile.index), y=fig.profile[col], name=str(col).replace("_", " ")))
    profile.update_layout(title="Mean load by time of day (kW)", height=320,
                          margin={"t": 40, "b": 40, "l": 50, "r": 10})
    return (daily.to_html(full_html=False, include_plotlyjs=False),
            profile.to_html(full_html=False, include_plotlyjs=False))


def render_html(fig: MonthFigures) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True)
    daily_chart, profile_chart = _charts(fig)
    plotly_js = Path(plotly.__file__).parent.joinpath("package_data", "plotly.min.js").read_text(encoding="utf-8")
    return env.get_template("monthly.html.j2").render(f=fig, daily_chart=daily_chart, profile_chart=profile_chart,
                                                       plotly_js=plotly_js)


def render_xlsx(fig: MonthFigures) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "summary"
    ws.append([f"{fig.customer_name} — {fig.month}"])
    ws["A1"].font = Font(bold=True, size=13)
    for label, value in (("Energy (kWh)", fig.kwh), ("Reactive energy (kvarh)", fig.kvarh),
                         ("Power factor", fig.pf), ("Peak 15-min demand (kW)", fig.peak_kw),
                         ("Peak at", fig.peak_at), ("Load factor", fig.load_factor),
                         ("Missing intervals", fig.missing_intervals),
                         ("Estimated intervals", fig.estimated_intervals),
                         ("Pending intervals", fig.pending_intervals), ("Intervals", fig.intervals),
                         ("Time zone", fig.timezone)):
        ws.append([label, value])
    if fig.bill is not None:
        b = fig.bill
        for label, value in ((f"Energy charge ({b.currency})", b.energy_charge),
                             (f"Basic charge, {b.basic.mode.value} ({b.currency})", b.basic_charge),
                             (f"PF adjustment, {b.pf_adjustment_pct} % ({b.currency})", b.pf_adjustment),
                             (f"Government funds ({b.currency})", b.government_funds),
                             (f"Total ({b.currency})", b.total)):
            ws.append([label, value])
    days = wb.create_sheet("daily")
    days.append(["day", "kWh", "kvarh", "peak kW", "PF", "missing intervals", "estimated intervals",
                 "pending intervals"])
    for day, row in fig.daily.iterrows():
        days.append([day, *(None if pd.isna(v) else float(v) for v in
                            (row["kwh"], row["kvarh"], row["peak_kw"], row["pf"], row["missing"], row["estimated"],
                             row["pending"]))])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

