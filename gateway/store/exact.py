"""Exact integer values in the stores: a 64-bit register (int64 or uint64) kept digit for digit beside its float.

A collector hands over an `int` exactly when the point is an unscaled int64/uint64 register (see `Reading`); every
other number is a `float`. Both stores keep one float column or field `value` for every numeric reading, as
before, and put an integer reading a second time, exactly, in `value_int`:

- **SQLite** (`value_int`, a column without type affinity): an INTEGER when the value fits signed 64 bits, else
  its decimal digits as TEXT (uint64 above 2**63 - 1, which SQLite's INTEGER cannot hold).
- **InfluxDB** (`value_int`, an integer field, `123i`): signed 64 bits as is; a uint64 above 2**63 - 1 as its two's
  complement (the value minus 2**64, so negative). InfluxDB 1.x has no unsigned fields (`123u` is 2.x only), and one
  representation serves both APIs. The float `value` tells them apart: a negative `value_int` beside a positive
  `value` is such a uint64.

Field and column types therefore never change, whatever the Python type of a reading: `value` is always a float
(a float point reading 3.0 stays 3.0) and `value_int` always an integer, so InfluxDB never sees a field change type
within a shard, and data written before `value_int` existed reads as it did. Aggregates over many values (mean,
sum, min, max, count) work on the float; reads of stored values (raw, latest, first/last buckets, the readings
near interval boundaries) give the exact integer back. A value read from `value_int` is used only when its float is
the stored `value`: InfluxDB merges the fields of two writes to one point, so a point first written as an integer
and rewritten as a float keeps a stale `value_int` that must not win (the one case this cannot tell: a rewrite
with the very float the integer rounds to, e.g. 2**53 after 2**53 + 1, still reads as the integer).

Which readings are integers is the collector's statement of the point's datatype (the `Reading` contract), but no
type in either store depends on it, so a point that sends an int one poll and a float the next (a uint64 past
what a collector keeps exact) costs precision on those readings and never a refused write. An integer wider than
64 bits is refused (`StoreRejected`), as InfluxDB could not hold it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from gateway.store.base import StoreRejected

if TYPE_CHECKING:  # pandas loads when a store is read: a process that only writes (gateway.store_writer) never needs it
    import pandas as pd

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
_TWO_64 = 2**64


def exact_int(value: object) -> int | None:
    """The exact integer a reading's value holds (an int or a numpy integer, not a bool), else None."""
    if value.__class__ is int:
        return value  # type: ignore[return-value]
    if isinstance(value, np.integer):
        return int(value)
    return None


def check_range(value: int, where: str) -> int:
    """`value` when a 64-bit register can hold it (int64 or uint64); else StoreRejected naming the reading."""
    if not INT64_MIN <= value <= UINT64_MAX:
        raise StoreRejected(
            f"{where}: integer value {value} is outside the 64-bit range [-2**63, 2**64 - 1] that the stores keep "
            "exactly"
        )
    return value


def to_sqlite(value: int) -> int | str:
    """The `value_int` column's form: an INTEGER within signed 64 bits, else decimal TEXT."""
    return value if value <= INT64_MAX else str(value)


def sqlite_int(exact: int | str) -> int:
    """The integer a `value_int` cell holds (an INTEGER, or the decimal TEXT of a uint64 above 2**63 - 1)."""
    return exact if exact.__class__ is int else int(exact)


def from_sqlite(stored: float | None, exact: int | str | None) -> float | int | None:
    """A stored SQLite value: the exact integer when `value_int` holds one, else the float (or None)."""
    return stored if exact is None else sqlite_int(exact)


def to_influx(value: int) -> int:
    """The `value_int` field's form: signed 64 bits; a uint64 above 2**63 - 1 as its two's complement."""
    return value - _TWO_64 if value > INT64_MAX else value


def from_influx(stored: float | int | None, exact: int | None) -> float | int | None:
    """A value read from InfluxDB's JSON: the exact integer when `value_int` holds one that matches `value`.

    InfluxDB answers a float without fraction as a JSON integer (3.0 comes back as 3), so `value` is always made a
    float here; `value_int` is taken only when `value` is its float (see the module docstring).
    """
    if stored is None:
        return None
    return float(stored) if exact is None else influx_int(stored, exact)


def influx_int(stored: float | int, exact: int) -> float | int:
    """`from_influx` for a point that has both fields: the integer when `value` is its float, else `value`."""
    f = float(stored)
    n = int(exact)
    if n < 0 < f:
        n += _TWO_64
    return n if float(n) == f else f


def value_series(values: Sequence[float | int | None]) -> pd.Series:
    """A frame column of stored values: float64 (NaN for None) unless an exact integer is among them.

    With an integer among them the column is object dtype, integers as Python ints and the rest as floats or NaN,
    so that no integer passes through a float.
    """
    import pandas as pd

    if any(v.__class__ is int for v in values):
        return pd.Series([np.nan if v is None else v for v in values], dtype=object)
    return pd.Series([np.nan if v is None else v for v in values], dtype="float64")


def bucket_frame(values: np.ndarray, index: pd.Index, columns: pd.Index | list[str]) -> pd.DataFrame:
    """The frame `buckets` returns from its cells: float64 columns, object dtype where a column holds an integer."""
    import pandas as pd

    if values.dtype != object:
        return pd.DataFrame(values, index=index, columns=columns)
    parts = []
    for j in range(len(columns)):
        cells = values[:, j]
        exact = any(v.__class__ is int for v in cells)
        parts.append(pd.Series(cells, index=index, dtype=object if exact else "float64"))
    frame = pd.concat(parts, axis=1)
    frame.columns = pd.Index(columns)
    return frame
