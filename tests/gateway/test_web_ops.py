"""Operations surface of the web app: /health and /ready, request ids in headers and logs, gzip, cache headers, and
offline /docs and /redoc in a real browser with no request leaving loopback."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gateway import logs
from gateway.config import load_config, parse_config
from gateway.logs import setup_logging
from gateway.portal import plotly_js
from gateway.runtime import Gateway
from tests.gateway.api.world import RunningApi, World, build_world, free_port
from tests.gateway.portal.conftest import ARGS, CHROMIUM
from tests.gateway.procs import Proc
from tests.servers.postgres import PG_BIN, _cmd, postgres_server

EXE = [sys.executable, "-m", "gateway.cli"]
KEY = "test-secret-key-0123456789abcdef"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("opsworld"))


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[RunningApi]:
    with RunningApi(world.gw) as running:
        yield running


@pytest.fixture
def client(api: RunningApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as c:
        yield c


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for name in logs._applied:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logs._applied.clear()
    root.handlers[:] = handlers
    root.setLevel(level)


# -- /health and /ready -------------------------------------------------------------------------------------------

def test_health_is_alive_and_ready_waits_for_the_collectors(client):
    # The test world's devices are configured but its collectors never run: alive, not ready, and /ready says why.
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not_ready"
    assert {k: v["ok"] for k, v in body["checks"].items()} == {"store": True, "database": True, "outbox": True,
                                                               "collectors": False}
    assert body["checks"]["collectors"]["error"].startswith("not yet polled: acme-dev, beta-dev, gamma-dev")
    assert body["checks"]["outbox"]["depth"] == 0


@pytest.fixture
def modbus_sim() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-m", "collectors.sim.modbus_server", "--meters", "1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["ports"][0]
    finally:
        proc.terminate()
        proc.wait(10)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=10)
    except httpx.TransportError:
        return None


def test_running_gateway_becomes_ready_and_logs_json_with_request_ids(tmp_path, modbus_sim):
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        '[gateway]\ndata_dir = "state"\nlog_format = "json"\nrun_scheduler = false\n'
        '[gateway.log_levels]\n"gateway.access" = "INFO"\n\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nwarm_days = 0\n\n'
        '[[customers]]\nid = "c1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n\n'
        '[[meters]]\nid = "m1"\nsite = "s1"\ndevice = "dev1"\n\n'
        f'[[devices]]\ntype = "modbus"\nname = "dev1"\nhost = "127.0.0.1"\nport = {modbus_sim}\nunit = 1\n'
        'profile = "generic"\ninterval_s = 0.2\n')
    env = {**os.environ, "GATEWAY_SECRET_KEY": KEY}
    proc = Proc([*EXE, "run", "--config", str(cfg)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        proc.wait_for(lambda: (r := _get(base + "/health")) is not None and r.status_code == 200, "/health")
        proc.wait_for(lambda: (r := _get(base + "/ready")) is not None and r.status_code == 200, "/ready")
        body = httpx.get(base + "/ready", timeout=10).json()
        assert body["status"] == "ready"
        assert body["checks"]["collectors"] == {"ok": True, "devices": 1, "online": 1}
        r = httpx.get(base + "/api/v1/customers", headers={"X-Request-ID": "lb-7f3a.42"}, timeout=10)
        assert r.status_code == 401
        assert r.headers["x-request-id"] == "lb-7f3a.42"
        proc.wait_for(lambda: any("lb-7f3a.42" in line for line in proc.err), "the access line")
    finally:
        code, _, err = proc.finish(signal.SIGTERM)
    assert code == 0, err
    records = [json.loads(line) for line in err.splitlines() if line.strip()]  # every stderr line is a JSON record
    assert any(r["logger"] == "gateway" and r["message"] == "gateway energy-gateway running" for r in records)
    access = [r for r in records if r.get("request_id") == "lb-7f3a.42"]
    assert [(r["logger"], r["level"], r["message"].split()[:3]) for r in access] == [
        ("gateway.access", "INFO", ["GET", "/api/v1/customers", "401"])]


def _stop_postgres(datadir: Path) -> None:
    subprocess.run(_cmd([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
                   check=True, capture_output=True)


def test_ready_fails_when_the_registry_database_goes_away(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_SECRET_KEY", KEY)
    with postgres_server() as pg:
        url = pg.create_database("ready")
        (tmp_path / "gateway.toml").write_text(
            f'[gateway]\ndata_dir = "{tmp_path / "state"}"\nrun_scheduler = false\n'
            f'[api]\nport = 0\nwarm_days = 0\n[database]\nurl = "{url}"\n'
            '[[customers]]\nid = "c1"\n[[sites]]\nid = "s1"\ncustomer = "c1"\n')
        gw = Gateway.from_config(load_config(tmp_path / "gateway.toml"))
        with RunningApi(gw) as running, httpx.Client(base_url=running.url, timeout=60) as c:
            ready = c.get("/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["collectors"] == {"ok": True, "devices": 0, "online": 0}
            _stop_postgres(pg.datadir)
            r = c.get("/ready")
            assert r.status_code == 503
            checks = r.json()["checks"]
            assert {k: v["ok"] for k, v in checks.items()} == {"store": True, "database": False, "outbox": True,
                                                               "collectors": True}
            assert checks["database"]["error"]  # one line saying why
            assert "\n" not in checks["database"]["error"]
            assert c.get("/health").status_code == 200  # alive: a restart would not bring the database back
        gw.pipeline.stop(True, 10.0)
        gw.store.close()
        gw.outbox.close()


# -- request ids ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sent", "kept"), [
    ("abc-123", True),
    ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("two words", False),
    ("<script>", False),
    ("", False),
])
def test_request_id_header_keeps_a_sane_one_and_replaces_the_rest(client, sent, kept):
    r = client.get("/health", headers={"X-Request-ID": sent} if sent else {})
    rid = r.headers["x-request-id"]
    if kept:
        assert rid == sent
    else:
        assert rid != sent
        assert len(rid) == 32
        int(rid, 16)


def test_every_record_logged_while_serving_a_request_carries_its_id(client):
    buf = io.StringIO()
    setup_logging(parse_config({"gateway": {"log_levels": {"gateway.access": "INFO"}}}), stream=buf,
                  log_format="json")
    client.post("/api/v1/auth/token", data={"username": "nobody", "password": "wrong-password"},
                headers={"X-Request-ID": "req-login-1"})
    records = [json.loads(line) for line in buf.getvalue().splitlines()]
    access = [r for r in records if r["logger"] == "gateway.access"]
    assert [(r["request_id"], r["message"].split()[:3]) for r in access] == [
        ("req-login-1", ["POST", "/api/v1/auth/token", "401"])]

    buf.seek(0)
    buf.truncate()
    logging.getLogger("gateway.test").warning("outside any request")
    outside = json.loads(buf.getvalue())
    assert outside["message"] == "outside any request"
    assert "request_id" not in outside


# -- gzip and cache headers -----------------------------------------------------------------------------------------

def test_plotly_is_sent_gzipped_with_cache_headers(client):
    raw = plotly_js().read_bytes()
    r = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "max-age=" in r.headers["cache-control"]
    assert "accept-encoding" in r.headers["vary"].lower()
    assert r.content == raw  # httpx undid the gzip: the same file
    assert _wire_bytes(client, "/static/plotly.min.js") < len(raw) / 3

    plain = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(plain.content) == len(raw)


@pytest.mark.parametrize("name", ["portal.js", "portal.css"])
def test_portal_files_are_revalidated(client, name):
    r = client.get(f"/static/{name}", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["etag"]


def test_api_json_is_gzipped(client):
    with httpx.Client(base_url=client.base_url, timeout=30) as c:
        r = c.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip"
        assert "/api/v1/customers" in r.json()["paths"]
        assert _wire_bytes(c, "/openapi.json") < len(r.content) / 3
        small = c.get("/health", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers  # not worth compressing under 1000 bytes


def test_docs_files_come_from_the_package_with_cache_headers(client):
    page = client.get("/docs").text
    assert "cdn.jsdelivr.net" not in page
    assert "/static-offline-docs/swagger-ui-bundle.js" in page
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        r = client.get(f"/static-offline-docs/{name}", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200, name
        assert r.headers["cache-control"] == "public, max-age=86400"
        assert r.headers["content-encoding"] == "gzip"
    redoc = client.get("/redoc")
    assert "fonts.googleapis.com" not in redoc.text
    docs = client.get("/docs")
    assert "content-security-policy" not in docs.headers  # Swagger UI starts with an inline script
    assert docs.headers["x-frame-options"] == redoc.headers["x-frame-options"] == "DENY"
    csp = redoc.headers["content-security-policy"]  # a policy that keeps the browser on this server
    assert "default-src 'self'" in csp
    assert "img-src 'self' data: blob:" in csp


def _wire_bytes(c: httpx.Client, path: str) -> int:
    """Bytes on the wire for `path` asked with gzip (a streamed file has no Content-Length): checked to be gzip."""
    with c.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as r:
        body = b"".join(r.iter_raw())
    assert gzip.decompress(body)
    return len(body)


# -- offline /docs and /redoc in the browser ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _offline_page(browser, api: RunningApi):  # type: ignore[no-untyped-def]
    """A page whose every request is recorded; any request that would leave loopback is refused."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    requests: list[str] = []
    errors: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        requests.append(r.request.url)
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, requests, errors


def test_docs_render_offline_in_the_browser(browser, api):
    context, page, requests, errors = _offline_page(browser, api)
    try:
        page.goto(api.url + "/docs")
        page.wait_for_selector(".swagger-ui .opblock-summary-path")  # the operations, drawn from /openapi.json
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/v1/customers" in p for p in paths)
        assert "energy-gateway" in page.locator(".swagger-ui .title").inner_text()
    finally:
        context.close()
    assert errors == []
    assert requests, "the page made no request"
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in requests if u.startswith("http")), requests
    assert any(u.endswith("/openapi.json") for u in requests)


def test_redoc_renders_offline_in_the_browser(browser, api):
    context, page, requests, errors = _offline_page(browser, api)
    try:
        page.goto(api.url + "/redoc")
        page.wait_for_selector(".redoc-wrap .api-content h1")  # the API's title, drawn from /openapi.json
        assert "energy-gateway" in page.locator(".redoc-wrap .api-content h1").first.inner_text()
    finally:
        context.close()
    assert errors == []
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in requests if u.startswith("http")), requests


def test_an_unexpected_error_is_logged_and_answered_with_the_request_id(world):
    from fastapi.testclient import TestClient

    from gateway.web import create_app

    app = create_app(world.gw)

    @app.get("/test-boom")
    def boom() -> None:
        raise RuntimeError("register map broken")

    buf = io.StringIO()
    setup_logging(parse_config({}), stream=buf, log_format="json")
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/test-boom", headers={"X-Request-ID": "req-boom-1"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "req-boom-1"
    assert r.json()["error"]["code"]
    records = [json.loads(line) for line in buf.getvalue().splitlines()]
    (error,) = [rec for rec in records if rec["level"] == "ERROR" and rec["logger"] == "gateway.api.errors"]
    assert error["request_id"] == "req-boom-1"
    assert "RuntimeError: register map broken" in error["exc"]
    (access,) = [rec for rec in records if rec["logger"] == "gateway.access"]  # WARNING: shown without asking
    assert (access["level"], access["request_id"], access["message"].split()[:3]) == (
        "WARNING", "req-boom-1", ["GET", "/test-boom", "500"])


@pytest.mark.parametrize("path", ["/static/plotly.min.js", "/static/portal.js", "/static/portal.css"])
def test_a_portal_file_the_browser_holds_is_answered_304(client, path):
    first = client.get(path, headers={"Accept-Encoding": "gzip"})
    etag = first.headers["etag"]
    again = client.get(path, headers={"If-None-Match": etag, "Accept-Encoding": "gzip"})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == first.headers["cache-control"]
    assert "content-encoding" not in again.headers
    assert again.headers["x-request-id"]
    listed = client.get(path, headers={"If-None-Match": f'"other", {etag}'})
    assert listed.status_code == 304
    # A file changed since (an upgrade): the new one, whole (uncompressed: gzip is skipped for conditional GETs).
    changed = client.get(path, headers={"If-None-Match": '"not-this-version"', "Accept-Encoding": "gzip"})
    assert changed.status_code == 200
    assert changed.content == first.content
