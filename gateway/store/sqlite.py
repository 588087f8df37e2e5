"""The embedded time-series store: one SQLite file in WAL mode, no server needed.

Chosen over DuckDB after measuring both (see bench/store_write.py): SQLite's B-tree on (series, ts) answers the
one-day load-curve query in well under a millisecond and takes small frequent batches without the per-transaction
overhead a columnar engine pays, which is the shape of a gateway's writes.

Values: `value` (REAL) holds every numeric reading as a float, which the aggregates read; `value_int` holds an
integer reading (an int64/uint64 register) once more, exactly (see `gateway.store.exact`). A store made before
`value_int` existed gets the column added, empty, when it is opened (`ALTER TABLE ... ADD COLUMN`: no row is
rewritten), and its rows read as the floats they are.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from collectors.base import ReadingBatch
from collectors.reading import Quality, Reading
from gateway.store.base import (
    FORECAST_COLUMNS,
    Agg,
    ForecastIssue,
    LatestValue,
    StoreError,
    StoreUnavailable,
    TimeSeriesStore,
    check_forecast_frame,
    forecast_rows,
    near_frame,
)
from gateway.store.exact import (
    bucket_frame,
    check_range,
    exact_int,
    from_sqlite,
    sqlite_int,
    to_sqlite,
    value_series,
)

if TYPE_CHECKING:  # pandas loads when a store is read: a process that only writes (gateway.store_writer) never needs it
    import pandas as pd

_QUALITY_CODE = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2, Quality.COMM_LOST: 3}
_QUALITY_NAME = {v: k.value for k, v in _QUALITY_CODE.items()}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL, point TEXT NOT NULL, unit TEXT NOT NULL,
    meter TEXT NOT NULL, site TEXT NOT NULL, customer TEXT NOT NULL,
    UNIQUE (device, point, unit, meter, site, customer)
);
CREATE INDEX IF NOT EXISTS series_meter_point ON series (meter, point);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL,
    quality INTEGER NOT NULL,
    gateway_ts INTEGER NOT NULL,
    value_int,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
"""
# Every issue of every forecast (gateway.store.base.ForecastIssue): a re-issue is a row beside the earlier ones.
_FORECAST_SCHEMA = """
CREATE TABLE IF NOT EXISTS forecasts (
    customer TEXT NOT NULL, ts INTEGER NOT NULL, issued_at INTEGER NOT NULL, model TEXT NOT NULL,
    backfilled INTEGER NOT NULL,
    forecast REAL, lower80 REAL, upper80 REAL, lower95 REAL, upper95 REAL,
    PRIMARY KEY (customer, ts, issued_at, model)
) WITHOUT ROWID;
"""
_INSERT_FORECAST = ("INSERT OR REPLACE INTO forecasts (customer, ts, issued_at, model, backfilled, forecast, lower80, "
                    "upper80, lower95, upper95) VALUES (?,?,?,?,?,?,?,?,?,?)")
# `value_int` is declared without a type on purpose: no affinity, so an INTEGER stays an INTEGER and the digits of
# a uint64 above 2**63 - 1 stay TEXT (REAL or NUMERIC affinity would turn both into floats). It comes last, where
# ALTER TABLE puts it in a store made by an earlier version.
_ADD_VALUE_INT = "ALTER TABLE samples ADD COLUMN value_int"
_INSERT = "INSERT OR REPLACE INTO samples (series_id, ts, value, value_int, quality, gateway_ts) VALUES (?,?,?,?,?,?)"
_INSERT_FLOAT = "INSERT OR REPLACE INTO samples (series_id, ts, value, quality, gateway_ts) VALUES (?,?,?,?,?)"

_SQL_AGG = {"mean": "avg(value)", "max": "max(value)", "min": "min(value)", "count": "count(value)",
            "sum": "sum(value)"}

SeriesKey = tuple[str, str, str, str, str, str]


def _columns(value: float | int | None, where: str) -> tuple[float | None, int | str | None]:
    """The `value` and `value_int` columns of a value: a float for every number, plus an integer's exact form."""
    v = value
    if v is None or v.__class__ is float:
        return v, None  # type: ignore[return-value]
    n = exact_int(v)
    if n is None:
        return float(v), None
    check_range(n, where)
    return float(n), to_sqlite(n)


class SqliteStore(TimeSeriesStore):
    """Thread-safe: one connection per thread; writes are serialised by SQLite's own lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._series: dict[SeriesKey, int] = {}
        self._series_lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        with self._conn() as c:
            c.executescript(_SCHEMA)
            c.executescript(_FORECAST_SCHEMA)
            self._add_value_int(c)
            for row in c.execute("SELECT id, device, point, unit, meter, site, customer FROM series"):
                self._series[tuple(row[1:])] = row[0]  # type: ignore[index]

    @staticmethod
    def _add_value_int(conn: sqlite3.Connection) -> None:
        """Bring a store of an earlier version up to date: add the empty `value_int` column (no row rewritten)."""
        def missing() -> bool:
            return not any(row[1] == "value_int" for row in conn.execute("PRAGMA table_info(samples)"))

        if not missing():
            return
        conn.execute("BEGIN IMMEDIATE")  # another process may be opening the same file right now
        try:
            if missing():
                conn.execute(_ADD_VALUE_INT)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"embedded store {self.path}: {exc}") from exc
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._conns.append(conn)
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"embedded store {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"embedded store {self.path}: {exc}") from exc

    def _series_id(self, conn: sqlite3.Connection, key: SeriesKey, added: list[SeriesKey]) -> int:
        """The id of a series, made (and noted in `added`) in the caller's transaction when it is new."""
        sid = self._series.get(key)
        if sid is not None:
            return sid
        added.append(key)
        with self._series_lock:
            conn.execute(
                "INSERT OR IGNORE INTO series (device, point, unit, meter, site, customer) VALUES (?,?,?,?,?,?)", key
            )
            row = conn.execute(
                "SELECT id FROM series WHERE device=? AND point=? AND unit=? AND meter=? AND site=? AND customer=?",
                key,
            ).fetchone()
            self._series[key] = int(row[0])
            return int(row[0])

    def write(self, readings: Sequence[Reading]) -> None:
        """Write readings (a `ReadingBatch` is written column by column, without a Python object per reading)."""
        if not readings:
            return
        b = ReadingBatch.of(readings)
        added: list[SeriesKey] = []
        series = self._series
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                keys = zip(b.device, b.point, b.unit, b.meter, b.site, b.customer, strict=True)
                sids = [series.get(k) or self._series_id(conn, k, added) for k in keys]
                codes = [_QUALITY_CODE[q] for q in b.quality]
                others = [i for i, v in enumerate(b.value) if v is not None and v.__class__ is not float]
                if others:
                    rows = list(zip(sids, b.source_ts, b.value, codes, b.gateway_ts, strict=True))
                    self._insert_with_integers(conn, b, rows, others)
                else:
                    conn.executemany(_INSERT_FLOAT, zip(sids, b.source_ts, b.value, codes, b.gateway_ts, strict=True))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                for key in added:  # rolled back with the batch: a cached id of it would point at nothing
                    self._series.pop(key, None)
                raise

    @staticmethod
    def _insert_with_integers(conn: sqlite3.Connection, b: ReadingBatch,
                              rows: list[tuple[int, int, float | int | None, int, int]], others: list[int]) -> None:
        """Insert a batch in which the readings at `others` hold a number that is not a float (mostly an integer).

        Only those rows bind `value_int`: binding it, empty, on every row measured about 25 % slower. The float rows
        go first, then the others; should one (series, ts) come both ways in the batch, every row goes in order in
        one statement instead, so that the newest write still wins.
        """
        full = {i: (rows[i][0], rows[i][1],
                    *_columns(b.value[i], f"reading {b.device[i]!r}/{b.point[i]!r} at {b.source_ts[i]}"),
                    rows[i][3], rows[i][4]) for i in others}
        keys = {rows[i][:2] for i in others}
        floats = [row for i, row in enumerate(rows) if i not in full]
        if not any(row[:2] in keys for row in floats):
            conn.executemany(_INSERT_FLOAT, floats)
            conn.executemany(_INSERT, full.values())
        else:
            conn.executemany(_INSERT, [full.get(i) or (*row[:3], None, *row[3:]) for i, row in enumerate(rows)])

    def buckets(
        self, meters: Sequence[str], point: str, start_ns: int, end_ns: int, every_s: int, agg: Agg
    ) -> pd.DataFrame:
        import pandas as pd

        every_ns = every_s * 10**9
        first = -(-start_ns // every_ns) * every_ns  # first bucket start >= start_ns
        index_ns = np.arange(first, end_ns, every_ns, dtype=np.int64)
        frame = pd.DataFrame(
            np.nan, index=pd.to_datetime(index_ns, utc=True), columns=list(meters), dtype="float64"
        )
        if not meters or len(index_ns) == 0:
            return frame
        marks = ",".join("?" * len(meters))
        if agg in ("last", "first"):
            pick = "max(p.ts)" if agg == "last" else "min(p.ts)"
            select = f"{pick}, p.value, p.value_int"  # the row of min/max(ts): the stored value, exactly
        else:
            select = f"0, {_SQL_AGG[agg].replace('value', 'p.value')}, NULL"
        sql = (
            f"SELECT s.meter, (p.ts / ?) * ? AS b, {select} FROM samples p JOIN series s ON s.id = p.series_id "
            f"WHERE s.meter IN ({marks}) AND s.point = ? AND p.quality = 0 AND p.value IS NOT NULL "
            "AND p.ts >= ? AND p.ts < ? GROUP BY s.meter, b"
        )
        with self._conn() as conn:
            rows = conn.execute(sql, (every_ns, every_ns, *meters, point, first, end_ns)).fetchall()
        if rows:
            cols = {m: i for i, m in enumerate(frame.columns)}
            values = frame.to_numpy(copy=True)
            if any(row[4] is not None for row in rows):
                values = values.astype(object)
            for meter, b, _, v, vi in rows:
                values[(b - first) // every_ns, cols[meter]] = v if vi is None else from_sqlite(v, vi)
            frame = bucket_frame(values, frame.index, frame.columns)
        return frame

    def _near_boundaries(self, meters: Sequence[str], point: str, first_ns: int, every_s: int, count: int,
                         tolerance_ns: int, limit: int) -> pd.DataFrame:
        # One index range seek per series and boundary on the (series_id, ts) key: a month of 1 s readings reads the
        # few rows around each of its 2,977 boundaries, not the 2.6 million in between.
        marks = ",".join("?" * len(meters))
        sql = (
            "WITH RECURSIVE b(k, t) AS (SELECT 0, ? UNION ALL SELECT k + 1, t + ? FROM b WHERE k + 1 < ?), "
            f"s AS (SELECT id, meter FROM series WHERE meter IN ({marks}) AND point = ?), "
            "w AS (SELECT s.meter AS meter, b.k AS k, p.ts AS ts, p.value AS value, p.value_int AS value_int, "
            "row_number() OVER (PARTITION BY s.meter, b.k ORDER BY p.ts) AS rn "
            "FROM s CROSS JOIN b CROSS JOIN samples p "
            "WHERE p.series_id = s.id AND p.ts >= b.t - ? AND p.ts <= b.t + ? AND p.quality = 0 "
            "AND p.value IS NOT NULL) "
            "SELECT meter, k, ts, value, value_int FROM w WHERE rn <= ?"
        )
        tol = int(tolerance_ns)
        params = (int(first_ns), int(every_s) * 10**9, int(count), *meters, point, tol, tol, int(limit))
        with self._conn() as conn:
            rows = conn.execute(sql, params).fetchall()
        return near_frame([(m, k, ts, v if vi is None else sqlite_int(vi)) for m, k, ts, v, vi in rows], limit)

    def raw(self, device: str, point: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        import pandas as pd

        with self._conn() as conn:
            rows = conn.execute(
                "SELECT p.ts, p.value, p.quality, p.value_int FROM samples p JOIN series s ON s.id = p.series_id "
                "WHERE s.device = ? AND s.point = ? AND p.ts >= ? AND p.ts < ? ORDER BY p.ts",
                (device, point, start_ns, end_ns),
            ).fetchall()
        return pd.DataFrame(
            {
                "ts": pd.Series([r[0] for r in rows], dtype="int64"),
                "value": value_series([from_sqlite(r[1], r[3]) for r in rows]),
                "quality": pd.Series([_QUALITY_NAME[r[2]] for r in rows], dtype="object"),
            }
        )

    def latest(self, devices: Sequence[str] | None = None) -> list[LatestValue]:
        where = ""
        params: tuple[str, ...] = ()
        if devices is not None:
            if not devices:
                return []
            where = f"WHERE s.device IN ({','.join('?' * len(devices))})"
            params = tuple(devices)
        sql = (
            "SELECT s.device, s.point, s.unit, s.meter, p.ts, p.value, p.quality, p.value_int FROM series s "
            "JOIN samples p ON p.series_id = s.id AND p.ts = "
            "(SELECT max(ts) FROM samples WHERE series_id = s.id) "
            f"{where} ORDER BY s.device, s.point"
        )
        with self._conn() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [
            LatestValue(device=d, point=p, value=from_sqlite(v, vi), unit=u, quality=_QUALITY_NAME[q], source_ts=ts,
                        meter=m)
            for d, p, u, m, ts, v, q, vi in rows
        ]

    def write_forecast(self, issue: ForecastIssue, frame: pd.DataFrame) -> int:
        rows = check_forecast_frame(issue, frame)
        head = (issue.customer,)
        tail = (int(issue.issued_at_ns), issue.model, int(bool(issue.backfilled)))
        params = [(*head, int(r[0]), *tail, *(None if v != v else float(v) for v in r[1:]))
                  for r in rows.itertuples(index=False)]
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT_FORECAST, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(rows[list(FORECAST_COLUMNS)].notna().to_numpy().sum())

    def read_forecasts(self, customer: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT ts, issued_at, model, backfilled, forecast, lower80, upper80, lower95, upper95 FROM forecasts "
                "WHERE customer = ? AND ts >= ? AND ts < ?", (customer, int(start_ns), int(end_ns))).fetchall()
        return forecast_rows(rows)  # a NULL value becomes NaN in the float columns

    def count(self, start_ns: int, end_ns: int) -> tuple[int, float]:
        with self._conn() as conn:
            n, total = conn.execute(
                "SELECT count(*), coalesce(sum(value), 0) FROM samples WHERE ts >= ? AND ts < ?", (start_ns, end_ns)
            ).fetchone()
        return int(n), float(total)

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._conns.clear()
        self._local = threading.local()
