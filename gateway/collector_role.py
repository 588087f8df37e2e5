"""The collector role (`energy-gateway run --role collector`): meters -> outbox -> store, and nothing else.

A plant's collector process polls its meters into the durable outbox; a store writer delivers the outbox to the
time-series store, from a thread or (`[outbox] store_writer = "process"`) a process of its own (gateway.store_writer).
It starts without the web stack, the registry database, the scheduler or pandas (no FastAPI, uvicorn, SQLAlchemy,
Alembic: under 100 MB at 200 devices x 50 points, against 173 MB for the full gateway, issue 16). What it serves,
on `[api] host:port` unless `[api] enabled = false`, is Prometheus' /metrics and the /health and /ready probes, from
the standard library's HTTP server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector as MetricsCollector

from collectors.base import Collector, DeviceHealth
from collectors.reading import Reading
from gateway.config import EmbeddedStoreConfig, GatewayConfig
from gateway.directory import Directory
from gateway.lifecycle import stop_signals
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.reload import Reloader
from gateway.runtime import StartupError, _check_can_listen, _finish, _starting, build_collectors, build_store
from gateway.tagger import Tagger

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)


@dataclass
class CollectorRole:
    """Collectors, outbox and store writer of one plant. Build with `from_config`, then `await run(stop)`."""

    config: GatewayConfig
    outbox: Outbox
    pipeline: Pipeline
    collectors: list[Collector]
    directory: Directory
    tagger: Tagger
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> CollectorRole:
        """Open the outbox and set up the collectors; the store writer starts with `run` (StartupError: why not)."""
        if not cfg.gateway.collect:
            raise StartupError("the collector role needs [gateway] collect = true (this config polls no device)")
        with _starting(f"cannot create the data folder {cfg.gateway.data_dir}"):
            cfg.gateway.data_dir.mkdir(parents=True, exist_ok=True)
        ob = cfg.outbox
        apart = ob.store_writer == "process"
        with _starting(f"cannot open the outbox {cfg.data_path(ob.path)}"):
            outbox = Outbox(cfg.data_path(ob.path), max_rows=ob.max_rows, max_age_s=ob.max_age_s, policy=ob.policy,
                            shared=apart)
        if apart:
            from gateway.store_writer import StoreWriterProcess

            pipeline = Pipeline(outbox, None, batch_size=ob.batch_size, commit_interval_s=ob.commit_interval_s,
                                high_water=ob.high_water, max_slowdown=ob.max_slowdown,
                                store_writer=StoreWriterProcess(cfg))
        else:
            with _starting("cannot open the time-series store"):
                store = build_store(cfg)
            pipeline = Pipeline(outbox, store, batch_size=ob.batch_size, commit_interval_s=ob.commit_interval_s,
                                high_water=ob.high_water, max_slowdown=ob.max_slowdown)
        with _starting("cannot set up the collectors"):
            collectors = build_collectors(cfg)
        directory = Directory.from_config(cfg)
        return cls(config=cfg, outbox=outbox, pipeline=pipeline, collectors=collectors, directory=directory,
                   tagger=Tagger(directory.tags))

    def emit(self, readings: Sequence[Reading]) -> float:
        """The collectors' `emit`: tag a hand-over, give it to the pipeline, answer with its slow-down factor."""
        return self.pipeline.ingest(self.tagger(readings))

    def health(self) -> list[DeviceHealth]:
        return [h for c in self.collectors for h in c.health()]

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Poll, store and serve /metrics until `stop` is set; then flush within `[outbox] stop_flush_s`."""
        api = self.config.api
        if api.enabled:
            _check_can_listen(api.host, api.port)
        from gateway.backup import hold_data_dir

        with _starting("cannot take the data folder"):
            data_dir_lock = hold_data_dir(self.config.gateway.data_dir)
        metrics = None
        try:
            if api.enabled:
                with _starting(f"cannot listen on {api.host}:{api.port}"):
                    metrics = _MetricsServer(self)
            store = self.config.store
            where = self.config.data_path(store.path) if isinstance(store, EmbeddedStoreConfig) else store.url
            with _starting(f"cannot open the store {where}"):
                await asyncio.to_thread(self.pipeline.start)
        except BaseException:
            if metrics is not None:
                metrics.close()
            data_dir_lock.release()
            raise
        # The Reloader is written for the full gateway; the collector role has the attributes it uses on a reload
        # of devices and tags (config, emit, collectors, directory, tagger), and its own directory swap.
        reloader = _Reloader(cast("Gateway", self), stop)
        tasks = reloader.tasks
        stop_signals.on_reload(reloader.request)
        try:
            if on_ready is not None:
                on_ready()
            await stop.wait()
        finally:
            stop_signals.on_reload(None)
            self.stopping.set()
            log.info("stopping: collectors, then flushing the outbox (at most %.0f s)",
                     self.config.outbox.stop_flush_s)
            await _finish(tasks)
            await asyncio.to_thread(self.pipeline.stop, True, self.config.outbox.stop_flush_s)
            if metrics is not None:
                metrics.close()
            self.outbox.close()
            data_dir_lock.release()


class _Reloader(Reloader):
    """SIGHUP in the collector role: devices as in the full gateway; new tags without a registry to bring in step."""

    def _swap_directory(self, cfg: GatewayConfig) -> None:
        directory = Directory.from_config(cfg)
        self.gw.directory = directory
        self.gw.tagger = Tagger(directory.tags)  # readings from now on carry the new tags


class _DeviceMetrics(MetricsCollector):
    """The per-device gauges (as the full gateway's /metrics names them), read from the collectors when scraped."""

    def __init__(self, role: CollectorRole) -> None:
        self.role = role

    def collect(self) -> Iterator[Metric]:
        now = time.time_ns()
        labels = ["device", "protocol"]
        online = GaugeMetricFamily("gateway_device_online", "1 when the device answered its last poll", labels=labels)
        failures = GaugeMetricFamily("gateway_device_consecutive_failures", "Failed polls in a row", labels=labels)
        latency = GaugeMetricFamily("gateway_device_poll_latency_seconds", "Duration of the last poll",
                                    labels=labels)
        overruns = GaugeMetricFamily("gateway_device_cycle_overruns", "Poll cycles missed because a poll ran late",
                                     labels=labels)
        age = GaugeMetricFamily("gateway_device_last_success_age_seconds", "Seconds since the last good poll",
                                labels=labels)
        for h in self.role.health():
            key = [h.device, h.protocol]
            online.add_metric(key, 1 if h.online else 0)
            failures.add_metric(key, h.consecutive_failures)
            overruns.add_metric(key, h.overruns)
            if h.last_latency_s is not None:
                latency.add_metric(key, h.last_latency_s)
            if h.last_success_ns is not None:
                age.add_metric(key, (now - h.last_success_ns) / 1e9)
        stats = self.role.pipeline.stats()
        down = GaugeMetricFamily("gateway_store_down_seconds",
                                 "Seconds the store has refused writes (0 while it takes them)",
                                 value=float(cast("float", stats["store_down_s"])))
        oldest = GaugeMetricFamily("gateway_outbox_oldest_age_seconds",
                                   "Age of the oldest reading waiting in the outbox",
                                   value=self.role.outbox.oldest_age_s(now))
        yield from (online, failures, latency, overruns, age, down, oldest)


class _MetricsServer:
    """/metrics, /health and /ready on `[api] host:port`, in a thread (the collectors' loop never serves HTTP)."""

    def __init__(self, role: CollectorRole) -> None:
        self.devices = _DeviceMetrics(role)
        try:
            REGISTRY.register(self.devices)
        except ValueError:  # the full gateway's gauges are in this process already (a test): they answer instead
            self.devices = None  # type: ignore[assignment]
        handler = type("Handler", (_Handler,), {"role": role})
        api = role.config.api
        self.server = ThreadingHTTPServer((api.host, api.port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics-http", daemon=True)
        self.thread.start()
        log.info("serving /metrics, /health and /ready on %s:%d", api.host, self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.devices is not None:
            REGISTRY.unregister(self.devices)


class _Handler(BaseHTTPRequestHandler):
    role: CollectorRole

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif path in ("/health", "/healthz"):
            st = self.role.pipeline.stats()
            self._json(200, {"status": "ok", "role": "collector", "outbox_depth": st["outbox_depth"],
                             "store_down_s": st["store_down_s"]})
        elif path == "/ready":
            health = self.role.health()
            waiting = sorted(h.device for h in health if h.polls == 0)
            ready = not waiting and self.role.pipeline.store_writer_alive()
            self._json(200 if ready else 503, {"status": "ready" if ready else "not_ready", "not_yet_polled":
                                               waiting[:10], "devices": len(health)})
        else:
            self._json(404, {"detail": "not found: this collector serves /metrics, /health and /ready"})

    def _json(self, code: int, body: dict[str, Any]) -> None:
        self._answer(code, json.dumps(body).encode(), "application/json")

    def _answer(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's signature
        log.debug("metrics http: " + format, *args)
