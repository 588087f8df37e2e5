"""Production actuals and plans from a customer's CSV or XLSX file: parsed and checked, every bad row named.

Pure: bytes in, rows or a ProductionFileError out, nothing stored. One row per local day (and optionally per
production line): `date`, `output`, `unit`, optional `line`, `hdd`, `cdd` (heating and cooling degree days for the
ISO 50006 baseline), `shifts` (the day's shift count, a whole number 0..3) and `operating` (1/0, yes/no, 是/否).
Headers may be English or Chinese (日期, 产量, 单位, 产线, 采暖度日, 制冷度日, 班次, 生产). A file with any bad
row is refused whole, every problem listed with its row (as a spreadsheet numbers it: the header is row 1), column
(as the header names it) and reason; each problem carries a message key and values, so each reader gets it in their
language.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_bridge.errors import CrmError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_ERRORS = 200  # listed; the count says how many there were in all
MAX_OUTPUT = Decimal("1e9")
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
KINDS = ("actual", "plan")
HEADERS = {"date": "date", "day": "date", "日期": "date", "output": "output", "quantity": "output", "产量": "output",
           "unit": "unit", "单位": "unit", "line": "line", "产线": "line", "生产线": "line", "hdd": "hdd",
           "采暖度日": "hdd", "cdd": "cdd", "制冷度日": "cdd", "shifts": "shifts", "shift": "shifts", "班次": "shifts",
           "operating": "operating", "生产": "operating"}
MAX_SHIFTS = 3
# The operating flag as a planner writes it; anything else is a row error.
_OPERATING = {"1": True, "0": False, "yes": True, "no": False, "y": True, "n": False, "true": True, "false": False,
              "是": True, "否": False}
REQUIRED = ("date", "output", "unit")
# Units and line names: letters (any script), digits, space and a few signs; never a leading formula character.
_NAME = re.compile(r"^(?![=+\-@])[\w .,/%()·-]{1,40}$")
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")


@dataclass(frozen=True)
class RowError:
    """One problem: the row (None for the whole file), the column, a reason code and the values of its message."""

    row: int | None
    column: str | None
    code: str
    value: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The message key of the reason in the portal's catalogue."""
        return f"production_err_{self.code}"

    def english(self) -> str:
        where = ", ".join(x for x in (f"row {self.row}" if self.row else None,
                                      f"column {self.column}" if self.column else None) if x)
        what = _ENGLISH[self.code].format(value=self.value, **self.params)
        return f"{where}: {what}" if where else what


_ENGLISH = {
    "file_empty": "the file holds no rows",
    "file_type": "not a CSV (UTF-8 or GB18030) or XLSX file",
    "too_large": "the file is larger than {limit} bytes",
    "too_many_rows": "more than {limit} rows",
    "missing_column": "the header lacks the column",
    "unknown_column": "{value!r} is not a known column (date, output, unit, line, hdd, cdd, shifts, operating)",
    "repeated_column": "the column appears twice in the header",
    "empty": "no value",
    "bad_date": "{value!r} is not a date (YYYY-MM-DD)",
    "date_range": "{value} is outside 2000-01-01..2099-12-31",
    "future": "{value} is in the future: actuals are for days that are over",
    "not_a_number": "{value!r} is not a number",
    "negative": "{value} is negative",
    "too_big": "{value} is implausibly large",
    "bad_name": "{value!r}: use 1 to 40 letters, digits, spaces or . , / % ( ) - (not starting with = + - @)",
    "duplicate": "the day and line are given again (first in row {first})",
    "mixed_unit": "unit {value!r} differs from {unit!r} of the rows above",
    "bad_shifts": "{value!r} is not a shift count: a whole number from 0 to 3",
    "bad_operating": "{value!r} is not an operating flag: 1 or 0, yes or no, 是 or 否",
}


class ProductionFileError(CrmError, ValueError):
    """A production file that cannot be taken; `errors` lists every problem (at most MAX_ERRORS), `count` all."""

    def __init__(self, errors: list[RowError], count: int | None = None) -> None:
        self.errors = errors[:MAX_ERRORS]
        self.count = count if count is not None else len(errors)
        more = f" (and {self.count - 1} more)" if self.count > 1 else ""
        super().__init__(f"production file refused: {errors[0].english()}{more}")


@dataclass(frozen=True)
class ProductionRow:
    """One day's (and line's) output; `line` is "" for the whole plant."""

    day: date
    output: Decimal
    unit: str
    line: str = ""
    hdd: Decimal | None = None
    cdd: Decimal | None = None
    shifts: int | None = None  # None: not given
    operating: bool | None = None


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _table(data: bytes) -> list[list[Any]]:
    """The file's cells, row by row (the header first), from XLSX (a zip) or CSV (UTF-8, else GB18030)."""
    if data[:4] == b"PK\x03\x04":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ProductionFileError([RowError(None, None, "file_type", str(exc)[:100])]) from None
        try:
            rows: list[list[Any]] = []
            for r in wb.worksheets[0].iter_rows(values_only=True):
                if len(rows) > MAX_ROWS + 1:
                    break
                rows.append(list(r))
            return rows
        finally:
            wb.close()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # gb18030 decodes almost anything; kept for the reader
        raise ProductionFileError([RowError(None, None, "file_type")])
    if "\x00" in text:
        raise ProductionFileError([RowError(None, None, "file_type")])
    try:
        return [list(r) for r in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise ProductionFileError([RowError(None, None, "file_type", str(exc)[:100])]) from None


def _day(v: Any, row: int, col: str, errors: list[RowError]) -> date | None:
    if isinstance(v, datetime):
        if v.time() != datetime.min.time():
            errors.append(RowError(row, col, "bad_date", v.isoformat()))
            return None
        d: date = v.date()
    elif isinstance(v, date):
        d = v
    else:
        m = _DATE.match(_text(v))
        try:
            if m is None:
                raise ValueError(v)
            d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            errors.append(RowError(row, col, "bad_date", _text(v)[:40]))
            return None
    if not FIRST_DAY <= d <= LAST_DAY:
        errors.append(RowError(row, col, "date_range", d.isoformat()))
        return None
    return d


def _number(v: Any, row: int, col: str, errors: list[RowError], required: bool) -> Decimal | None:
    text = _text(v)
    if text == "":
        if required:
            errors.append(RowError(row, col, "empty"))
        return None
    if isinstance(v, bool):
        errors.append(RowError(row, col, "not_a_number", text[:40]))
        return None
    try:
        x = Decimal(text)
    except InvalidOperation:
        errors.append(RowError(row, col, "not_a_number", text[:40]))
        return None
    if not x.is_finite():
        errors.append(RowError(row, col, "not_a_number", text[:40]))
        return None
    if x < 0:
        errors.append(RowError(row, col, "negative", text[:40]))
        return None
    if x > MAX_OUTPUT:
        errors.append(RowError(row, col, "too_big", text[:40]))
        return None
    return x


def _shifts(v: Any, row: int, col: str, errors: list[RowError]) -> int | None:
    """A whole number of shifts 0..3 (an XLSX 2.0 is 2); None when the cell is empty."""
    text = _text(v)
    if text == "":
        return None
    try:
        x = Decimal(text)
        ok = not isinstance(v, bool) and x.is_finite() and x == x.to_integral_value() and 0 <= x <= MAX_SHIFTS
    except InvalidOperation:
        ok = False
    if not ok:
        errors.append(RowError(row, col, "bad_shifts", text[:40]))
        return None
    return int(x)


def _operating(v: Any, row: int, col: str, errors: list[RowError]) -> bool | None:
    """1/0, yes/no (y/n, true/false, any case) or 是/否; None when the cell is empty."""
    text = _text(v)
    if text == "":
        return None
    if isinstance(v, bool):
        return v
    flag = _OPERATING.get(text.lower())
    if flag is None:
        errors.append(RowError(row, col, "bad_operating", text[:40]))
    return flag


def read_production(data: bytes, kind: str = "actual", today: date | None = None) -> list[ProductionRow]:
    """The rows of a production file; ProductionFileError listing every problem when any row is bad.

    `kind` "actual" refuses days after `today` (the customer's local day); "plan" takes any day.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if len(data) > MAX_BYTES:
        raise ProductionFileError([RowError(None, None, "too_large", params={"limit": MAX_BYTES})])
    table = [r for r in _table(data) if any(_text(c) for c in r)]
    if len(table) < 2:
        raise ProductionFileError([RowError(None, None, "file_empty")])
    if len(table) > MAX_ROWS + 1:
        raise ProductionFileError([RowError(None, None, "too_many_rows", params={"limit": MAX_ROWS})])
    errors: list[RowError] = []
    columns: dict[str, int] = {}
    label: dict[str, str] = {}  # a column as the file's header names it (日期, Date, ...): problems name it so
    for i, name in enumerate(table[0]):
        text = _text(name)
        key = HEADERS.get(text.lower())
        if key is None:
            if text:
                errors.append(RowError(1, text[:40], "unknown_column", text[:40]))
            continue
        if key in columns:
            errors.append(RowError(1, key, "repeated_column"))
        columns[key] = i
        label[key] = text[:40]
    errors += [RowError(1, c, "missing_column") for c in REQUIRED if c not in columns]
    if errors:
        raise ProductionFileError(errors)
    named = {k: label.get(k, k) for k in set(HEADERS.values())}
    out: list[ProductionRow] = []
    seen: dict[tuple[date, str], int] = {}
    unit0: str | None = None
    for n, cells in enumerate(table[1:], start=2):
        def cell(col: str, cells: list[Any] = cells) -> Any:
            i = columns.get(col)
            return cells[i] if i is not None and i < len(cells) else None

        before = len(errors)
        d = _day(cell("date"), n, named["date"], errors) if _text(cell("date")) else None
        if not _text(cell("date")):
            errors.append(RowError(n, named["date"], "empty"))
        if d is not None and kind == "actual" and today is not None and d > today:
            errors.append(RowError(n, named["date"], "future", d.isoformat()))
        output = _number(cell("output"), n, named["output"], errors, required=True)
        hdd = _number(cell("hdd"), n, named["hdd"], errors, required=False)
        cdd = _number(cell("cdd"), n, named["cdd"], errors, required=False)
        shifts = _shifts(cell("shifts"), n, named["shifts"], errors)
        operating = _operating(cell("operating"), n, named["operating"], errors)
        unit, line = _text(cell("unit")), _text(cell("line"))
        if not unit:
            errors.append(RowError(n, named["unit"], "empty"))
        elif not _NAME.match(unit):
            errors.append(RowError(n, named["unit"], "bad_name", unit[:40]))
        elif unit0 is None:
            unit0 = unit
        elif unit != unit0:
            errors.append(RowError(n, named["unit"], "mixed_unit", unit[:40], {"unit": unit0}))
        if line and not _NAME.match(line):
            errors.append(RowError(n, named["line"], "bad_name", line[:40]))
        if d is not None:
            first = seen.setdefault((d, line), n)
            if first != n:
                errors.append(RowError(n, named["date"], "duplicate", d.isoformat(), {"first": first}))
        if len(errors) == before and d is not None and output is not None:
            out.append(ProductionRow(d, output, unit, line, hdd, cdd, shifts, operating))
    if errors:
        raise ProductionFileError(errors, len(errors))
    return out


def plant_shifts(rows: Sequence[Any]) -> tuple[int | None, bool | None]:
    """A day's shift count and operating flag from its rows (objects with `line`, `shifts`, `operating`).

    The plant's row (line "") when the day has one; else over its lines: the most shifts any line runs, operating
    when any line operates (not when every line that says so does not). 0 shifts without a flag is not operating.
    None where no row says.
    """
    plant = [r for r in rows if r.line == ""]
    group = plant or list(rows)
    counts = [int(r.shifts) for r in group if r.shifts is not None]
    flags = [bool(r.operating) for r in group if r.operating is not None]
    shifts = max(counts) if counts else None
    operating = any(flags) if flags else (False if shifts == 0 else None)
    return shifts, operating


__all__ = ["KINDS", "MAX_BYTES", "MAX_ROWS", "MAX_SHIFTS", "ProductionFileError", "ProductionRow", "RowError",
           "plant_shifts", "read_production"]
