"""The InfluxDB time-series store: line-protocol writes over API v1 or v2, InfluxQL reads on /query for both.

Schema: measurement `reading`; tags customer, device, meter, point, site, unit (an empty tag is omitted, which
InfluxQL's `tag = ''` still matches); fields value (float, omitted when None), value_int (integer, only for an
integer reading: the exact int64/uint64 register, see `gateway.store.exact`), quality (string) and gateway_ts
(integer); timestamp = source_ts in ns. InfluxDB identifies a point by measurement + tag set + timestamp, so a
reading written twice is stored once: that is what makes the outbox's at-least-once delivery exactly-once.

Errors are classified, never retried here (the pipeline retries): connection errors, timeouts, 5xx, 429 and the
"fix the configuration, then retry" answers (401, 403, 404 database/bucket not found) raise `StoreUnavailable`;
anything else the server refuses (400 bad data, 413, 422) raises `StoreRejected` with the server's message, so the
pipeline can bisect the batch and set aside only the offending readings.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from collectors.base import ReadingBatch
from collectors.reading import Reading
from gateway.store.base import (
    FORECAST_COLUMNS,
    Agg,
    ForecastIssue,
    LatestValue,
    StoreError,
    StoreRejected,
    StoreUnavailable,
    TimeSeriesStore,
    check_forecast_frame,
    near_frame,
)
from gateway.store.exact import bucket_frame, from_influx, influx_int, value_series
from gateway.store.influx_config import InfluxStoreConfig
from gateway.store.influx_forecasts import (
    FORECAST_MEASUREMENT,
    READ_FIELDS,
    forecast_lines,
    frame_from_series,
    slot_for,
)
from gateway.store.line_protocol import _NO_VALUE, MAX_NS, MEASUREMENT, MIN_NS, LineEncoder

if TYPE_CHECKING:  # pandas loads when a store is read: a process that only writes (gateway.store_writer) never needs it
    import pandas as pd

log = logging.getLogger(__name__)

_AGGS: frozenset[str] = frozenset({"last", "first", "mean", "max", "min", "count", "sum"})
_METERS_PER_QUERY = 200


# -- InfluxQL ----------------------------------------------------------------------------------------------

def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _clamp(ns: int) -> int:
    return max(MIN_NS, min(MAX_NS, int(ns)))


def _server_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    if isinstance(body, dict):
        msg = body.get("error") or body.get("message")
        if msg:
            return str(msg)
    return resp.text.strip()[:500]


def classify_status(where: str, status: int, message: str) -> StoreError:
    """The store error for an HTTP answer that is not a success."""
    text = f"{where}: HTTP {status}: {message}"
    if status >= 500 or status in (401, 403, 404, 408, 429):
        return StoreUnavailable(text)
    return StoreRejected(text)


Series = dict[str, Any]


class _InfluxStore(TimeSeriesStore):
    """The query layer both API generations share: InfluxQL over HTTP on /query."""

    def __init__(self, cfg: InfluxStoreConfig, db: str, headers: Mapping[str, str], auth: httpx.BasicAuth | None):
        self.cfg = cfg
        self.db = db
        self.url = cfg.url
        self._encoder = LineEncoder()
        self._http = httpx.Client(
            base_url=cfg.url,
            headers=dict(headers),
            auth=auth,
            timeout=cfg.timeout_s,
            limits=httpx.Limits(max_keepalive_connections=4, max_connections=8),
        )
        rp = cfg.retention_policy if cfg.api == "v1" else ""
        self._from = (quote_ident(rp) + "." if rp else "") + quote_ident(MEASUREMENT)
        self._forecast_from = (quote_ident(rp) + "." if rp else "") + quote_ident(FORECAST_MEASUREMENT)

    # -- plumbing ------------------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"influxdb {self.url} ({self.cfg.api}, {self.db!r})"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"{self._where()}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 300:
            raise classify_status(f"{self._where()} {path}", resp.status_code, _server_message(resp))
        return resp

    def _before_query(self) -> None:
        """Hook: v1 creates its database on first use when asked to."""

    def query(self, q: str) -> list[list[Series]]:
        """Run InfluxQL; one list of series per statement, chunks merged."""
        self._before_query()
        data = {"q": q, "db": self.db, "epoch": "ns", "chunked": "true", "chunk_size": "10000"}
        if self.cfg.api == "v1" and self.cfg.retention_policy:
            data["rp"] = self.cfg.retention_policy
        resp = self._request("POST", "/query", data=data)
        statements: dict[int, dict[tuple[Any, ...], Series]] = {}
        for raw_line in resp.text.splitlines():
            if not raw_line.strip():
                continue
            try:
                chunk = json.loads(raw_line)
            except ValueError as exc:
                raise StoreError(f"{self._where()}: unreadable /query answer: {raw_line[:200]!r}") from exc
            if "error" in chunk:
                raise self._query_error(str(chunk["error"]), q)
            for result in chunk.get("results", []):
                if "error" in result:
                    raise self._query_error(str(result["error"]), q)
                merged = statements.setdefault(int(result.get("statement_id", 0)), {})
                for s in result.get("series", []):
                    key = (s.get("name"), tuple(sorted((s.get("tags") or {}).items())))
                    have = merged.get(key)
                    if have is None:
                        merged[key] = {"tags": s.get("tags") or {}, "columns": s["columns"],
                                       "values": list(s.get("values", []))}
                    else:
                        have["values"].extend(s.get("values", []))
        # indexed by statement id, so that a statement the server answered with nothing keeps its place
        return [list(statements.get(k, {}).values()) for k in range(max(statements, default=-1) + 1)]

    def _query_error(self, message: str, q: str) -> StoreError:
        if message.startswith("database not found"):
            return StoreUnavailable(f"{self._where()}: {message}")
        return StoreError(f"{self._where()}: query failed: {message} (query: {q[:300]})")

    def _series(self, q: str) -> list[Series]:
        results = self.query(q)
        return results[0] if results else []

    # -- TimeSeriesStore -----------------------------------------------------------------------------------
    def write(self, readings: Sequence[Reading]) -> None:
        step = self.cfg.batch_size
        b = ReadingBatch.of(readings)
        for i in range(0, len(b), step):
            body = self._encoder.encode_batch(b[i : i + step])
            if body:
                self._write_body(body)

    def _write_body(self, body: bytes) -> None:
        raise NotImplementedError

    def buckets(
        self, meters: Sequence[str], point: str, start_ns: int, end_ns: int, every_s: int, agg: Agg
    ) -> pd.DataFrame:
        import pandas as pd

        if agg not in _AGGS:
            raise StoreError(f"unknown aggregate {agg!r}; expected one of {sorted(_AGGS)}")
        if int(every_s) <= 0:
            raise StoreError(f"bucket width must be a positive number of seconds, got {every_s!r}")
        every_ns = int(every_s) * 10**9
        first = -(-int(start_ns) // every_ns) * every_ns
        end = _clamp(end_ns)
        index_ns = np.arange(first, end, every_ns, dtype=np.int64)
        columns = list(meters)
        values = np.full((len(index_ns), len(columns)), np.nan, dtype="float64")
        # first() and last() select one stored point: its value_int comes along, so an integer reads back exactly
        extra = ', "value_int"' if agg in ("first", "last") else ""
        if columns and len(index_ns):
            col_of = {m: i for i, m in enumerate(columns)}
            unique = list(col_of)
            for j in range(0, len(unique), _METERS_PER_QUERY):
                chunk = unique[j : j + _METERS_PER_QUERY]
                meter_cond = " OR ".join(f'"meter" = {quote_string(m)}' for m in chunk)
                q = (
                    f'SELECT {agg}("value"){extra} FROM {self._from} WHERE "quality" = \'good\' '  # noqa: S608 - every value goes through quote_string/quote_ident
                    f'AND "point" = {quote_string(point)} AND ({meter_cond}) '
                    f'AND time >= {first} AND time < {end} '
                    f'GROUP BY time({int(every_s)}s), "meter" fill(none)'
                )
                for s in self._series(q):
                    col = col_of.get(s["tags"].get("meter", ""))
                    if col is None:
                        continue
                    for t, v, *vi in s["values"]:
                        if v is None:
                            continue
                        row = (int(t) - first) // every_ns
                        if not 0 <= row < len(index_ns):
                            continue
                        value = from_influx(v, vi[0]) if vi and vi[0] is not None else float(v)
                        if value.__class__ is int and values.dtype != object:
                            values = values.astype(object)
                        values[row, col] = value
        return bucket_frame(values, pd.to_datetime(index_ns, utc=True), columns)

    def _near_boundaries(self, meters: Sequence[str], point: str, first_ns: int, every_s: int, count: int,
                         tolerance_ns: int, limit: int) -> pd.DataFrame:
        every_ns, tol = int(every_s) * 10**9, int(tolerance_ns)
        first = int(first_ns)
        origin = first - tol
        last = first + (int(count) - 1) * every_ns
        # One bucket per boundary, [T - tol, T - tol + every): bottom() gives its first readings for a register and,
        # unlike first(), answers with each reading's own timestamp. The range is read once, as buckets() does; one
        # statement per meter (all in one request) measured cheaper than one with GROUP BY "meter".
        rows: list[tuple[str, int, int, float | int]] = []
        unique = list(dict.fromkeys(meters))
        for j in range(0, len(unique), _METERS_PER_QUERY):
            chunk = unique[j : j + _METERS_PER_QUERY]
            statements = [
                f'SELECT bottom("value", {int(limit)}), "value_int" FROM {self._from} WHERE "quality" = \'good\' '  # noqa: S608 - every value goes through quote_string/quote_ident
                f'AND "point" = {quote_string(point)} AND "meter" = {quote_string(m)} '
                f"AND time >= {_clamp(origin)} AND time <= {_clamp(last + tol)} "
                f"GROUP BY time({every_ns}ns, {origin % every_ns}ns)"
                for m in chunk
            ]
            results = self.query("; ".join(statements))
            for m, series in zip(chunk, results, strict=False):
                for s in series:
                    for t, v, *vi in s["values"]:
                        ts = int(t)
                        k = (ts - origin) // every_ns
                        if v is not None and ts <= first + k * every_ns + tol and 0 <= k < count:
                            exact = vi[0] if vi else None
                            rows.append((m, int(k), ts, float(v) if exact is None else influx_int(v, exact)))
        return near_frame(rows, limit)

    def raw(self, device: str, point: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        import pandas as pd

        q = (
            f'SELECT "value", "value_int", "quality" FROM {self._from} WHERE "device" = {quote_string(device)} '  # noqa: S608 - every value goes through quote_string/quote_ident
            f'AND "point" = {quote_string(point)} AND time >= {_clamp(start_ns)} AND time < {_clamp(end_ns)}'
        )
        rows: list[list[Any]] = []
        for s in self._series(q):
            cols = s["columns"]
            it, iv, iq = cols.index("time"), cols.index("value"), cols.index("quality")
            ii = cols.index("value_int") if "value_int" in cols else None
            rows.extend([r[it], r[iv], r[iq], None if ii is None else r[ii]] for r in s["values"])
        rows.sort(key=lambda r: int(r[0]))  # one merged series arrives sorted; timsort makes that O(n)
        return pd.DataFrame(
            {
                "ts": pd.Series([int(r[0]) for r in rows], dtype="int64"),
                "value": value_series([None if r[2] in _NO_VALUE else from_influx(r[1], r[3]) for r in rows]),
                "quality": pd.Series([r[2] for r in rows], dtype="object"),
            }
        )

    def latest(self, devices: Sequence[str] | None = None) -> list[LatestValue]:
        where = f"time >= {MIN_NS} AND time <= {MAX_NS}"
        if devices is not None:
            if not devices:
                return []
            where += " AND (" + " OR ".join(f'"device" = {quote_string(d)}' for d in dict.fromkeys(devices)) + ")"
        q = (
            f'SELECT last("quality") AS "quality", "value", "value_int", "unit", "meter" FROM {self._from} '  # noqa: S608 - every value goes through quote_string/quote_ident
            f'WHERE {where} GROUP BY "device", "point"'
        )
        out: list[LatestValue] = []
        for s in self._series(q):
            cols = s["columns"]
            row = s["values"][-1]
            rec = dict(zip(cols, row, strict=True))
            out.append(
                LatestValue(
                    device=s["tags"].get("device", ""),
                    point=s["tags"].get("point", ""),
                    value=None if rec.get("quality") in _NO_VALUE else from_influx(rec.get("value"),
                                                                                    rec.get("value_int")),
                    unit=rec.get("unit") or "",
                    quality=str(rec.get("quality")),
                    source_ts=int(rec["time"]),
                    meter=rec.get("meter") or "",
                )
            )
        out.sort(key=lambda v: (v.device, v.point))
        return out

    # -- the forecast archive (gateway.store.influx_forecasts) ----------------------------------------------
    def _forecast_query(self, fields: str, customer: str, start_ns: int, end_ns: int) -> list[Series]:
        where = f"time >= {_clamp(start_ns)} AND time < {_clamp(end_ns)}"
        return self._series(f'SELECT {fields} FROM {self._forecast_from} '  # noqa: S608 - every value goes through quote_string/quote_ident
                            f'WHERE "customer" = {quote_string(customer)} AND {where} GROUP BY "slot"')

    def write_forecast(self, issue: ForecastIssue, frame: pd.DataFrame) -> int:
        rows = check_forecast_frame(issue, frame)
        if rows.empty:
            return 0
        first, last = int(rows["ts"].min()), int(rows["ts"].max())
        stored = self._forecast_query('"issued_at", "model"', issue.customer, first, last + 1)
        self._write_body(forecast_lines(issue, rows, slot_for(stored, issue)))
        return int(rows[list(FORECAST_COLUMNS)].notna().to_numpy().sum())

    def read_forecasts(self, customer: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        fields = ", ".join(quote_ident(f) for f in READ_FIELDS)
        return frame_from_series(self._forecast_query(fields, customer, start_ns, end_ns))

    def count(self, start_ns: int, end_ns: int) -> tuple[int, float]:
        where = f"time >= {_clamp(start_ns)} AND time < {_clamp(end_ns)}"
        q = (
            f'SELECT count("quality") FROM {self._from} WHERE {where}; '  # noqa: S608 - only integers interpolated
            f'SELECT sum("value") FROM {self._from} WHERE {where} '
            f"AND \"quality\" != 'bad' AND \"quality\" != 'comm_lost'"
        )
        results = self.query(q)
        n = sum(int(row[1] or 0) for s in (results[0] if results else []) for row in s["values"])
        total = sum(float(row[1] or 0.0) for s in (results[1] if len(results) > 1 else []) for row in s["values"])
        return n, total

    def close(self) -> None:
        self._http.close()


class InfluxV1Store(_InfluxStore):
    """InfluxDB 1.x: `/write?db=&rp=` with line protocol over a keep-alive httpx client, user/password auth."""

    def __init__(self, cfg: InfluxStoreConfig, password: str = "") -> None:
        if cfg.api != "v1":
            raise StoreError("InfluxV1Store needs api = 'v1'")
        auth = httpx.BasicAuth(cfg.username, password) if cfg.username else None
        super().__init__(cfg, cfg.database, {}, auth)
        self._db_ready = not cfg.create_database
        self._write_params = {"db": cfg.database, "precision": "n"}
        if cfg.retention_policy:
            self._write_params["rp"] = cfg.retention_policy

    def _before_query(self) -> None:
        if not self._db_ready:
            self._create_database()

    def _create_database(self) -> None:
        try:
            resp = self._http.post("/query", data={"q": f"CREATE DATABASE {quote_ident(self.cfg.database)}"})
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"{self._where()}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 403:
            # A user with write but no admin rights: the database may well exist; let the writes tell.
            log.warning("influxdb %s: not allowed to create database %r (%s); assuming it exists",
                        self.url, self.cfg.database, _server_message(resp))
        elif resp.status_code >= 300:
            raise classify_status(f"{self._where()} CREATE DATABASE", resp.status_code, _server_message(resp))
        else:
            log.info("influxdb %s: database %r ready", self.url, self.cfg.database)
        self._db_ready = True

    def _write_body(self, body: bytes) -> None:
        if not self._db_ready:
            self._create_database()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.cfg.gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self._request("POST", "/write", params=self._write_params, content=body, headers=headers)


class InfluxV2Store(_InfluxStore):
    """InfluxDB 2.x/3.x/Cloud/1.8+: writes through influxdb-client's synchronous write API (gzip), token auth."""

    def __init__(self, cfg: InfluxStoreConfig, token: str) -> None:
        if cfg.api != "v2":
            raise StoreError("InfluxV2Store needs api = 'v2'")
        from influxdb_client import InfluxDBClient, WriteOptions
        from influxdb_client.client.write_api import WriteType

        super().__init__(cfg, cfg.bucket, {"Authorization": f"Token {token}"}, None)
        # retries=False: the pipeline owns retrying; a write call must fail fast and be classified.
        self._client = InfluxDBClient(
            url=cfg.url, token=token, org=cfg.org, timeout=int(cfg.timeout_s * 1000), enable_gzip=cfg.gzip,
            retries=False,
        )
        self._write_api = self._client.write_api(
            write_options=WriteOptions(write_type=WriteType.synchronous, batch_size=cfg.batch_size)
        )

    def _write_body(self, body: bytes) -> None:
        import urllib3
        from influxdb_client import WritePrecision
        from influxdb_client.client.exceptions import InfluxDBError

        try:
            self._write_api.write(self.cfg.bucket, self.cfg.org, body, write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except InfluxDBError as exc:
            status = getattr(exc, "status", None)
            if status is None and exc.response is not None:
                status = getattr(exc.response, "status", None)
            if status is None:
                raise StoreUnavailable(f"{self._where()}: {exc.message}") from exc
            raise classify_status(f"{self._where()} /api/v2/write", int(status), exc.message) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"{self._where()}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        try:
            self._write_api.close()
            self._client.close()
        finally:
            super().close()


def _secret(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name)
    if not value:
        raise StoreError(f"influxdb store: {what} is read from the environment variable {name!r}, which is not set")
    return value


def build_influx_store(cfg: InfluxStoreConfig, environ: Mapping[str, str]) -> TimeSeriesStore:
    """The store for `cfg`, with its secret taken from `environ` (e.g. os.environ)."""
    if cfg.api == "v1":
        password = _secret(environ, cfg.password_env, "the password (password_env)") if cfg.password_env else ""
        return InfluxV1Store(cfg, password)
    return InfluxV2Store(cfg, _secret(environ, cfg.token_env, "the token (token_env)"))


__all__ = [
    "InfluxStoreConfig",
    "InfluxV1Store",
    "InfluxV2Store",
    "LineEncoder",
    "build_influx_store",
    "quote_ident",
    "quote_string",
]
