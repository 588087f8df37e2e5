"""The composition root at run time: builds every part from gateway.toml and runs them until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors import registry as collector_plugins
from collectors.base import Collector, CollectorContext, DeviceHealth
from collectors.reading import Reading
from gateway.config import EmbeddedStoreConfig, GatewayConfig
from gateway.directory import Directory
from gateway.lifecycle import StopRequested, stop_signals
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.query import QueryService, Topology
from gateway.scheduler import Scheduler
from gateway.tagger import Tagger

# The web stack, SQLAlchemy and the store's libraries (pandas) load where they are used, not with this module:
# the collector role (gateway.collector_role) builds on it and must start without them.
if TYPE_CHECKING:
    import uvicorn
    from sqlalchemy.orm import Session, sessionmaker

    from gateway.auth import AuthService
    from gateway.store.base import TimeSeriesStore
    from gateway.usecases.figures import OfflineSources

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The gateway cannot start in this environment (a folder, a database, a port); the message says which and why."""


# What the environment throws at start-up: missing or unwritable folders, files that are not databases, database
# servers that refuse, migrations that cannot run, a store writer process that cannot open the store. Anything else
# is a bug and keeps its traceback. The classes of libraries not loaded yet are left out: nothing can raise them.
_ENVIRONMENT_ERRORS = (("sqlalchemy.exc", "SQLAlchemyError"), ("gateway.store.base", "StoreError"),
                       ("alembic.util.exc", "CommandError"), ("gateway.store_writer", "StoreWriterError"))


def _environment_errors() -> tuple[type[BaseException], ...]:
    loaded = [getattr(sys.modules[mod], name) for mod, name in _ENVIRONMENT_ERRORS if mod in sys.modules]
    return (OSError, sqlite3.Error, *loaded)


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong, without SQLAlchemy's statement dump and links."""
    cause = getattr(exc, "orig", None) or exc
    text = (getattr(cause, "strerror", None) if isinstance(cause, OSError) else None) or str(cause) or repr(cause)
    return text.strip().splitlines()[0]


@contextlib.contextmanager
def _starting(what: str) -> Iterator[None]:
    """Turn an environment error while starting `what` into one StartupError line."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, _environment_errors()):
            raise
        raise StartupError(f"{what}: {_reason(exc)}") from exc


def _shown_url(url: str) -> str:
    """A database URL fit for a message: the password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<the configured URL>"


def _sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite:/// URL (None for other databases and for in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def build_store(cfg: GatewayConfig, environ: Mapping[str, str] | None = None) -> TimeSeriesStore:
    store = cfg.store
    if isinstance(store, EmbeddedStoreConfig):
        from gateway.store.sqlite import SqliteStore

        return SqliteStore(cfg.data_path(store.path))
    from gateway.store.influx import build_influx_store

    return build_influx_store(store, os.environ if environ is None else environ)


def build_topology(cfg: GatewayConfig) -> Topology:
    return Directory.from_config(cfg).topology


def build_query(cfg: GatewayConfig, store: TimeSeriesStore) -> QueryService:
    """The query layer over `store` with the config's topology and interval-energy rules."""
    return QueryService(store, Directory.from_config(cfg).topology, max_estimate_s=cfg.query.max_estimate_s,
                        min_power_coverage=cfg.query.min_power_coverage)


def build_collectors(cfg: GatewayConfig) -> list[Collector]:
    """One collector per protocol in use, from the plugins in collectors/registry.py."""
    context = CollectorContext(state_dir=cfg.gateway.data_dir, environ=os.environ)
    return collector_plugins.build_collectors(cfg.devices, context)


def open_registry(cfg: GatewayConfig, environ: Mapping[str, str]) -> sessionmaker[Session]:
    """Migrate the relational database to head, bring it in step with the config, and return sessions."""
    from sqlalchemy.orm import sessionmaker

    from crm_bridge.registry import make_engine, migrate
    from gateway.registry_sync import sync_registry

    url = cfg.database.resolve(cfg.gateway.data_dir, environ)
    with _starting(f"cannot open or migrate the registry database {_shown_url(url)}"):
        if (db_file := _sqlite_file(url)) is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)  # data_dir on a first start (e.g. `users add`)
        migrate(url)
        factory = sessionmaker(make_engine(url), expire_on_commit=False)
        with factory() as session:
            sync_registry(session, cfg, date.today())
    return factory


def offline_sources(cfg: GatewayConfig) -> OfflineSources:
    """The stores a one-shot command reads through the use cases (`export`, `report`): no collectors, no API."""
    from gateway.usecases.figures import OfflineSources

    with _starting("cannot open the time-series store"):
        store = build_store(cfg)
    return OfflineSources(cfg, build_query(cfg, store), open_registry(cfg, os.environ), Directory.from_config(cfg))


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
    directory: Directory
    # The API's logins and sessions: made with the web app (gateway.web.auth_service), None until then.
    auth: AuthService | None = None
    # Set when the gateway begins to stop: background work (e.g. the API's warm-up) should end at its next step.
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_config(cls, cfg: GatewayConfig, environ: Mapping[str, str] | None = None) -> Gateway:
        """Open everything the config names; an environment problem raises StartupError (one line)."""
        with _starting(f"cannot create the data folder {cfg.gateway.data_dir}"):
            cfg.gateway.data_dir.mkdir(parents=True, exist_ok=True)
        where = cfg.data_path(cfg.store.path) if isinstance(cfg.store, EmbeddedStoreConfig) else cfg.store.url
        with _starting(f"cannot open the store {where}"):
            store = build_store(cfg, environ)
        ob = cfg.outbox
        with _starting(f"cannot open the outbox {cfg.data_path(ob.path)}"):
            outbox = Outbox(cfg.data_path(ob.path), max_rows=ob.max_rows, max_age_s=ob.max_age_s, policy=ob.policy)
        pipeline = Pipeline(outbox, store, batch_size=ob.batch_size, commit_interval_s=ob.commit_interval_s,
                            high_water=ob.high_water, max_slowdown=ob.max_slowdown)
        db = open_registry(cfg, os.environ if environ is None else environ)
        with _starting("cannot set up the collectors"):
            # `collect = false` (an API-only process): no collector, so no device is polled or reported offline here.
            collectors = build_collectors(cfg) if cfg.gateway.collect else []
        directory = Directory.from_config(cfg)
        return cls(
            config=cfg,
            store=store,
            outbox=outbox,
            pipeline=pipeline,
            query=QueryService(store, directory.topology, max_estimate_s=cfg.query.max_estimate_s,
                               min_power_coverage=cfg.query.min_power_coverage),
            collectors=collectors,
            scheduler=Scheduler(cfg.gateway.run_scheduler, timezone=cfg.gateway.timezone,
                                state_path=cfg.gateway.data_dir / "jobs.json"),
            tagger=Tagger(directory.tags),
            db=db,
            directory=directory,
        )

    def emit(self, readings: Sequence[Reading]) -> float:
        """The collectors' `emit`: tag a hand-over, give it to the pipeline, answer with its slow-down factor."""
        return self.pipeline.ingest(self.tagger(readings))

    def health(self) -> list[DeviceHealth]:
        out: list[DeviceHealth] = []
        for c in self.collectors:
            out.extend(c.health())
        return out

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Run collectors, pipeline, scheduler and (when enabled) the API until `stop` is set.

        An API that cannot listen raises StartupError, after everything started has been stopped and flushed.
        """
        if self.config.api.enabled:
            _check_can_listen(self.config.api.host, self.config.api.port)
        from gateway.backup import hold_data_dir

        with _starting("cannot take the data folder"):
            data_dir_lock = hold_data_dir(self.config.gateway.data_dir)  # `restore` refuses while it is held
        self.pipeline.start()
        self.scheduler.start()
        from gateway.reload import Reloader

        reloader = Reloader(self, stop)  # one task per connection group; SIGHUP reloads devices and meters
        tasks = reloader.tasks
        stop_signals.on_reload(reloader.request)
        server = None
        try:
            if self.config.api.enabled:
                server = self._api_server()
                api = asyncio.create_task(_serve(server), name="api")
                tasks.append(api)
                while not server.started and not stop.is_set() and not api.done():  # noqa: ASYNC110 - a flag
                    await asyncio.sleep(0.05)
                if api.done():
                    api.result()  # raises the API's start-up error (port taken since the check, ...)
            if on_ready is not None:
                on_ready()
            await stop.wait()
        finally:
            stop_signals.on_reload(None)
            self.stopping.set()
            log.info("stopping: collectors, API, scheduler, then flushing the outbox (at most %.0f s)",
                     self.config.outbox.stop_flush_s)
            if server is not None:
                server.should_exit = True
            await _finish(tasks)
            self.scheduler.shutdown()
            await asyncio.to_thread(self.pipeline.stop, True, self.config.outbox.stop_flush_s)
            if await asyncio.to_thread(_store_readers_done, 10.0):
                self.store.close()
            else:  # closing a SQLite connection under a running query can crash the process
                log.warning("the API's warm-up still reads the store; it closes when the process ends")
            self.outbox.close()
            data_dir_lock.release()

    def _api_server(self) -> Any:
        import uvicorn

        from gateway.web import create_app

        app = create_app(self)
        # proxy_headers off: X-Forwarded-For is read only from `[api] trusted_proxies` (gateway.api.deps.client_of).
        # log_config and log_level None: uvicorn leaves logging alone, so `[gateway] log_levels` reaches its loggers.
        config = uvicorn.Config(app, host=self.config.api.host, port=self.config.api.port, log_config=None,
                                log_level=None, lifespan="on", proxy_headers=False)
        return _quiet_server()(config)


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Give the collectors and the API 10 s to end after `stop`, then cancel them; log how any failed."""
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=10)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    for t in done:
        exc = None if t.cancelled() else t.exception()
        if exc is not None and not isinstance(exc, StartupError):  # a StartupError is the caller's to report
            log.error("%s ended with %r", t.get_name(), exc)


# Threads of the API that read the store (gateway.api starts the day-curve warm-up under this name).
_STORE_READERS = ("warm-views",)


def _store_readers_done(timeout: float) -> bool:
    """Wait up to `timeout` for the API's store readers to end; True when none is left running."""
    deadline = time.monotonic() + timeout
    readers = [t for t in threading.enumerate() if t.name in _STORE_READERS]
    for t in readers:
        t.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in readers)


def _check_can_listen(host: str, port: int) -> None:
    """Refuse to start when the API's address is taken or not ours, before anything else starts."""
    if port == 0:
        return
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on the API address {host}:{port}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            s.bind(addr)
        except OSError as exc:
            raise StartupError(f"cannot listen on the API address {host}:{port}: {exc.strerror}") from None


async def _serve(server: uvicorn.Server) -> None:
    """Run uvicorn's serve(), whose sys.exit(1) on a failed start (after logging why) becomes a StartupError."""
    try:
        await server.serve()
    except SystemExit as exc:
        if isinstance(exc, StopRequested):
            raise
        cfg = server.config
        raise StartupError(f"cannot listen on the API address {cfg.host}:{cfg.port} (the log above says why)") from None


def _quiet_server() -> type[uvicorn.Server]:
    import uvicorn

    class _QuietServer(uvicorn.Server):
        """uvicorn without its own signal handling.

        The gateway owns SIGTERM, so that it stops the collectors and flushes the outbox before the API goes away.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return _QuietServer
