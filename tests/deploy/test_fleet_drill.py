"""The fleet drill's building blocks (bench/_drill.py), quickly and against real parts.

nginx runs the shipped deploy/nginx/energy-gateway.conf (made runnable on loopback) in front of two small HTTP
upstreams; the job-run records come from a real APScheduler through the gateway's scheduler and JSON log format;
the influxd census and the outbox reader run against a real influxd and a real outbox.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from collectors.reading import Reading
from gateway.logs import JsonFormatter
from gateway.outbox import Outbox
from gateway.scheduler import JobSpec, Scheduler
from tests.deploy.conftest import REPO
from tests.servers.influx import InfluxServer, free_port

sys.path.insert(0, str(REPO / "bench"))

import _drill  # noqa: E402

NGINX = _drill.nginx_binary()
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install -y nginx; deploy/dev.sh's apt list should have it)")


class _Upstream(BaseHTTPRequestHandler):
    """Answers 200 with its own name and the forwarded headers it got; `drop` closes without an answer instead."""

    name = "?"
    drop = False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    def _answer(self) -> None:
        if self.drop:  # a process killed while it held the request: the connection ends, nothing is answered
            self.close_connection = True
            self.connection.close()
            return
        body = json.dumps({"upstream": self.name, "xff": self.headers.get("X-Forwarded-For"),
                           "request_id": self.headers.get("X-Request-ID")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass


def _upstream(name: str, drop: bool = False) -> ThreadingHTTPServer:
    handler = type(f"Upstream_{name}", (_Upstream,), {"name": name, "drop": drop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def two_upstreams() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    dropping, healthy = _upstream("dropping", drop=True), _upstream("healthy")
    try:
        yield dropping, healthy
    finally:
        for s in (dropping, healthy):
            s.shutdown()
            s.server_close()


def test_the_generated_config_keeps_the_shipped_proxy_rules(tmp_path: Path) -> None:
    text = _drill.nginx_config(tmp_path, 18080, [18081, 18082])
    assert "server 127.0.0.1:18081 max_fails=2 fail_timeout=10s;" in text
    assert "server 127.0.0.1:18082 max_fails=2 fail_timeout=10s;" in text
    assert "127.0.0.1:8080" not in text  # the shipped example upstream is replaced, not kept beside ours
    for rule in ("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "location = /metrics",
                 "proxy_set_header X-Request-ID $request_id;", "log_format energy_gateway"):
        assert rule in text
    assert "ssl" not in text
    assert "listen 80;" not in text
    assert "listen 127.0.0.1:18080;" in text


@needs_nginx
def test_nginx_accepts_the_generated_config(tmp_path: Path) -> None:
    checked = _drill.Nginx(tmp_path / "nginx", free_port(), [free_port(), free_port()]).test()
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def _through_nginx(tmp_path: Path, upstreams: tuple[ThreadingHTTPServer, ThreadingHTTPServer],
                   requests: list[tuple[str, str]]) -> tuple[list[httpx.Response], list[dict[str, Any]]]:
    """Each (method, path) through a fresh nginx in front of `upstreams`; the responses and nginx's access log."""
    nginx = _drill.Nginx(tmp_path / "nginx", free_port(), [int(s.server_address[1]) for s in upstreams])
    nginx.start()
    try:
        base = f"http://127.0.0.1:{nginx.port}"
        out = [httpx.request(method, base + path, headers={"X-Forwarded-For": "10.9.8.7"},
                             data={"a": "b"} if method == "POST" else None, timeout=30) for method, path in requests]
    finally:
        nginx.stop()
    log = _drill.parse_access_log((tmp_path / "nginx" / "access.log").read_text())
    assert log[0]["path"] == "/metrics"  # Nginx.start() waits for this answer from nginx itself
    return out, log[1:]


@needs_nginx
def test_a_get_cut_off_by_a_dying_process_is_answered_by_the_other(
        tmp_path: Path, two_upstreams: tuple[ThreadingHTTPServer, ThreadingHTTPServer]) -> None:
    gets, log = _through_nginx(tmp_path, two_upstreams, [("GET", "/portal/x")] * 4 + [("GET", "/metrics")])
    assert [r.status_code for r in gets] == [200] * 4 + [404]  # /metrics stays inside, by the shipped config
    assert all(r.json()["upstream"] == "healthy" for r in gets[:4])
    assert gets[0].json()["xff"] == "10.9.8.7, 127.0.0.1"  # the client's address, then the peer nginx saw
    assert any("," in r.headers["x-upstream"] for r in gets[:4])  # tried on the dropping one first, then retried
    assert [a["path"] for a in log] == ["/portal/x"] * 4 + ["/metrics"]
    assert [a["request_id"] for a in log[:4]] == [r.json()["request_id"] for r in gets[:4]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", a["request_id"]) for a in log)


@needs_nginx
def test_a_post_cut_off_by_a_dying_process_is_not_sent_twice(
        tmp_path: Path, two_upstreams: tuple[ThreadingHTTPServer, ThreadingHTTPServer]) -> None:
    posts, log = _through_nginx(tmp_path, two_upstreams, [("POST", "/login")] * 4)
    assert 502 in [r.status_code for r in posts]  # a login may have happened: nginx does not replay it elsewhere
    assert all("," not in a["upstream"] for a in log)
    assert sorted(a["status"] for a in log) == sorted(r.status_code for r in posts)


def test_job_runs_come_from_the_scheduler_log_with_their_period(tmp_path: Path) -> None:
    records: list[str] = []
    handler = logging.Handler()
    formatter = JsonFormatter()
    handler.emit = lambda record: records.append(formatter.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("apscheduler")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    ran = threading.Event()
    count = [0]

    def job() -> None:
        count[0] += 1
        if count[0] >= 3:
            ran.set()

    sched = Scheduler(enabled=True, state_path=tmp_path / "jobs.json")
    sched.register(JobSpec(name="tick", func=job, trigger="interval", trigger_args={"seconds": 0.2}))
    try:
        sched.start()
        assert ran.wait(60), "the job did not run three times"
    finally:
        sched.shutdown()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    text = "\n".join(records)
    runs = _drill.job_runs(text, "api-1")
    assert len(runs) == count[0] >= 3
    assert all(r["job"] == "tick" and r["interval_s"] == pytest.approx(0.2) for r in runs)
    once = _drill.check_job_runs(runs, {"api-1": (0.0, 2e9)})["tick"]
    assert once["periods_run_twice"] == 0
    assert once["processes"] == ["api-1"]
    # the same periods run by a second process: every one of them counted twice
    twice = _drill.check_job_runs(runs + _drill.job_runs(text, "api-2"), {"api-1": (0.0, 2e9)})["tick"]
    assert twice["periods_run_twice"] == len(runs)
    assert twice["processes"] == ["api-1", "api-2"]
    # a period left out while the scheduler was up is missed
    gap = [r for i, r in enumerate(runs) if i != 1]
    assert _drill.check_job_runs(gap, {"api-1": (0.0, 2e9)})["tick"]["periods_missed"] == 1


def test_census_counts_a_reading_stored_under_two_tag_sets(influxd: InfluxServer, influx_db: str) -> None:
    lines = ["reading,customer=c,device=d,meter=m,point=p,unit=kW quality=\"good\",value=1 1000",
             "reading,customer=c,device=d,meter=m,point=p,unit=kW quality=\"good\",value=1 1000",  # rewritten
             "reading,customer=c,device=d,meter=m,point=p,unit=W quality=\"good\",value=1000 1000",  # another unit
             "reading,customer=c,device=d,meter=m,point=p,unit=kW quality=\"good\",value=2 2000",
             "reading,customer=o,device=e,meter=n,point=p,unit=kW quality=\"good\",value=2 2000"]
    httpx.post(f"{influxd.url}/write", params={"db": influx_db}, content="\n".join(lines), timeout=30
               ).raise_for_status()
    keys = _drill.influx_keys(influxd, influx_db, 0, "c")
    assert keys == {("m", "p", 1000): 2, ("m", "p", 2000): 1}
    assert _drill.influx_keys(influxd, influx_db, 1500) == {("m", "p", 2000): 1, ("n", "p", 2000): 1}


def test_outbox_keys_lists_what_waits_without_taking_it(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.put([Reading("dev", f"p{i}", float(i), "kW", source_ts=1000 + i, meter="m") for i in range(5)])
    box.close()
    assert sorted(_drill.outbox_keys(tmp_path / "outbox.db")) == [("m", f"p{i}", 1000 + i) for i in range(5)]
    again = Outbox(tmp_path / "outbox.db")
    try:
        assert again.depth == 5
    finally:
        again.close()


def test_metrics_text_is_read_by_name_and_labels() -> None:
    text = ("# HELP gateway_readings_collected_total Readings\n# TYPE gateway_readings_collected_total counter\n"
            "gateway_readings_collected_total 1234.0\n"
            'gateway_job_runs_total{job="alerts",outcome="ok"} 3.0\n')
    assert _drill.parse_metrics(text) == {"gateway_readings_collected_total": 1234.0,
                                          'gateway_job_runs_total{job="alerts",outcome="ok"}': 3.0}
