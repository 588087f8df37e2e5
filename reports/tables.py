"""Tabular exports of interval series: CSV and XLSX, with local timestamps and missing intervals kept visible."""

from __future__ import annotations

import io

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

MISSING_FILL = PatternFill("solid", fgColor="FCE4D6")


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    idx = pd.DatetimeIndex(out.index)
    out.insert(0, "interval_start", [t.isoformat() for t in idx])
    return out.reset_index(drop=True)


def to_csv(frame: pd.DataFrame) -> str:
    """ISO 8601 local timestamps with offset; a missing value is an empty cell, never a zero."""
    return _flat(frame).to_csv(index=False, float_format="%.4f", lineterminator="\n")


def to_xlsx(frame: pd.DataFrame, title: str, sheet: str = "intervals") -> bytes:
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
    missing_col = list(flat.columns).index("missing") if "missing" in flat.columns else None
    for row in flat.itertuples(index=False):
        values = [None if (isinstance(v, float) and pd.isna(v)) else (bool(v) if hasattr(v, "dtype") and
                  str(getattr(v, "dtype", "")) == "bool" else v) for v in row]
        ws.append(values)
        if missing_col is not None and row[missing_col]:
            for cell in ws[ws.max_row]:
                cell.fill = MISSING_FILL
    for i, col in enumerate(flat.columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(12, len(str(col)) + 2)
    ws.column_dimensions["A"].width = 27
    ws.freeze_panes = "B3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
