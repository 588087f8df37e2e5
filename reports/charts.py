"""Static SVG charts for the reports: drawn on the server, no script, text kept as text (PDF-searchable)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from markupsafe import Markup

WIDTH, HEIGHT = 680, 230
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 26, 42
COLOURS = ("#1f6fb2", "#e07b00", "#7a8793", "#2e9d5b")
FAINT = "#b9c7d6"  # a day with missing or estimated intervals
FONT = "'Noto Sans CJK SC', 'Noto Sans', sans-serif"


@dataclass(frozen=True)
class Series:
    """One line: its name in the legend and a value per x position (None: not known, the line breaks)."""

    name: str
    values: Sequence[float | None]
    dashed: bool = False


def nice_ticks(top: float, n: int = 4) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(math.ceil(top / step)) + 1)]


def _runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """The (first, last) positions of each run of true flags."""
    runs: list[tuple[int, int]] = []
    for i, on in enumerate(flags):
        if not on:
            continue
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _frame(title: str, y_label: str, ticks: list[float], fmt_tick: Callable[[float], str]) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" font-family="{FONT}" font-size="10" role="img">',
             f'<title>{escape(title)}</title>',
             f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold" fill="#1d2733">{escape(title)}</text>',
             f'<text x="4" y="{TOP - 6}" fill="#5b6775">{escape(y_label)}</text>']
    for v in ticks:
        y = TOP + plot_h - plot_h * v / ticks[-1]
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e8ed"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#5b6775">'
                     f'{escape(fmt_tick(v))}</text>')
    return parts


def bar_chart(title: str, y_label: str, labels: Sequence[str], values: Sequence[float | None],
              faint: Sequence[bool] | None = None, fmt_tick: Callable[[float], str] | None = None) -> Markup:
    """Bars per label (a day, a month); `faint` bars are drawn pale (their data is not whole); None draws nothing."""
    fmt: Callable[[float], str] = fmt_tick or (lambda v: f"{v:,.0f}")
    known = [v for v in values if v is not None and v == v]
    ticks = nice_ticks(max(known, default=0.0))
    parts = _frame(title, y_label, ticks, fmt)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(values), 1)
    every = max(1, math.ceil(len(labels) / 16))
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x = LEFT + i * slot
        if v is not None and v == v:
            h = plot_h * max(v, 0.0) / ticks[-1]
            colour = FAINT if faint and faint[i] else COLOURS[0]
            parts.append(f'<rect x="{x + slot * 0.12:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.76:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"/>')
        if i % every == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
                         f'fill="#5b6775">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped


def line_chart(title: str, y_label: str, labels: Sequence[str], series: Sequence[Series],
               shade: Sequence[bool] | None = None, fmt_tick: Callable[[float], str] | None = None) -> Markup:
    """Lines over the same x positions (the 15-min slots of a day), a legend below; `shade` tints x positions."""
    fmt: Callable[[float], str] = fmt_tick or (lambda v: f"{v:,.0f}")
    known = [v for s in series for v in s.values if v is not None and v == v]
    ticks = nice_ticks(max(known, default=0.0))
    parts = _frame(title, y_label, ticks, fmt)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(labels), 2)
    step = plot_w / (n - 1)
    for first, last in _runs(shade or []):  # one band per run of shaded slots, not one per slot
        parts.append(f'<rect x="{LEFT + (first - 0.5) * step:.1f}" y="{TOP}" width="{(last - first + 1) * step:.1f}" '
                     f'height="{plot_h}" fill="#fdf0e0"/>')
    for i, label in enumerate(labels):
        if i % max(1, n // 8) == 0:
            parts.append(f'<text x="{LEFT + i * step:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
                         f'fill="#5b6775">{escape(label)}</text>')
    for k, s in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None or v != v:
                runs.append([])
                continue
            runs[-1].append(f"{LEFT + i * step:.1f},{TOP + plot_h - plot_h * max(v, 0.0) / ticks[-1]:.1f}")
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                             f'stroke-width="1.6"{dash}/>')
        lx = LEFT + k * 170
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{HEIGHT - 10}" y2="{HEIGHT - 10}" stroke="{colour}" '
                     f'stroke-width="2"{dash}/>')
        parts.append(f'<text x="{lx + 22}" y="{HEIGHT - 6}" fill="#1d2733">{escape(s.name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
