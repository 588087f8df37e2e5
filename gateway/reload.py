"""The running gateway's collectors, one task per connection, and the config reload (SIGHUP) that swaps them.

A reload reads gateway.toml again and, when it is valid, applies what can change while collecting: devices added,
changed and removed, and the customers, sites and meters the readings are tagged with. Collectors run one per
connection group (the devices of one Modbus host and port or serial port, which share one connection, or of one
OPC UA server URL), so a reload stops and starts only the groups whose devices changed,
and every other device goes on polling as if nothing happened. A group that changes (a device added to a shared
connection, say) is stopped and started again: its devices miss at most a poll.

Nothing accepted is lost: a group's collector stops at its stop event like at SIGTERM, after its poll in flight,
and everything it emitted is already with the pipeline. A config that does not validate (or whose devices cannot
be built) changes nothing: the refusal is logged with the file, the key path and why, and the running config stays.
Sections that only a restart can change (store, outbox, api, database, gateway) keep their running values; a
reload that changes them says so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors import registry as collector_plugins
from collectors.base import Collector, CollectorContext, CollectorError
from gateway.config import ConfigError, GatewayConfig, load_config

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)

# Sections read once at start-up (connections, files, listeners): a reload keeps their running values.
RESTART_ONLY = ("gateway", "store", "outbox", "api", "database", "forecast", "notify")
# Seconds a group's collector gets to finish its poll in flight when it is replaced, before it is cancelled.
STOP_TIMEOUT_S = 10.0

GroupKey = tuple[str, str]  # (device type, connection)


def group_key(device: Any) -> GroupKey:
    """The connection group of a `[[devices]]` entry: devices with one key share a connection and a collector."""
    # The protocols' models name their connection (`connection_key`: Modbus host:port or serial port, OPC UA server
    # URL); a protocol whose model has none makes each of its devices a group of its own.
    connection = getattr(device, "connection_key", None) or f"device:{device.name}"
    return str(device.type), str(connection)


def group_devices(devices: Sequence[Any]) -> dict[GroupKey, list[Any]]:
    """The devices by connection group, in config order."""
    groups: dict[GroupKey, list[Any]] = {}
    for d in devices:
        groups.setdefault(group_key(d), []).append(d)
    return groups


def _dumped(devices: Sequence[Any]) -> list[dict[str, Any]]:
    return [d.model_dump(mode="json") for d in devices]


@dataclass
class _Group:
    devices: list[dict[str, Any]]  # as configured, to tell a changed group from an untouched one
    collector: Collector
    stop: asyncio.Event
    task: asyncio.Task[None]


class Reloader:
    """Starts the gateway's collectors (one task per connection group) and applies config reloads to them.

    `tasks` is the list of running collector tasks, kept in step across reloads: the gateway's shutdown waits
    for it. Use from the gateway's event loop.
    """

    def __init__(self, gw: Gateway, stop: asyncio.Event, config_path: Path | None = None) -> None:
        self.gw = gw
        self.stop = stop
        self.config_path = config_path if config_path is not None else config_path_of_process()
        self.tasks: list[asyncio.Task[None]] = []
        self.reloads = 0  # applied
        self.refused = 0
        self._groups: dict[GroupKey, _Group] = {}
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[bool]] = set()
        if gw.config.gateway.collect:
            built = self._build(gw.config, group_devices(gw.config.devices))
            for key, (devices, collector) in built.items():
                self._start(key, devices, collector)
        self._sync_collectors()

    # -- starting and stopping groups --------------------------------------------------------------
    def _build(self, cfg: GatewayConfig, groups: dict[GroupKey, list[Any]]
               ) -> dict[GroupKey, tuple[list[Any], Collector]]:
        context = CollectorContext(state_dir=cfg.gateway.data_dir, environ=os.environ)
        out = {}
        for key, devices in groups.items():
            (collector,) = collector_plugins.build_collectors(devices, context)
            out[key] = (devices, collector)
        return out

    def _start(self, key: GroupKey, devices: list[Any], collector: Collector) -> None:
        own_stop = asyncio.Event()
        task = asyncio.create_task(self._run(collector, own_stop), name=f"collector:{key[0]}:{key[1]}")
        self._groups[key] = _Group(_dumped(devices), collector, own_stop, task)
        self.tasks.append(task)

    async def _run(self, collector: Collector, own_stop: asyncio.Event) -> None:
        """Run one group's collector until the gateway stops or a reload replaces the group."""
        relay = asyncio.create_task(self._relay(own_stop))
        try:
            await collector.run(self.gw.emit, own_stop)
        finally:
            relay.cancel()

    async def _relay(self, own_stop: asyncio.Event) -> None:
        await self.stop.wait()
        own_stop.set()

    async def _retire(self, key: GroupKey) -> None:
        """Stop one group's collector as at SIGTERM (its poll in flight finishes); cancel it if it does not end."""
        group = self._groups.pop(key)
        group.stop.set()
        done, _ = await asyncio.wait({group.task}, timeout=STOP_TIMEOUT_S)
        if not done:
            log.warning("reload: collector %s did not stop within %.0f s; cancelled", key[1], STOP_TIMEOUT_S)
            group.task.cancel()
            await asyncio.wait({group.task}, timeout=5)
        if group.task.done() and not group.task.cancelled() and group.task.exception() is not None:
            log.error("collector %s ended with %r", key[1], group.task.exception())
        if group.task in self.tasks:
            self.tasks.remove(group.task)

    def _sync_collectors(self) -> None:
        """What the gateway shows (health, /ready, /metrics): the collectors of the running groups."""
        self.gw.collectors = [g.collector for g in self._groups.values()]

    # -- reloading ---------------------------------------------------------------------------------
    def request(self) -> None:
        """Reload soon (from SIGHUP); reloads run one at a time, in the order asked."""
        if self.stop.is_set():
            return
        task = asyncio.get_running_loop().create_task(self.reload(), name="config-reload")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def reload(self) -> bool:
        """Read the config file again and apply it; False (and the running config kept) when it is refused."""
        async with self._lock:
            if self.stop.is_set():
                return False
            if self.config_path is None:
                log.error("reload refused: this process was not started with --config; nothing to read")
                self.refused += 1
                return False
            try:
                new = await asyncio.to_thread(load_config, self.config_path)
            except ConfigError as exc:
                self.refused += 1
                log.error("reload refused, the running config stays: %s", exc)
                return False
            try:
                return await self._apply(new)
            except CollectorError as exc:
                self.refused += 1
                log.error("reload refused, the running config stays: %s: %s", self.config_path, exc)
                return False
            except Exception:  # e.g. the registry refused the new meters: nothing has been swapped yet
                self.refused += 1
                log.exception("reload failed before any collector changed; the running config stays")
                return False

    async def _apply(self, loaded: GatewayConfig) -> bool:
        old = self.gw.config
        kept = [name for name in RESTART_ONLY if getattr(loaded, name) != getattr(old, name)]
        if kept:
            log.warning("reload: [%s] change only on restart; they keep their running values", ", ".join(kept))
        new = loaded.model_copy(update={name: getattr(old, name) for name in RESTART_ONLY})
        wanted = group_devices(new.devices) if new.gateway.collect else {}
        changed = {key: devices for key, devices in wanted.items()
                   if key not in self._groups or self._groups[key].devices != _dumped(devices)}
        retired = [key for key in self._groups if key not in wanted or key in changed]
        built = self._build(new, changed)  # before anything stops: a device that cannot be built refuses it all

        tags_changed = (new.customers, new.sites, new.meters, new.devices, new.query) != (
            old.customers, old.sites, old.meters, old.devices, old.query)
        if tags_changed:
            await asyncio.to_thread(self._swap_directory, new)
        for key in retired:
            await self._retire(key)
        for key, (devices, collector) in built.items():
            if self.stop.is_set():
                break  # stopping: start nothing new
            self._start(key, devices, collector)
        self.gw.config = new
        self._sync_collectors()
        self.reloads += 1
        before = {d.name: d.model_dump(mode="json") for d in old.devices}
        after = {d.name: d.model_dump(mode="json") for d in new.devices}
        log.info("reload applied from %s: devices added %s, changed %s, removed %s; %d connection groups "
                 "restarted, %d untouched", self.config_path,
                 sorted(set(after) - set(before)) or "none",
                 sorted(n for n in set(after) & set(before) if after[n] != before[n]) or "none",
                 sorted(set(before) - set(after)) or "none", len(built), len(self._groups) - len(built))
        return True

    def _swap_directory(self, cfg: GatewayConfig) -> None:
        """Tag readings, answer queries and keep the registry by the new customers, sites and meters."""
        from gateway.directory import Directory
        from gateway.query import QueryService
        from gateway.registry_sync import sync_registry
        from gateway.tagger import Tagger

        directory = Directory.from_config(cfg)
        with self.gw.db() as session:
            sync_registry(session, cfg, date.today())
        self.gw.directory = directory
        self.gw.query = QueryService(self.gw.store, directory.topology, max_estimate_s=cfg.query.max_estimate_s,
                                     min_power_coverage=cfg.query.min_power_coverage)
        self.gw.tagger = Tagger(directory.tags)  # last: readings from now on carry the new tags


def config_path_of_process(argv: Sequence[str] | None = None) -> Path | None:
    """The `--config` (or `-c`) the process was started with, for a reload to read again; None without one."""
    args = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            return Path(args[i + 1]).resolve()
        if arg.startswith("--config="):
            return Path(arg.removeprefix("--config=")).resolve()
    return None
