"""Tabular exports of interval series: CSV and XLSX, local timestamps, every interval's status kept visible."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

MISSING_FILL = PatternFill("solid", fgColor="FCE4D6")
ESTIMATED_FILL = PatternFill("solid", fgColor="FFF2CC")
PENDING_FILL = PatternFill("solid", fgColor="E7E9EC")
STATUS_FILLS = {"estimated": ESTIMATED_FILL, "missing": MISSING_FILL, "pending": PENDING_FILL}
STATUS_MEANINGS = {
    "measured": "the meter's register known at both ends of the interval",
    "estimated": "a short gap in the register (up to [query] max_estimate_s) shared out in proportion to time; "
                 "a run of estimated intervals adds up to the register difference across the gap",
    "missing": "no energy known: the gap was too long to estimate, or the register stepped back; nothing filled in",
    "pending": "not yet reached (in the future, or after the meter's last reading while it may still report): "
               "neither missing nor zero",
}


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows as written, the local start first.

    With a `status` column, `missing` is true for missing intervals only: pending ones (not yet reached) are not
    missing. The query layer's own `missing` means "no energy value", which pending intervals have not either.
    """
    out = frame.copy()
    idx = pd.DatetimeIndex(out.index)
    out.insert(0, "interval_start", [t.isoformat() for t in idx])
    if "status" in out.columns and "missing" in out.columns:
        out["missing"] = out["status"].astype(str) == "missing"
    return out.reset_index(drop=True)


def _statuses(frame: pd.DataFrame) -> list[str]:
    """Each row's status; a frame without the column: missing where it says so, else measured."""
    if "status" in frame.columns:
        return [str(s) for s in frame["status"]]
    if "missing" in frame.columns:
        return ["missing" if m else "measured" for m in frame["missing"]]
    return ["measured"] * len(frame)


def to_csv(frame: pd.DataFrame) -> str:
    """ISO 8601 local timestamps with offset; a value that is not there is an empty cell, never a zero.

    Floats are written as their shortest exact text (Python's repr, not a fixed number of decimals), so the kWh of a
    month's rows add up to exactly the frame's sum: to the Wh and below.
    """
    return _flat(frame).to_csv(index=False, lineterminator="\n")


def _cell(v: Any) -> Any:
    if isinstance(v, float) and pd.isna(v):
        return None
    if hasattr(v, "item"):  # numpy scalars (bool_, int64, float64) as the Python values openpyxl writes
        return _cell(v.item())
    return v


def to_xlsx(frame: pd.DataFrame, title: str, sheet: str = "intervals") -> bytes:
    """One row per interval, shaded by status (estimated, missing and pending apart), and a legend sheet."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet[:31]
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=13)
    flat = _flat(frame)
    ws.append(list(flat.columns))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row, status in zip(flat.itertuples(index=False), _statuses(frame), strict=True):
        ws.append([_cell(v) for v in row])
        fill = STATUS_FILLS.get(status)
        if fill is not None:
            for cell in ws[ws.max_row]:
                cell.fill = fill
    for i, col in enumerate(flat.columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(12, len(str(col)) + 2)
    ws.column_dimensions["A"].width = 27
    ws.freeze_panes = "B3"
    _legend(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _legend(wb: Workbook) -> None:
    """A second sheet naming each status, shaded as the interval rows are."""
    ws = wb.create_sheet("legend")
    ws.append(["status", "meaning"])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for status, meaning in STATUS_MEANINGS.items():
        ws.append([status, meaning])
        fill = STATUS_FILLS.get(status)
        if fill is not None:
            for cell in ws[ws.max_row]:
                cell.fill = fill
    ws.column_dimensions["A"].width = 12
    ws.column_dimensions["B"].width = 110
