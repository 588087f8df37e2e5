"""The portal's charts as plotly data: the day curve, a range's interval curve, and days as bars with their peak.

Every value keeps its status: measured values on the line, estimated ones apart, missing ones gaps (a red strip
along the axis), pending ones (not yet reached) greyed; nothing is filled or drawn through. Hover labels are the text
of `gateway.portal.units` (the same as in the tables), passed as `customdata` with units.HOVER.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from gateway.portal.units import HOVER, q

BAND_COLOURS = {"critical_peak": "rgba(200,0,0,0.16)", "peak": "rgba(230,120,0,0.13)",
                "flat": "rgba(120,120,120,0.05)", "valley": "rgba(0,110,220,0.10)"}
STATUSES = ("measured", "estimated", "missing", "pending")
# A day's or a bucket's status is its worst interval's (as the query layer's): missing > pending > estimated.
WORST_FIRST = ("missing", "pending", "estimated", "measured")
BAR_COLOURS = {"measured": "#14345a", "estimated": "#c26a00", "missing": "#b00020", "pending": "#8a96a3"}
PEAK_COLOUR = "#e07b00"


def _runs(pts: Sequence[dict[str, Any]], key: str, colour: dict[str, str]) -> list[tuple[str, int, int]]:
    """Runs [i, j] of consecutive points with the same value of `key` that `colour` knows, as (value, i, j)."""
    runs, i = [], 0
    while i < len(pts):
        j = i
        while j + 1 < len(pts) and pts[j + 1][key] == pts[i][key]:
            j += 1
        if pts[i][key] in colour:
            runs.append((pts[i][key], i, j))
        i = j + 1
    return runs


# Marks for intervals without a measured value: pending ones (not yet reached) are greyed to the day's end, missing
# ones get a red strip along the axis under their gap. Estimated ones are a trace of their own (static/portal.js).
STATUS_MARKS = {"pending": ("rgba(120,130,140,0.16)", 1.0), "missing": ("rgba(200,0,0,0.45)", 0.04)}


def _status_shapes(pts: Sequence[dict[str, Any]], x0: Callable[[int], str], x1: Callable[[int], str],
                   labels: dict[str, str]) -> list[dict[str, Any]]:
    """A strip or a grey field under each run of missing or pending points, named once in the legend."""
    shapes: list[dict[str, Any]] = []
    legend_done: set[str] = set()
    for mark, i, j in _runs(pts, "status", {k: v[0] for k, v in STATUS_MARKS.items()}):
        colour, height = STATUS_MARKS[mark]
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": x0(i), "x1": x1(j), "y0": 0,
                       "y1": height, "fillcolor": colour, "line": {"width": 0}, "layer": "below",
                       "name": labels[mark], "showlegend": mark not in legend_done, "legendgroup": mark})
        legend_done.add(mark)
    return shapes


def _apart(value: Sequence[float | None], status: Sequence[str | None]) -> dict[str, Any]:
    """Values split by status: measured on the line, estimated apart (and the dotted link across them), lone markers.

    Without a status (an older frame) a value is taken as measured.
    """
    actual = [v if st in (None, "measured") else None for v, st in zip(value, status, strict=True)]
    estimated = [v if st == "estimated" else None for v, st in zip(value, status, strict=True)]

    def beside(k: int, values: list[Any]) -> bool:
        """Whether a neighbour of point k has a value in `values`."""
        return any(0 <= n < len(values) and values[n] is not None for n in (k - 1, k + 1))

    # The dotted line of an estimated run starts and ends on its measured neighbours, so the curve reads on across it.
    link = [v if e is not None or (a is not None and beside(k, estimated)) else None
            for k, (v, a, e) in enumerate(zip(value, actual, estimated, strict=True))]
    # A measured value between two gaps has no line to be on: it gets a marker.
    lone = [a is not None and not beside(k, actual) and not beside(k, estimated) for k, a in enumerate(actual)]
    has_estimated = "estimated" in status
    return {"actual": actual, "actual_marker": [5 if one else 0 for one in lone] if any(lone) else None,
            "estimated": estimated if has_estimated else None, "estimated_link": link if has_estimated else None}


_DAY_MS = 86_400_000


def date_axis(lang: str, by_day: bool = False) -> dict[str, Any]:
    """A date x-axis that reads in `lang`: ticks and the hover heading in the reader's date order.

    Plotly speaks English only without a locale bundle, which the portal does not load.
    """
    if lang == "zh":
        day, month, minute = "%-m月%-d日", "%Y年%-m月", "%-m月%-d日 %H:%M"
        heading = "%Y年%-m月%-d日" if by_day else "%Y年%-m月%-d日 %H:%M"
    else:
        day, month, minute = "%-d %b", "%b %Y", "%-d %b %H:%M"
        heading = "%-d %b %Y" if by_day else "%-d %b %Y %H:%M"
    return {"type": "date", "hoverformat": heading,
            "tickformatstops": [{"dtickrange": [None, _DAY_MS - 1], "value": minute},
                                {"dtickrange": [_DAY_MS, "M1"], "value": day},
                                {"dtickrange": ["M1", None], "value": month}]}


def _texts(values: Sequence[float | None], unit: str, lang: str) -> list[str]:
    return [q(v, unit, lang) for v in values]


def day_chart(pts: list[dict[str, Any]], labels: dict[str, str], lang: str = "zh") -> dict[str, Any]:
    """The day curve as plotly data: measured values on the actual line, estimated ones apart, gaps left gaps."""
    starts = [datetime.fromisoformat(pt["start"]) for pt in pts]
    x = [s.strftime("%Y-%m-%d %H:%M") for s in starts]

    def end_of(j: int) -> str:
        return (starts[j] + timedelta(minutes=15)).strftime("%Y-%m-%d %H:%M")

    shapes: list[dict[str, Any]] = [
        {"type": "rect", "xref": "x", "yref": "paper", "x0": x[i], "x1": end_of(j), "y0": 0, "y1": 1,
         "fillcolor": BAND_COLOURS[band], "line": {"width": 0}, "layer": "below", "name": band}
        for band, i, j in _runs(pts, "band", BAND_COLOURS)]
    shapes += _status_shapes(pts, lambda i: x[i], end_of, labels)
    value = [pt["actual_kw"] for pt in pts]
    forecast = [pt["forecast_kw"] for pt in pts]
    last_week = [pt["last_week_kw"] for pt in pts]
    return {"x": x, **_apart(value, [pt["status"] for pt in pts]), "forecast": forecast, "last_week": last_week,
            "shapes": shapes, "bands": sorted({pt["band"] for pt in pts if pt["band"]}), "labels": labels,
            "xaxis": date_axis(lang),
            "hover": {"actual": _texts(value, "kW", lang), "forecast": _texts(forecast, "kW", lang),
                      "last_week": _texts(last_week, "kW", lang), "template": HOVER}}


def status_of(counts: dict[str, Any]) -> str:
    """A day's or a bucket's status from its interval counts: the worst it holds."""
    return next((s for s in WORST_FIRST if counts.get(f"{s}_intervals")), "missing")


def _counts_text(row: dict[str, Any], labels: dict[str, str]) -> str:
    """"Measured 90 · Missing 6": the intervals of a day or bucket by status (those it has)."""
    return " · ".join(f"{labels[s]} {row[f'{s}_intervals']}" for s in STATUSES if row.get(f"{s}_intervals"))


def daily_chart(days: list[dict[str, Any]], labels: dict[str, str], lang: str = "zh") -> dict[str, Any]:
    """Days as bars of kWh (one trace per status, so the legend says what each colour means) and their peak in kW.

    `days`: day (ISO date), kwh and peak_kw (None: no interval with energy) and the interval counts by status
    (measured_intervals, ...), as the month view's daily rows. A day without energy has no bar: a red strip when its
    intervals are missing, grey when not reached yet.
    """
    x = [d["day"] for d in days]
    status = [status_of(d) for d in days]
    pts = [{"status": st if d["kwh"] is None else None} for st, d in zip(status, days, strict=True)]
    # A bar stands on its day's noon-to-noon band of the date axis (centred on the date): the marks cover the same.
    noon = [datetime.combine(date.fromisoformat(v), time(12)) for v in x]
    shapes = _status_shapes(pts, lambda i: f"{noon[i] - timedelta(days=1):%Y-%m-%d %H:%M}",
                            lambda j: f"{noon[j]:%Y-%m-%d %H:%M}", labels)
    hover = [f"{q(d['kwh'], 'kWh', lang)} ({_counts_text(d, labels)})" for d in days]
    traces: list[dict[str, Any]] = []
    for st in STATUSES:
        y = [d["kwh"] if s == st else None for d, s in zip(days, status, strict=True)]
        if all(v is None for v in y):
            continue
        traces.append({"type": "bar", "x": x, "y": y, "name": labels[f"days_{st}"], "customdata": hover,
                       "hovertemplate": HOVER, "marker": {"color": BAR_COLOURS[st]}, "legendgroup": st,
                       "offsetgroup": "kwh"})
    peak = [d["peak_kw"] for d in days]
    traces.append({"type": "scatter", "mode": "lines+markers", "x": x, "y": peak, "yaxis": "y2",
                   "name": labels["daily_peak"], "customdata": _texts(peak, "kW", lang), "hovertemplate": HOVER,
                   "connectgaps": False, "line": {"color": PEAK_COLOUR, "width": 2},
                   "marker": {"color": PEAK_COLOUR, "size": 5}})
    layout = {"margin": {"t": 20, "r": 60}, "barmode": "overlay", "hovermode": "x unified", "shapes": shapes,
              "xaxis": date_axis(lang, by_day=True), "legend": {"orientation": "h"},
              "yaxis": {"title": {"text": "kWh"}, "rangemode": "tozero", "tickformat": ",~r"},
              "yaxis2": {"title": {"text": "kW"}, "rangemode": "tozero", "overlaying": "y", "side": "right",
                         "tickformat": ",~r", "showgrid": False, "tickmode": "auto"}}
    return {"traces": traces, "layout": layout}


def interval_chart(rows: list[dict[str, Any]], minutes: int, labels: dict[str, str],
                   lang: str = "zh") -> dict[str, Any]:
    """A range's curve in kW from interval or bucket rows of UseCases.series (start, kw_mean, demand_max_kw, status).

    15-min rows: the kW of each interval, as the day curve. Longer buckets (the hour): the bucket's mean kW and its
    highest 15-min demand as a second line; a bucket with missing intervals is not on either line (a gap with a red
    strip) and its mean of the intervals it has is a marker of its own ("incomplete"), named with its counts.
    """
    starts = [datetime.fromisoformat(r["start"]) for r in rows]
    x = [s.strftime("%Y-%m-%d %H:%M") for s in starts]
    step = timedelta(minutes=minutes)
    status = [r["status"] for r in rows]
    mean = [r["kw_mean"] for r in rows]
    split = _apart(mean, status)
    shapes = _status_shapes(rows, lambda i: x[i], lambda j: (starts[j] + step).strftime("%Y-%m-%d %H:%M"), labels)
    bucket = minutes > 15
    hover = [q(v, "kW", lang) + (f" ({_counts_text(r, labels)})" if bucket else "")
             for v, r in zip(mean, rows, strict=True)]
    line = {"color": "#14345a", "width": 2 if not bucket else 1.5, "simplify": False}
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "x": x, "y": split["actual"], "name": labels["mean_kw" if bucket else "actual"],
         "mode": "lines+markers" if split["actual_marker"] else "lines", "connectgaps": False, "line": line,
         "marker": {"color": "#14345a", "size": split["actual_marker"] or 0}, "customdata": hover,
         "hovertemplate": HOVER}]
    if split["estimated"] is not None:
        traces.append({"type": "scatter", "x": x, "y": split["estimated"], "name": labels["estimated"],
                       "mode": "lines+markers", "connectgaps": False, "legendgroup": "estimated",
                       "line": {**line, "dash": "dot"}, "customdata": hover, "hovertemplate": HOVER,
                       "marker": {"symbol": "circle-open", "size": 7, "color": "#c26a00", "line": {"width": 2}}})
        traces.append({"type": "scatter", "x": x, "y": split["estimated_link"], "name": labels["estimated"],
                       "mode": "lines", "connectgaps": False, "legendgroup": "estimated", "showlegend": False,
                       "hoverinfo": "skip", "line": {**line, "dash": "dot"}})
    if bucket:
        peak = [r["demand_max_kw"] if st in ("measured", "estimated") else None
                for r, st in zip(rows, status, strict=True)]
        traces.append({"type": "scatter", "x": x, "y": peak, "name": labels["max_kw"], "mode": "lines",
                       "connectgaps": False, "line": {"color": PEAK_COLOUR, "width": 1, "simplify": False},
                       "customdata": _texts(peak, "kW", lang), "hovertemplate": HOVER})
        partial = [v if st == "missing" else None for v, st in zip(mean, status, strict=True)]
        if any(v is not None for v in partial):
            traces.append({"type": "scatter", "x": x, "y": partial, "name": labels["incomplete"],
                           "mode": "markers", "customdata": hover, "hovertemplate": HOVER,
                           "marker": {"symbol": "x", "size": 7, "color": BAR_COLOURS["missing"]}})
    layout = {"margin": {"t": 20, "r": 20}, "hovermode": "x unified", "shapes": shapes, "legend": {"orientation": "h"},
              "xaxis": {**date_axis(lang), "rangeslider": {"visible": True}},
              "yaxis": {"title": {"text": "kW"}, "rangemode": "tozero", "tickformat": ",~r"}}
    return {"traces": traces, "layout": layout}
