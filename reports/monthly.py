"""The monthly customer report: energy, demand, power factor and daily profile of one customer for one month.

Pure: it takes the query layer's 15-minute frame (kwh, kvarh, kw, pf, missing) and renders HTML (self-contained:
plotly.js from the installed package is inlined, so the file opens offline) or XLSX.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import plotly
import plotly.graph_objects as go
from openpyxl import Workbook
from openpyxl.styles import Font


class ReportError(Exception):
    """A report cannot be made from what was given."""


@dataclass(frozen=True)
class MonthFigures:
    customer: str
    customer_name: str
    month: str  # YYYY-MM
    timezone: str
    kwh: float
    kvarh: float
    pf: float | None
    peak_kw: float | None
    peak_at: str | None
    load_factor: float | None
    missing_intervals: int
    intervals: int
    daily: pd.DataFrame = field(repr=False)  # per local day: kwh, peak_kw, pf, missing
    profile: pd.DataFrame = field(repr=False)  # mean kW by time of day, operating days vs the rest


def month_figures(frame: pd.DataFrame, customer: str, customer_name: str, month: str) -> MonthFigures:
    """Figures of one month from a 15-min frame covering exactly that month in the customer's time zone."""
    idx = pd.DatetimeIndex(frame.index)
    if idx.tz is None:
        raise ReportError("the interval frame must be indexed by tz-aware interval starts")
    if len(frame) == 0:
        raise ReportError(f"no intervals for {customer} in {month}")
    kwh = float(frame["kwh"].sum())
    kvarh = float(frame["kvarh"].sum())
    apparent = float(np.hypot(kwh, kvarh))
    kw = frame["kw"]
    peak_at = None if kw.isna().all() else pd.Timestamp(kw.idxmax())
    measured_hours = float((~frame["missing"]).sum()) / 4
    mean_kw = kwh / measured_hours if measured_hours else None
    daily = frame.groupby(idx.normalize()).agg(kwh=("kwh", "sum"), kvarh=("kvarh", "sum"), peak_kw=("kw", "max"),
                                               missing=("missing", "sum"))
    daily["pf"] = daily["kwh"] / np.hypot(daily["kwh"], daily["kvarh"])
    daily.index = [d.date().isoformat() for d in daily.index]
    # Days above the month's median energy stand in for production days when no plan is at hand.
    day_of = [d.date().isoformat() for d in idx]
    busy = daily["kwh"].reindex(day_of).to_numpy() > daily["kwh"].median()
    by_slot = frame.assign(slot=idx.strftime("%H:%M"), busy=busy)
    profile = by_slot.pivot_table(index="slot", columns="busy", values="kw", aggfunc="mean")
    profile = profile.rename(columns={True: "busier_days_kw", False: "quieter_days_kw"})
    return MonthFigures(
        customer=customer, customer_name=customer_name, month=month, timezone=str(idx.tz), kwh=kwh, kvarh=kvarh,
        pf=round(kwh / apparent, 2) if apparent else None,
        peak_kw=None if peak_at is None else float(kw.max()),
        peak_at=None if peak_at is None else peak_at.isoformat(),
        load_factor=(mean_kw / float(kw.max())) if mean_kw and peak_at is not None else None,
        missing_intervals=int(frame["missing"].sum()), intervals=len(frame), daily=daily, profile=profile,
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
                         ("Missing intervals", fig.missing_intervals), ("Intervals", fig.intervals),
                         ("Time zone", fig.timezone)):
        ws.append([label, value])
    days = wb.create_sheet("daily")
    days.append(["day", "kWh", "kvarh", "peak kW", "PF", "missing intervals"])
    for day, row in fig.daily.iterrows():
        days.append([day, *(None if pd.isna(v) else float(v) for v in
                            (row["kwh"], row["kvarh"], row["peak_kw"], row["pf"], row["missing"]))])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def template_names() -> list[str]:
    return [p.name for p in resources.files("reports").joinpath("templates").iterdir()]
