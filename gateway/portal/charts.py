"""The day curve as plotly data: TOU bands, measured and estimated values apart, gaps left gaps, pending greyed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

BAND_COLOURS = {"critical_peak": "rgba(200,0,0,0.16)", "peak": "rgba(230,120,0,0.13)",
                "flat": "rgba(120,120,120,0.05)", "valley": "rgba(0,110,220,0.10)"}


def _runs(pts: list[dict[str, Any]], key: str, colour: dict[str, str]) -> list[tuple[str, int, int]]:
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


def day_chart(pts: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
    """The day curve as plotly data: measured values on the actual line, estimated ones apart, gaps left gaps."""
    starts = [datetime.fromisoformat(pt["start"]) for pt in pts]
    x = [s.strftime("%Y-%m-%d %H:%M") for s in starts]

    def end_of(j: int) -> str:
        return (starts[j] + timedelta(minutes=15)).strftime("%Y-%m-%d %H:%M")

    shapes: list[dict[str, Any]] = [
        {"type": "rect", "xref": "x", "yref": "paper", "x0": x[i], "x1": end_of(j), "y0": 0, "y1": 1,
         "fillcolor": BAND_COLOURS[band], "line": {"width": 0}, "layer": "below", "name": band}
        for band, i, j in _runs(pts, "band", BAND_COLOURS)]
    legend_done: set[str] = set()
    for mark, i, j in _runs(pts, "status", {k: v[0] for k, v in STATUS_MARKS.items()}):
        colour, height = STATUS_MARKS[mark]
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": x[i], "x1": end_of(j), "y0": 0,
                       "y1": height, "fillcolor": colour, "line": {"width": 0}, "layer": "below",
                       "name": labels[mark], "showlegend": mark not in legend_done, "legendgroup": mark})
        legend_done.add(mark)
    status = [pt["status"] for pt in pts]
    value = [pt["actual_kw"] for pt in pts]
    # Without a status (an older frame) a value is taken as measured.
    actual = [v if st in (None, "measured") else None for v, st in zip(value, status, strict=True)]
    estimated = [v if st == "estimated" else None for v, st in zip(value, status, strict=True)]

    def beside(k: int, values: list[Any]) -> bool:
        """Whether a neighbour of point k has a value in `values`."""
        return any(0 <= n < len(values) and values[n] is not None for n in (k - 1, k + 1))

    # The dotted line of an estimated run starts and ends on its measured neighbours, so the curve reads on across it.
    link = [v if e is not None or (a is not None and beside(k, estimated)) else None
            for k, (v, a, e) in enumerate(zip(value, actual, estimated, strict=True))]
    # A measured value between two gaps has no line to be on: it gets a marker.
    lone = [a is not None and not beside(k, actual) and not beside(k, estimated)
            for k, a in enumerate(actual)]
    has_estimated = "estimated" in status
    return {"x": x, "actual": actual, "forecast": [pt["forecast_kw"] for pt in pts],
            "last_week": [pt["last_week_kw"] for pt in pts], "shapes": shapes,
            "bands": sorted({pt["band"] for pt in pts if pt["band"]}),
            "actual_marker": [5 if one else 0 for one in lone] if any(lone) else None,
            "estimated": estimated if has_estimated else None, "estimated_link": link if has_estimated else None,
            "labels": labels}
