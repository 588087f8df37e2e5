"""An OPC UA plant simulator: meters under Objects/Plant/<meter>, values from the load model every second.

Each meter is an object whose variables carry canonical point names (active_power_kw, power_factor,
active_energy_import_kwh, ...). Values are written with source timestamps. Options: Basic256Sha256 Sign and
SignAndEncrypt endpoints with a server certificate, username/password users, a small MaxNodesPerRead that the
server really enforces (to test chunking), and nodes with every identifier type (numeric, string, GUID, opaque).

Run: python -m collectors.sim.opcua_server --meters 3 [--port P] [--fast] [--models N]; prints {"url", "nodes"}
as one JSON line. `--fast` (the benchmark's writer, one process holding a share of 10,000 nodes) writes a pass
straight into the address space and skips the copy asyncua makes of every value for every monitored item;
`--models N` cycles N load models over the meters, so starting thousands of nodes takes seconds, not minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.monitored_item_service import MonitoredItemValues
from asyncua.server.user_managers import UserManager
from cryptography.hazmat.primitives.serialization import Encoding

from collectors.sim.load import LoadModel

NAMESPACE = "urn:energy-gateway:sim"
POINT_UNITS = {
    "active_power_kw": "kW", "reactive_power_kvar": "kvar", "power_factor": "", "voltage_ll_v": "V",
    "current_a": "A", "frequency_hz": "Hz", "active_energy_import_kwh": "kWh", "reactive_energy_import_kvarh": "kvarh",
}
log = logging.getLogger(__name__)


@dataclass
class SimOpcUaMeter:
    name: str
    model: LoadModel


class _Users(UserManager):
    def __init__(self, users: dict[str, str], user_certs: list[bytes]) -> None:
        self.users, self.user_certs = users, user_certs

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username:
            return User(role=UserRole.User, name=username) if self.users.get(username) == password else None
        if self.user_certs:  # certificate logins only: the X509 token's certificate must be on the list
            der = certificate if isinstance(certificate, bytes) or certificate is None else \
                certificate.public_bytes(Encoding.DER)
            return User(role=UserRole.User, name="x509") if der in self.user_certs else None
        return None if self.users else User(role=UserRole.User)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OpcUaPlantSimulator:
    """Meters on an asyncua server; `await start()` sets `url`, `await stop()` ends it."""

    meters: Sequence[SimOpcUaMeter]
    host: str = "127.0.0.1"
    port: int = 0
    certificate: Path | None = None  # with `private_key`: offer Basic256Sha256 Sign and SignAndEncrypt
    private_key: Path | None = None
    users: dict[str, str] = field(default_factory=dict)  # when set, anonymous logins are refused
    user_certs: list[bytes] = field(default_factory=list)  # DER certificates allowed to log in (X509 tokens)
    secure_only: bool = False
    max_nodes_per_read: int = 0  # 0: no limit
    period_s: float = 1.0
    fast_writes: bool = False  # a pass written straight into the address space (see `_write_pass`)
    url: str = ""
    _server: Server | None = None
    _task: asyncio.Task[None] | None = None
    _nodes: dict[str, dict[str, ua.NodeId]] = field(default_factory=dict)
    extra_nodes: dict[str, ua.NodeId] = field(default_factory=dict)  # identifier-type examples: kind -> node id
    text_node: ua.NodeId | None = None

    async def start(self) -> None:
        if self.port == 0:
            self.port = free_port()
        self.url = f"opc.tcp://{self.host}:{self.port}/plant/"
        server = Server(user_manager=_Users(self.users, self.user_certs))
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("energy-gateway plant simulator")
        await server.set_application_uri("urn:energy-gateway:sim:server")
        policies = [] if self.secure_only else [ua.SecurityPolicyType.NoSecurity]
        if self.certificate and self.private_key:
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
            policies += [ua.SecurityPolicyType.Basic256Sha256_Sign, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
        server.set_security_policy(policies)
        tokens: list[type] = [ua.AnonymousIdentityToken]
        if self.users:
            tokens = [ua.UserNameIdentityToken]
        if self.user_certs:
            tokens = [*tokens[:1 if self.users else 0], ua.X509IdentityToken]
        server.set_identity_tokens(tokens)
        idx = await server.register_namespace(NAMESPACE)
        plant = await server.nodes.objects.add_folder(idx, "Plant")
        now = time.time_ns()
        for m in self.meters:
            obj = await plant.add_object(idx, m.name)
            values = m.model.instant(now)
            nodes = {}
            for point in POINT_UNITS:
                node = await obj.add_variable(ua.NodeId(f"{m.name}.{point}", idx), ua.QualifiedName(point, idx),
                                              float(values[point]), varianttype=ua.VariantType.Double)
                nodes[point] = node.nodeid
            self._nodes[m.name] = nodes
        # One variable per identifier type (numeric, GUID, opaque) so clients can test every node-id form.
        extras = {"numeric": ua.NodeId(5001, idx), "guid": ua.NodeId(uuid.UUID(int=0x5002), idx),
                  "opaque": ua.NodeId(b"meter-5003", idx)}
        for kind, nid in extras.items():
            node = await plant.add_variable(nid, ua.QualifiedName(f"{kind}_value", idx), 1.0,
                                            varianttype=ua.VariantType.Double)
            self.extra_nodes[kind] = node.nodeid
        # A text variable: what a client gets when a configured point is not a number.
        text = await plant.add_variable(ua.NodeId("Plant.status_text", idx), ua.QualifiedName("status_text", idx),
                                        "RUN", varianttype=ua.VariantType.String)
        self.text_node = text.nodeid
        if self.max_nodes_per_read:
            limit = server.get_node(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
            await limit.write_value(ua.Variant(self.max_nodes_per_read, ua.VariantType.UInt32))
            self._enforce_read_limit(server, self.max_nodes_per_read)
        await server.start()
        self._server = server
        self._task = asyncio.create_task(self._update(), name="opcua-sim")

    @staticmethod
    def _enforce_read_limit(server: Server, limit: int) -> None:
        service = server.iserver.attribute_service
        original = service.read

        def read(params: ua.ReadParameters) -> list[ua.DataValue]:
            if len(params.NodesToRead) > limit:
                raise ua.uaerrors.BadTooManyOperations()
            return original(params)

        service.read = read  # type: ignore[method-assign]

    async def _update(self) -> None:
        assert self._server is not None  # noqa: S101 - set by start()
        write = self._write_pass if self.fast_writes else self._server.write_attribute_value
        next_at = time.monotonic()
        while True:
            now = time.time_ns()
            stamp = datetime.fromtimestamp(now / 1e9, UTC)
            instants: dict[LoadModel, dict[str, float]] = {}  # meters sharing a model share its values
            for m in self.meters:
                values = instants.get(m.model)
                if values is None:
                    values = instants[m.model] = m.model.instant(now)
                for point, nid in self._nodes[m.name].items():
                    dv = ua.DataValue(ua.Variant(float(values[point]), ua.VariantType.Double),
                                      SourceTimestamp=stamp, ServerTimestamp=stamp)
                    await write(nid, dv)
            for nid in self.extra_nodes.values():
                dv = ua.DataValue(ua.Variant(float(now // 10**9 % 1000), ua.VariantType.Double),
                                  SourceTimestamp=stamp, ServerTimestamp=stamp)
                await write(nid, dv)
            # On a fixed grid, as a meter samples: a pass woken late does not push every later one back, and a
            # pass longer than the period (too many nodes for the process) waits for the next grid point.
            next_at += self.period_s
            late = time.monotonic() - next_at
            if late > 0:
                next_at += (late // self.period_s + 1) * self.period_s
            await asyncio.sleep(next_at - time.monotonic())

    async def _write_pass(self, nid: ua.NodeId, dv: ua.DataValue) -> None:
        """One value into the address space and to its monitored items, without write_attribute_value's checks.

        The simulator's own Double nodes need no type check, and each pass makes new DataValues, so nothing that
        asyncua keeps can change under it.
        """
        assert self._server is not None  # noqa: S101 - set by start()
        node = self._server.iserver.aspace.get(nid)
        if node is None:
            return
        attval = node.attributes[ua.AttributeIds.Value]
        attval.value, attval.value_callback = dv, None
        for handle, callback in list(attval.datachange_callbacks.items()):
            await callback(handle, dv)

    def node_ids(self, meter: str) -> dict[str, str]:
        """Point -> node id string (nsu form is the client's job; these are ns=<index>;s=<meter>.<point>)."""
        return {p: nid.to_string() for p, nid in self._nodes[meter].items()}

    async def set_quality(self, meter: str, point: str, status: ua.StatusCode, value: float | None = None) -> None:
        """Write a status (e.g. Uncertain, Bad) to one point: tests map status codes to quality with it."""
        assert self._server is not None  # noqa: S101
        stamp = datetime.now(UTC)
        variant = ua.Variant(value, ua.VariantType.Double) if value is not None else ua.Variant()
        await self._server.write_attribute_value(self._nodes[meter][point], ua.DataValue(
            variant, StatusCode=status, SourceTimestamp=stamp, ServerTimestamp=stamp))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None


def _keep_written_values() -> None:
    """Monitored items keep the DataValue written instead of a deep copy (200 us a notification in asyncua 2.1).

    Only for the standalone `--fast` writer: it never changes a DataValue after writing it, which is what the
    copy guards against. What a client receives is the same.
    """
    def keep(self: MonitoredItemValues, cur_val: ua.DataValue) -> None:
        self.old_dvalue, self.current_dvalue = self.current_dvalue, cur_val

    MonitoredItemValues.set_current_datavalue = keep  # type: ignore[method-assign]


async def _main(args: argparse.Namespace) -> None:
    models = args.models or args.meters  # building a model's history is the slow part of starting
    meters = [SimOpcUaMeter(f"meter{i + 1}", LoadModel(peak_kw=500.0 * (i % models + 1), seed=100 + i % models))
              for i in range(args.meters)]
    if args.fast:
        _keep_written_values()
    sim = OpcUaPlantSimulator(meters, port=args.port, fast_writes=args.fast)
    await sim.start()
    print(json.dumps({"url": sim.url, "nodes": {m.name: sim.node_ids(m.name) for m in meters}}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description="OPC UA plant simulator")
    ap.add_argument("--meters", type=int, default=3)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fast", action="store_true", help="cheap writes, for benchmarks (see the module docstring)")
    ap.add_argument("--models", type=int, default=0, help="distinct load models cycled over the meters (0: one each)")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_main(ap.parse_args()))


if __name__ == "__main__":
    main()

