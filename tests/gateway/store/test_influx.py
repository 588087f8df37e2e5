"""InfluxDB backend specifics: line protocol, error classification, v1 auth and retention policies, the v2 path."""

from __future__ import annotations

import json
import math
import time
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from collectors.reading import Quality, Reading
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.store.base import StoreError, StoreRejected, StoreUnavailable
from gateway.store.influx import (
    InfluxStoreConfig,
    InfluxV1Store,
    LineEncoder,
    build_influx_store,
    quote_ident,
    quote_string,
)
from tests.gateway.store.conftest import make_v1, make_v2
from tests.servers.influx import InfluxServer, run_influxd
from tests.servers.influx_v2_proxy import InfluxV2Proxy

S = 10**9
T0 = 1_767_225_600 * S


def rd(device: str = "d", value: float | None = 1.0, ts: int = T0, **kw: object) -> Reading:
    return Reading(device=device, point=str(kw.pop("point", "p")), value=value, source_ts=ts, gateway_ts=ts + 7,
                   **kw)  # type: ignore[arg-type]


def _name() -> str:
    return f"i_{uuid.uuid4().hex[:12]}"


# -- line protocol --------------------------------------------------------------------------------------------

def test_line_protocol_escapes_tags_and_omits_empty_ones() -> None:
    r = Reading(device="pump 1,a=b", point="active_power_kw", value=12.5, unit="kW", source_ts=T0 + 1,
                gateway_ts=T0 + 2, customer="", site="厂区", meter='m"1')
    assert LineEncoder().line(r) == (
        'reading,device=pump\\ 1\\,a\\=b,meter=m"1,point=active_power_kw,site=厂区,unit=kW '
        f'value=12.5,quality="good",gateway_ts={T0 + 2}i {T0 + 1}'
    )
    lost = Reading(device="d", point="p", value=None, quality=Quality.COMM_LOST, source_ts=5, gateway_ts=6)
    assert LineEncoder().line(lost) == 'reading,device=d,point=p quality="comm_lost",gateway_ts=6i 5'


@pytest.mark.parametrize(
    ("reading", "why"),
    [
        (rd(device="ends with\\"), "backslash"),
        (rd(device="line\nbreak"), "line break"),
        (rd(meter="a\\ b"), "backslash"),
        (rd(value=math.nan), "not a finite number"),
        (rd(value=math.inf), "not a finite number"),
        (rd(device=""), "must not be empty"),
        (rd(ts=2**63 - 1), "time range"),
    ],
)
def test_readings_line_protocol_cannot_carry_are_rejected_by_name(reading: Reading, why: str) -> None:
    with pytest.raises(StoreRejected, match=why) as info:
        LineEncoder().encode([rd(device="fine"), reading])
    assert repr(reading.device) in str(info.value)


def test_influxql_quoting() -> None:
    assert quote_string("it's a \\ test") == "'it\\'s a \\\\ test'"
    assert quote_ident('we"ird') == '"we\\"ird"'


# -- configuration -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://x:8086", "api": "v1"}, "needs 'database'"),
        ({"url": "http://x:8086", "api": "v2", "org": "o", "bucket": "b"}, "needs token_env"),
        ({"url": "http://x:8086", "api": "v2", "org": "o", "bucket": "b", "token_env": "T", "database": "d"},
         "database belong to api = 'v1'"),
        ({"url": "http://x:8086", "api": "v1", "database": "d", "bucket": "b"}, "bucket belong to api = 'v2'"),
        ({"url": "influx:8086", "api": "v1", "database": "d"}, "http:// or https://"),
        ({"url": "http://x:8086", "api": "v1", "database": "d", "password": "hunter2"}, "Extra inputs"),
        ({"url": "http://x:8086", "api": "v1", "database": "d", "batch_size": 0}, "batch_size"),
        ({"url": "http://x:8086", "api": "v3", "database": "d"}, "api"),
    ],
)
def test_bad_config_is_refused_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        InfluxStoreConfig(type="influxdb", **fields)  # type: ignore[arg-type]


def test_missing_secret_names_the_environment_variable() -> None:
    cfg = InfluxStoreConfig(url="http://127.0.0.1:1", api="v2", org="o", bucket="b", token_env="GW_INFLUX_TOKEN")
    with pytest.raises(StoreError, match="GW_INFLUX_TOKEN"):
        build_influx_store(cfg, {})
    cfg1 = InfluxStoreConfig(url="http://127.0.0.1:1", database="d", username="u", password_env="GW_INFLUX_PW")
    with pytest.raises(StoreError, match="GW_INFLUX_PW"):
        build_influx_store(cfg1, {"OTHER": "x"})


# -- v1 against the real influxd ------------------------------------------------------------------------------

def _recording(store: object) -> list[httpx.Request]:
    seen: list[httpx.Request] = []
    store._http.event_hooks["request"].append(seen.append)  # type: ignore[attr-defined]
    return seen


@pytest.mark.parametrize("use_gzip", [True, False])
def test_v1_writes_in_batches_and_gzip_when_asked(influxd: InfluxServer, use_gzip: bool) -> None:
    store = make_v1(influxd, _name(), batch_size=100, gzip=use_gzip)
    seen = _recording(store)
    try:
        store.write([rd(f"d{i % 9}", float(i), T0 + i * S) for i in range(1050)])
        writes = [r for r in seen if r.url.path == "/write"]
        assert len(writes) == 11
        assert all((r.headers.get("content-encoding") == "gzip") is use_gzip for r in writes)
        assert store.count(T0, T0 + 2000 * S) == (1050, float(sum(range(1050))))
    finally:
        store.close()


def test_v1_missing_database_is_unavailable_unless_created(influxd: InfluxServer) -> None:
    cfg = InfluxStoreConfig(url=influxd.url, database=_name(), create_database=False)
    store = InfluxV1Store(cfg)
    try:
        with pytest.raises(StoreUnavailable, match="database not found"):
            store.write([rd()])
        with pytest.raises(StoreUnavailable, match="database not found"):
            store.latest()
    finally:
        store.close()
    created = make_v1(influxd, cfg.database)  # create_database=True
    try:
        assert created.latest() == []  # reading first also creates it
        created.write([rd()])
        assert created.count(T0, T0 + 1) == (1, 1.0)
    finally:
        created.close()


def test_v1_server_refusal_is_rejected_with_the_server_message(influxd: InfluxServer, influx_db: str) -> None:
    # Someone wrote `value` as a string first: InfluxDB now refuses floats in that shard.
    r = httpx.post(f"{influxd.url}/write", params={"db": influx_db},
                   content=f'reading,device=x,point=p value="text" {T0}')
    assert r.status_code == 204
    store = make_v1(influxd, influx_db)
    try:
        with pytest.raises(StoreRejected, match="field type conflict") as info:
            store.write([rd(value=2.0)])
        assert "HTTP 400" in str(info.value)
    finally:
        store.close()


def test_pipeline_sets_aside_only_the_reading_the_store_refuses(influxd: InfluxServer, tmp_path: Path) -> None:
    store = make_v1(influxd, _name())
    pipe = Pipeline(outbox=Outbox(tmp_path / "ob.sqlite"), store=store, retry_initial_s=0.05)
    pipe.start()
    try:
        good = [rd(f"d{i}", float(i), T0 + i * S) for i in range(40)]
        bad = rd("trailing\\", 1.0, T0)
        pipe.ingest([*good[:17], bad, *good[17:]])
        assert pipe.flush(timeout=30)
        assert store.count(T0, T0 + 100 * S) == (40, float(sum(range(40))))
        dead = pipe.outbox.dead_letters()
        assert [d.device for d, _ in dead] == ["trailing\\"]
        assert "backslash" in dead[0][1]
    finally:
        pipe.stop(timeout=5)
        pipe.outbox.close()
        store.close()


def test_v1_retention_policy_is_used_for_writes_and_reads(influxd: InfluxServer, influx_db: str) -> None:
    influxd.query(f'CREATE RETENTION POLICY "week" ON "{influx_db}" DURATION 7d REPLICATION 1')
    store = make_v1(influxd, influx_db, retention_policy="week")
    now = time.time_ns()
    try:
        store.write([rd(value=3.0, ts=now - 60 * S)])
        assert store.count(now - 3600 * S, now) == (1, 3.0)
        in_rp = influxd.query('SELECT count("quality") FROM "week"."reading"', db=influx_db)
        assert in_rp["results"][0]["series"][0]["values"][0][1] == 1  # type: ignore[index]
        in_default = influxd.query('SELECT count("quality") FROM "autogen"."reading"', db=influx_db)
        assert "series" not in in_default["results"][0]  # type: ignore[index]
        with pytest.raises(StoreRejected, match="retention policy"):
            store.write([rd(value=4.0, ts=now - 30 * 24 * 3600 * S)])  # older than the policy keeps
    finally:
        store.close()


def test_v1_username_and_password_against_an_auth_enabled_influxd(tmp_path: Path) -> None:
    with run_influxd(tmp_path, auth=True) as server:
        server.query("CREATE USER \"admin\" WITH PASSWORD 's3cret pw' WITH ALL PRIVILEGES")
        cfg = InfluxStoreConfig(url=server.url, database="secured", create_database=True, username="admin",
                                password_env="GW_PW")
        store = build_influx_store(cfg, {"GW_PW": "s3cret pw"})
        wrong = build_influx_store(cfg, {"GW_PW": "nope"})
        try:
            store.write([rd(value=5.0)])
            assert store.count(T0, T0 + 1) == (1, 5.0)
            with pytest.raises(StoreUnavailable, match="HTTP 401"):
                wrong.write([rd(value=6.0)])
            with pytest.raises(StoreUnavailable, match="HTTP 401"):
                wrong.count(T0, T0 + 1)
            # a plain writer may not CREATE DATABASE; with create_database on it still writes to the existing one
            server.query("CREATE USER \"writer\" WITH PASSWORD 'w'", auth=("admin", "s3cret pw"))
            server.query('GRANT ALL ON "secured" TO "writer"', auth=("admin", "s3cret pw"))
            writer = build_influx_store(cfg.model_copy(update={"username": "writer"}), {"GW_PW": "w"})
            try:
                writer.write([rd(value=7.0, ts=T0 + 1)])
                assert writer.count(T0, T0 + 2) == (2, 12.0)
            finally:
                writer.close()
        finally:
            store.close()
            wrong.close()


def test_reads_larger_than_one_chunk_come_back_whole(influxd: InfluxServer) -> None:
    store = make_v1(influxd, _name())
    try:
        n = 25_000  # the query layer asks for 10,000-row chunks
        store.write([rd("big", float(i), T0 + i * 1000) for i in range(n)])
        frame = store.raw("big", "p", T0, T0 + n * 1000)
        assert len(frame) == n
        assert frame["ts"].is_monotonic_increasing
        assert frame["value"].sum() == float(sum(range(n)))
    finally:
        store.close()


def test_buckets_over_many_meters(influxd: InfluxServer) -> None:
    store = make_v1(influxd, _name())
    try:
        meters = [f"m{i:03d}" for i in range(450)]  # more than one query's worth of meter conditions
        store.write([rd(f"d{i}", float(i), T0 + i * S, meter=m) for i, m in enumerate(meters)])
        frame = store.buckets(meters, "p", T0, T0 + 3600 * S, 3600, "sum")
        assert frame.iloc[0].tolist() == [float(i) for i in range(450)]
        with pytest.raises(StoreError, match="unknown aggregate"):
            store.buckets(meters, "p", T0, T0 + 3600 * S, 3600, "median")  # type: ignore[arg-type]
    finally:
        store.close()


# -- v2 through influxdb-client and the test proxy -------------------------------------------------------------

def test_v2_writes_gzip_with_token_through_the_v2_api(influxd: InfluxServer, influx_v2_proxy: InfluxV2Proxy) -> None:
    bucket = _name()
    store = make_v2(influx_v2_proxy, influxd, bucket, batch_size=500)
    before = len(influx_v2_proxy.requests)
    try:
        store.write([rd(f"d{i % 4}", float(i), T0 + i * S) for i in range(1200)])
        assert store.count(T0, T0 + 2000 * S) == (1200, float(sum(range(1200))))
        seen = influx_v2_proxy.requests[before:]
        writes = [h for m, p, h in seen if p == "/api/v2/write"]
        assert len(writes) == 3
        lower = [{k.lower(): v for k, v in h.items()} for h in writes]
        assert all(h.get("content-encoding") == "gzip" for h in lower)
        assert all(h.get("authorization") == f"Token {influx_v2_proxy.token}" for h in lower)
        queries = [h for m, p, h in seen if p == "/query"]
        assert queries
        assert all(h.get("Authorization") == f"Token {influx_v2_proxy.token}" for h in queries)
    finally:
        store.close()


def test_v2_wrong_token_or_missing_bucket_is_unavailable(
    influxd: InfluxServer, influx_v2_proxy: InfluxV2Proxy
) -> None:
    cfg = InfluxStoreConfig(url=influx_v2_proxy.url, api="v2", org=influx_v2_proxy.org, bucket=_name(),
                            token_env="TOK")
    wrong = build_influx_store(cfg, {"TOK": "not-the-token"})
    missing = build_influx_store(cfg, {"TOK": influx_v2_proxy.token})  # bucket never created
    try:
        with pytest.raises(StoreUnavailable, match="HTTP 401"):
            wrong.write([rd()])
        with pytest.raises(StoreUnavailable, match="HTTP 401"):
            wrong.latest()
        with pytest.raises(StoreUnavailable, match="database not found"):
            missing.write([rd()])
    finally:
        wrong.close()
        missing.close()


def test_v2_server_refusal_is_rejected_with_the_server_message(
    influxd: InfluxServer, influx_v2_proxy: InfluxV2Proxy, influx_db: str
) -> None:
    httpx.post(f"{influxd.url}/write", params={"db": influx_db}, content=f'reading,device=x,point=p value="s" {T0}')
    cfg = InfluxStoreConfig(url=influx_v2_proxy.url, api="v2", org=influx_v2_proxy.org, bucket=influx_db,
                            token_env="TOK")
    store = build_influx_store(cfg, {"TOK": influx_v2_proxy.token})
    try:
        with pytest.raises(StoreRejected, match="field type conflict"):
            store.write([rd(value=1.0)])
    finally:
        store.close()


@pytest.mark.parametrize(("precision", "factor"), [("ns", 1), ("us", 10**3), ("ms", 10**6), ("s", 10**9)])
def test_proxy_translates_write_precision(
    influxd: InfluxServer, influx_v2_proxy: InfluxV2Proxy, influx_db: str, precision: str, factor: int
) -> None:
    """The proxy itself: a v2 write at each precision lands at the same instant in influxd."""
    r = httpx.post(
        f"{influx_v2_proxy.url}/api/v2/write",
        params={"org": influx_v2_proxy.org, "bucket": influx_db, "precision": precision},
        headers={"Authorization": f"Token {influx_v2_proxy.token}"},
        content=f"reading,device=x,point=p value=1 {T0 // factor}",
    )
    assert r.status_code == 204, r.text
    got = influxd.query('SELECT "value" FROM "reading"', db=influx_db)
    assert got["results"][0]["series"][0]["values"] == [[T0, 1]]  # type: ignore[index]


# -- the fixtures themselves ------------------------------------------------------------------------------------

def test_missing_influxd_binary_gives_a_clear_error(tmp_path: Path) -> None:
    from tests.servers.influx import InfluxdError

    with pytest.raises(InfluxdError, match="apt-get install influxdb"):
        InfluxServer(tmp_path, binary=str(tmp_path / "no-influxd"))


def test_restart_keeps_data_dir_and_port(tmp_path: Path) -> None:
    with run_influxd(tmp_path) as server:
        server.create_database("keep")
        httpx.post(f"{server.url}/write", params={"db": "keep"}, content=b"m v=1 1").raise_for_status()
        url = server.url
        server.stop()
        assert not server.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/ping", timeout=2)
        server.start()
        assert server.url == url
        got = server.query('SELECT "v" FROM "m"', db="keep")
        assert got["results"][0]["series"][0]["values"] == [[1, 1]]  # type: ignore[index]


# -- answers a healthy influxd never gives (5xx, 413, a hang): a scripted HTTP server stands in -----------------

class _Scripted:
    """Answers every request with one fixed status and InfluxDB-style error body, or never answers (status 0)."""

    def __init__(self, status: int) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.release = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if status == 0:
                    outer.release.wait(30)
                    return
                body = json.dumps({"error": f"scripted {status}", "code": "x", "message": f"scripted {status}"})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            do_GET = do_POST = _any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize(
    ("status", "error"),
    [(500, StoreUnavailable), (503, StoreUnavailable), (429, StoreUnavailable), (0, StoreUnavailable),
     (413, StoreRejected), (400, StoreRejected)],
)
def test_write_answers_are_classified(api: str, status: int, error: type[StoreError]) -> None:
    fake = _Scripted(status)
    fields = {"database": "d"} if api == "v1" else {"org": "o", "bucket": "b", "token_env": "T"}
    store = build_influx_store(
        InfluxStoreConfig(url=fake.url, api=api, timeout_s=0.5, **fields), {"T": "t"}  # type: ignore[arg-type]
    )
    try:
        with pytest.raises(error) as info:
            store.write([rd()])
        assert type(info.value) is error
        if status:
            assert f"HTTP {status}" in str(info.value)
            assert f"scripted {status}" in str(info.value)  # the server's own message is kept
    finally:
        store.close()
        fake.close()


def test_influxd_crash_mid_stream_loses_nothing_it_confirmed(tmp_path: Path) -> None:
    with run_influxd(tmp_path) as server:
        store = make_v1(server, "crash", batch_size=500)
        pipe = Pipeline(outbox=Outbox(tmp_path / "ob.sqlite"), store=store, batch_size=500,
                        retry_initial_s=0.1, retry_max_s=0.5)
        pipe.start()
        try:
            fed = 0
            for k in range(60):
                pipe.ingest([rd(f"d{i % 5}", float(fed + i), T0 + (fed + i) * 1000) for i in range(500)])
                fed += 500
                if k == 30:
                    server.kill()  # SIGKILL while writes are in flight
                    time.sleep(1)
                    server.start()
                time.sleep(0.02)
            assert pipe.flush(timeout=60), pipe.stats()
            assert store.count(T0, T0 + fed * 1000) == (fed, float(sum(range(fed))))
            assert pipe.stats()["dropped"] == 0
        finally:
            pipe.stop(flush=False, timeout=5)
            pipe.outbox.close()
            store.close()


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_one_store_serves_concurrent_writers_and_readers(
    api: str, influxd: InfluxServer, influx_v2_proxy: InfluxV2Proxy
) -> None:
    import threading

    store = make_v1(influxd, _name()) if api == "v1" else make_v2(influx_v2_proxy, influxd, _name())
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for b in range(10):
                base = (w * 10 + b) * 100
                store.write([rd(f"w{w}", float(base + i), T0 + (base + i) * S) for i in range(100)])
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(20):
                store.count(T0, T0 + 10**6 * S)
                store.latest()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert store.count(T0, T0 + 10**6 * S) == (4000, float(sum(range(4000))))
        assert sorted(v.device for v in store.latest()) == ["w0", "w1", "w2", "w3"]
    finally:
        store.close()


def test_first_start_moves_off_a_port_someone_else_took(tmp_path: Path) -> None:
    import socket

    from tests.servers.influx import InfluxdError

    server = InfluxServer(tmp_path / "a")
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        taken = server.port
        server.start()
        assert server.port != taken
        assert httpx.get(f"{server.url}/ping").status_code == 204
        server.stop()
        squatter.close()
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        with pytest.raises(InfluxdError, match="could not bind"):  # a restart must keep its port: clear error
            server.start()
    finally:
        squatter.close()
        server.stop()
