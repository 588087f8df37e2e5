"""A Modbus TCP plant simulator: several meters (one unit id each) whose registers follow the load model.

Registers are computed from `LoadModel.instant(now)` through a meter profile's register map, so the gateway reads
them with exactly the profile a real meter of that model would use. Tests can inject faults per unit: exception
answers on address ranges, silence (no answer), slow answers and fixed register values.

Run out of process: `python -m collectors.sim.modbus_server --meters 3 [--servers 1] [--port 0]`; it prints one
JSON line `{"ports": [...], "units": [...]}` once it listens, and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.server import ModbusTcpServer

from collectors.modbus.config import ModbusPointConfig, load_profile
from collectors.modbus.datatypes import DataType, RegisterKind, encode, register_count
from collectors.sim.load import LoadModel


@dataclass
class Faults:
    illegal_ranges: list[tuple[int, int]] = field(default_factory=list)  # [start, end) answered with exception 2
    silent: bool = False  # never answers (a dead device behind a live gateway)
    delay_s: float = 0.0
    fixed: dict[int, int] = field(default_factory=dict)  # address -> register value, overrides the model
    # (kind, address) -> register or 0/1 bit of that one kind ("coil", "discrete", "holding", "input"); wins over both
    fixed_by_kind: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass
class SimModbusMeter:
    unit: int
    profile: str
    model: LoadModel
    faults: Faults = field(default_factory=Faults)


def _value_for(point: str, inst: dict[str, float]) -> float:
    if point in inst:
        return inst[point]
    if point.startswith("voltage_l") and point.endswith("_v"):
        return inst["voltage_ll_v"] / math.sqrt(3)
    if point.startswith("voltage_ln"):
        return inst["voltage_ll_v"] / math.sqrt(3)
    if point.startswith("current_"):
        return inst["current_a"]
    if point == "apparent_power_kva":
        return math.hypot(inst["active_power_kw"], inst["reactive_power_kvar"])
    return 0.0


def register_image(points: Sequence[ModbusPointConfig], inst: dict[str, float]) -> dict[tuple[str, int], int]:
    """(kind, address) -> 16-bit register (or 0/1 bit) for every point of a profile at one instant."""
    image: dict[tuple[str, int], int] = {}
    for p in points:
        value = (_value_for(p.name, inst) - p.offset) / p.scale
        if p.type is DataType.STRING:
            regs = encode("SIM", p.type, p.order, p.length)
        elif p.type is DataType.BIT:
            regs = [1 if value else 0]
        else:
            if p.type.value.startswith(("int", "uint")):
                bits = {1: 16, 2: 32, 4: 64}[register_count(p.type)]
                value = int(round(value)) % (1 << bits) if p.type.value.startswith("uint") else int(round(value))
            regs = encode(value, p.type, p.order)
        for i, r in enumerate(regs):
            image[(p.kind.value, p.address + i)] = r
    return image


class _PlantContext(ModbusServerContext):
    """Answers reads from the live model; the server sees it as an old-style simulator context."""

    def __init__(self, meters: Sequence[SimModbusMeter]) -> None:
        # Deliberately not calling super().__init__: that path builds static data blocks we do not use.
        self.old_simulator = True
        self.simdevices = []
        self.meters = {m.unit: m for m in meters}
        self._points = {m.unit: load_profile(m.profile) for m in meters}
        self._cache: dict[int, tuple[int, dict[tuple[str, int], int]]] = {}
        self.requests = 0

    def _image(self, unit: int) -> dict[tuple[str, int], int]:
        now_s = int(time.time())
        cached = self._cache.get(unit)
        if cached is None or cached[0] != now_s:
            meter = self.meters[unit]
            cached = (now_s, register_image(self._points[unit], meter.model.instant(time.time_ns())))
            self._cache[unit] = cached
        return cached[1]

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1
                              ) -> list[int] | list[bool] | ExcCodes:
        self.requests += 1
        meter = self.meters.get(device_id)
        if meter is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        f = meter.faults
        if f.silent:
            await asyncio.sleep(3600)
        if f.delay_s:
            await asyncio.sleep(f.delay_s)
        for start, end in f.illegal_ranges:
            if address < end and start < address + count:
                return ExcCodes.ILLEGAL_ADDRESS
        kind = {1: RegisterKind.COIL, 2: RegisterKind.DISCRETE, 3: RegisterKind.HOLDING, 4: RegisterKind.INPUT}.get(
            func_code)
        if kind is None:
            return ExcCodes.ILLEGAL_FUNCTION
        image = self._image(device_id)
        values = []
        for a in range(address, address + count):
            if (kind.value, a) in f.fixed_by_kind:
                values.append(f.fixed_by_kind[(kind.value, a)])
            elif kind in (RegisterKind.HOLDING, RegisterKind.INPUT) and a in f.fixed:
                values.append(f.fixed[a])
            else:
                values.append(image.get((kind.value, a), 0))
        if kind.is_bit:
            return [bool(v) for v in values]
        return values

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
                              ) -> ExcCodes | None:
        return ExcCodes.ILLEGAL_FUNCTION  # a meter is read-only here

    def device_ids(self) -> list[int]:
        return list(self.meters)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ModbusPlantSimulator:
    def __init__(self, meters: Sequence[SimModbusMeter], host: str = "127.0.0.1", port: int = 0) -> None:
        self.meters = list(meters)
        self.host = host
        self.port = port  # 0: the OS picks a free port at start(); read .port afterwards
        self.context = _PlantContext(self.meters)
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task[None] | None = None

    def meter(self, unit: int) -> SimModbusMeter:
        return self.context.meters[unit]

    async def start(self) -> None:
        for unit in self.context.meters:  # warm the load model so the first answer is as fast as the rest
            self.context._image(unit)
        self._server = ModbusTcpServer(self.context, address=(self.host, self.port))
        self._task = asyncio.create_task(self._server.serve_forever(), name=f"modbus-sim:{self.port}")
        for _ in range(200):
            if self._server.is_active() and self._server.transport is not None:
                sockets = getattr(self._server.transport, "sockets", None)
                if sockets:
                    self.port = int(sockets[0].getsockname()[1])
                return
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError(f"Modbus simulator did not start on {self.host}:{self.port}")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: S110 - shutting down
                pass
            self._task = None

    async def __aenter__(self) -> ModbusPlantSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def demo_meters(n: int, profile: str = "generic", first_unit: int = 1, seed: int = 100) -> list[SimModbusMeter]:
    return [SimModbusMeter(first_unit + i, profile, LoadModel(peak_kw=800 + 150 * i, seed=seed + i))
            for i in range(n)]


async def _main(args: argparse.Namespace) -> None:
    sims = []
    for i in range(args.servers):
        port = args.port + i if args.port else 0
        meters = demo_meters(args.meters, args.profile, seed=100 + 10 * i)
        if i in args.silent_server:
            for m in meters:
                m.faults.silent = True
        sims.append(ModbusPlantSimulator(meters, port=port))
    for s in sims:
        await s.start()
    print(json.dumps({"ports": [s.port for s in sims], "units": [m.unit for m in sims[0].meters]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in sims:
        await s.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=0, help="first port (0: free ports)")
    ap.add_argument("--servers", type=int, default=1, help="servers on consecutive ports")
    ap.add_argument("--meters", type=int, default=3, help="meters (unit ids 1..N) per server")
    ap.add_argument("--profile", default="generic")
    ap.add_argument("--silent-server", type=int, action="append", default=[],
                    help="index of a server whose meters never answer")
    asyncio.run(_main(ap.parse_args()))


if __name__ == "__main__":
    main()
