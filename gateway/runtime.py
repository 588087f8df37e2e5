"""The composition root at run time: builds every part from gateway.toml and runs them until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from collectors.base import Collector, DeviceHealth
from collectors.modbus.config import ModbusDeviceConfig
from collectors.opcua.config import OpcUaDeviceConfig
from collectors.reading import Quality, Reading
from gateway.config import EmbeddedStoreConfig, GatewayConfig
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.query import QueryService, Topology
from gateway.scheduler import Scheduler
from gateway.store.base import TimeSeriesStore
from gateway.store.sqlite import SqliteStore

log = logging.getLogger(__name__)


def build_store(cfg: GatewayConfig, environ: Mapping[str, str] | None = None) -> TimeSeriesStore:
    store = cfg.store
    if isinstance(store, EmbeddedStoreConfig):
        return SqliteStore(cfg.data_path(store.path))
    from gateway.store.influx import build_influx_store

    return build_influx_store(store, os.environ if environ is None else environ)


def build_topology(cfg: GatewayConfig) -> Topology:
    return Topology(
        customer_tz={c.id: c.timezone for c in cfg.customers},
        site_customer={s.id: s.customer for s in cfg.sites},
        meter_site={m.id: m.site for m in cfg.meters},
        meter_device={m.id: m.device for m in cfg.meters},
    )


def build_collectors(cfg: GatewayConfig) -> list[Collector]:
    collectors: list[Collector] = []
    modbus = [d for d in cfg.devices if isinstance(d, ModbusDeviceConfig)]
    if modbus:
        from collectors.modbus import ModbusCollector

        collectors.append(ModbusCollector(modbus))
    opcua = [d for d in cfg.devices if isinstance(d, OpcUaDeviceConfig)]
    if opcua:
        from collectors.opcua import OpcUaCollector

        collectors.append(OpcUaCollector(opcua, cfg.gateway.data_dir))
    return collectors


def open_registry(cfg: GatewayConfig, environ: Mapping[str, str]) -> sessionmaker[Session]:
    """Migrate the relational database to head, bring it in step with the config, and return sessions."""
    from crm_bridge.registry import make_engine, migrate
    from gateway.registry_sync import sync_registry

    url = cfg.database.resolve(cfg.gateway.data_dir, environ)
    migrate(url)
    factory = sessionmaker(make_engine(url), expire_on_commit=False)
    with factory() as session:
        sync_registry(session, cfg, date.today())
    return factory


class Tagger:
    """Adds the customer/site/meter tags of the meter-to-customer mapping to each reading.

    It is also the last guard before storage: a non-finite number (NaN, inf) is never stored as a value; the
    reading becomes quality `bad` with no value.
    """

    def __init__(self, tags: Mapping[str, tuple[str, str, str]]) -> None:
        self._tags = dict(tags)

    def __call__(self, readings: Sequence[Reading]) -> list[Reading]:
        out = []
        for r in readings:
            if r.value is not None and not math.isfinite(r.value):
                r = replace(r, value=None, quality=Quality.BAD)
            t = self._tags.get(r.device)
            out.append(r.tagged(*t) if t is not None else r)
        return out


@dataclass
class Gateway:
    """Everything one gateway process runs. Build with `Gateway.from_config`, then `await run(stop)`."""

    config: GatewayConfig
    store: TimeSeriesStore
    outbox: Outbox
    pipeline: Pipeline
    query: QueryService
    collectors: list[Collector]
    scheduler: Scheduler
    tagger: Tagger
    db: sessionmaker[Session]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: GatewayConfig, environ: Mapping[str, str] | None = None) -> Gateway:
        cfg.gateway.data_dir.mkdir(parents=True, exist_ok=True)
        store = build_store(cfg, environ)
        ob = cfg.outbox
        outbox = Outbox(cfg.data_path(ob.path), max_rows=ob.max_rows, max_age_s=ob.max_age_s, policy=ob.policy)
        pipeline = Pipeline(outbox, store, batch_size=ob.batch_size, commit_interval_s=ob.commit_interval_s)
        db = open_registry(cfg, os.environ if environ is None else environ)
        return cls(
            config=cfg,
            store=store,
            outbox=outbox,
            pipeline=pipeline,
            query=QueryService(store, build_topology(cfg)),
            collectors=build_collectors(cfg),
            scheduler=Scheduler(cfg.gateway.run_scheduler, timezone=cfg.gateway.timezone),
            tagger=Tagger(cfg.tags_by_device()),
            db=db,
        )

    def emit(self, readings: Sequence[Reading]) -> None:
        self.pipeline.ingest(self.tagger(readings))

    def health(self) -> list[DeviceHealth]:
        out: list[DeviceHealth] = []
        for c in self.collectors:
            out.extend(c.health())
        return out

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Run collectors, pipeline, scheduler and (when enabled) the API until `stop` is set."""
        self.pipeline.start()
        self.scheduler.start()
        tasks = [asyncio.create_task(c.run(self.emit, stop), name=f"collector:{c.name}") for c in self.collectors]
        server = None
        if self.config.api.enabled:
            server = self._api_server()
            tasks.append(asyncio.create_task(server.serve(), name="api"))
            while not server.started and not stop.is_set():
                await asyncio.sleep(0.05)
                if tasks[-1].done():
                    tasks[-1].result()  # raises the API's start-up error (port in use, ...)
        if on_ready is not None:
            on_ready()
        try:
            await stop.wait()
        finally:
            log.info("stopping: collectors, API, scheduler, then flushing the outbox")
            if server is not None:
                server.should_exit = True
            done, pending = await asyncio.wait(tasks, timeout=10)
            for t in pending:
                t.cancel()
            for t in done:
                if t.exception() is not None and not isinstance(t.exception(), asyncio.CancelledError):
                    log.error("%s ended with %r", t.get_name(), t.exception())
            self.scheduler.shutdown()
            await asyncio.to_thread(self.pipeline.stop, True, 30.0)
            self.store.close()
            self.outbox.close()

    def _api_server(self) -> Any:
        from gateway.app import build_app

        app = build_app(self)
        config = uvicorn.Config(app, host=self.config.api.host, port=self.config.api.port, log_level="warning",
                                lifespan="on")
        return _QuietServer(config)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling.

    The gateway owns SIGTERM, so that it stops the collectors and flushes the outbox before the API goes away.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`: the gateway flushes and exits cleanly."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

