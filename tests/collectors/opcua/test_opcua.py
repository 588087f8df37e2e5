"""The OPC UA collector against the plant simulator: node ids, modes, chunking, quality, security, restarts."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from asyncua import ua
from pydantic import ValidationError

from collectors.opcua import OpcUaCollector, OpcUaDeviceConfig, TrustError
from collectors.reading import Quality
from collectors.sim.load import LoadModel
from collectors.sim.opcua_server import NAMESPACE, OpcUaPlantSimulator, SimOpcUaMeter
from tests.collectors.opcua.conftest import collect_until, device

pytestmark = pytest.mark.timeout(120)


def meters(n: int = 1) -> list[SimOpcUaMeter]:
    return [SimOpcUaMeter(f"m{i + 1}", LoadModel(peak_kw=800.0 * (i + 1), seed=7 + i)) for i in range(n)]


async def started(**kw: object) -> OpcUaPlantSimulator:
    sim = OpcUaPlantSimulator(meters(kw.pop("n", 1)), **kw)  # type: ignore[arg-type]
    await sim.start()
    return sim


async def test_every_node_id_form_and_a_browse_path_poll(tmp_path):
    sim = await started()
    try:
        ids = sim.node_ids("m1")
        ns = ids["active_power_kw"].split(";")[0]
        nodes = [
            {"point": "active_power_kw", "node_id": ids["active_power_kw"], "unit": "kW"},
            {"point": "power_factor", "node_id": f"nsu={NAMESPACE};s=m1.power_factor"},
            {"point": "numeric", "node_id": f"{ns};i=5001"},
            {"point": "guid", "node_id": f"{ns};g=00000000-0000-0000-0000-000000005002"},
            {"point": "opaque", "node_id": f"{ns};b={base64.b64encode(b'meter-5003').decode()}"},
            {"point": "voltage_ll_v", "browse_path": "0:Objects/2:Plant/2:m1/2:voltage_ll_v", "unit": "V"},
            {"point": "watts", "node_id": ids["active_power_kw"], "scale": 1000.0, "offset": 1.0},
        ]
        col = OpcUaCollector([device(sim.url, nodes, mode="poll")], tmp_path)
        readings = await col.poll_once()
        by_point = {r.point: r for r in readings}
        assert set(by_point) == {n["point"] for n in nodes}
        assert all(r.quality is Quality.GOOD for r in readings), [(r.point, r.quality) for r in readings]
        assert 200 < by_point["voltage_ll_v"].value < 600
        assert by_point["watts"].value == pytest.approx(by_point["active_power_kw"].value * 1000 + 1)
        now = time.time_ns()
        assert all(now - 5e9 < r.source_ts <= now for r in readings), "source timestamps kept"
    finally:
        await sim.stop()


async def test_subscription_delivers_changes_and_a_bad_node_does_not_stop_the_others(tmp_path):
    sim = await started()
    try:
        ids = sim.node_ids("m1")
        nodes = [{"point": "active_power_kw", "node_id": ids["active_power_kw"]},
                 {"point": "active_energy_import_kwh", "node_id": ids["active_energy_import_kwh"]},
                 {"point": "watts", "node_id": ids["active_power_kw"], "scale": 1000.0},
                 {"point": "ghost", "node_id": "ns=2;s=no.such.node"},
                 {"point": "lost", "browse_path": "0:Objects/2:Plant/2:nowhere"}]
        col = OpcUaCollector([device(sim.url, nodes, mode="subscribe")], tmp_path)
        got = await collect_until(col, lambda rs: sum(r.point == "active_power_kw" for r in rs) >= 3)
        power = [r for r in got if r.point == "active_power_kw"]
        assert len(power) >= 3
        assert all(r.quality is Quality.GOOD and r.value > 0 for r in power)
        assert len({r.source_ts for r in power}) == len(power), "every notification is a new sample"
        watts = {r.source_ts: r.value for r in got if r.point == "watts"}
        assert all(watts[r.source_ts] == pytest.approx(r.value * 1000) for r in power), "one node, two points"
        for bad in ("ghost", "lost"):
            rs = [r for r in got if r.point == bad]
            assert rs, bad
            assert all(r.quality is Quality.BAD and r.value is None for r in rs)
        assert col.health()[0].online
    finally:
        await sim.stop()


async def test_polls_are_chunked_to_the_servers_operation_limits(tmp_path):
    sim = await started(max_nodes_per_read=3)
    try:
        nodes = [{"point": p, "node_id": nid} for p, nid in sim.node_ids("m1").items()]
        assert len(nodes) == 8
        col = OpcUaCollector([device(sim.url, nodes, mode="poll")], tmp_path)
        readings = await col.poll_once()
        assert len(readings) == 8
        assert all(r.quality is Quality.GOOD for r in readings), "the server refuses more than 3 per read"
        assert col.read_requests()["dev"] == 3
        too_big = OpcUaCollector([device(sim.url, nodes, mode="poll", max_nodes_per_read=8)], tmp_path)
        failed = await too_big.poll_once()
        assert {r.quality for r in failed} == {Quality.COMM_LOST}
        assert "TooManyOperations" in too_big.health()[0].last_error
    finally:
        await sim.stop()


async def test_status_codes_map_to_quality_and_old_values_are_not_resent(tmp_path):
    sim = await started(period_s=3600)  # the simulator writes once: nothing new after that
    await asyncio.sleep(0.5)  # let that one write happen before the test's own
    try:
        ids = sim.node_ids("m1")
        nodes = [{"point": "active_power_kw", "node_id": ids["active_power_kw"]},
                 {"point": "current_a", "node_id": ids["current_a"]},
                 {"point": "frequency_hz", "node_id": ids["frequency_hz"]},
                 {"point": "voltage_ll_v", "node_id": sim.text_node.to_string()}]  # text, Good status
        await sim.set_quality("m1", "current_a", ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue), 12.5)
        await sim.set_quality("m1", "frequency_hz", ua.StatusCode(ua.StatusCodes.BadSensorFailure))

        col = OpcUaCollector([device(sim.url, nodes, mode="poll", interval_s=0.3)], tmp_path)
        got = await collect_until(col, lambda rs: False, within_s=2.5)
        first = {r.point: r for r in got[:4]}
        assert (first["voltage_ll_v"].quality, first["voltage_ll_v"].value) == (Quality.BAD, None)
        assert first["active_power_kw"].quality is Quality.GOOD
        assert (first["current_a"].quality, first["current_a"].value) == (Quality.UNCERTAIN, 12.5)
        assert (first["frequency_hz"].quality, first["frequency_hz"].value) == (Quality.BAD, None)
        assert col.health()[0].polls >= 4
        good = [r for r in got if r.point in ("active_power_kw", "current_a")]
        assert len(good) == 2, "polls after the first found no newer source time and sent nothing"
    finally:
        await sim.stop()


async def test_sign_and_encrypt_with_a_username_and_a_wrong_password(tmp_path, server_certs, monkeypatch):
    cert, key = server_certs["a"]
    sim = await started(certificate=cert, private_key=key, users={"meter-reader": "s3cret-pw"}, secure_only=True)
    try:
        nodes = [{"point": "active_power_kw", "node_id": sim.node_ids("m1")["active_power_kw"]}]
        secure = {"mode": "poll", "security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt",
                  "username": "meter-reader", "password_env": "OPC_PW"}
        monkeypatch.setenv("OPC_PW", "s3cret-pw")
        col = OpcUaCollector([device(sim.url, nodes, **secure)], tmp_path)
        [r] = await col.poll_once()
        assert r.quality is Quality.GOOD
        own = tmp_path / "opcua" / "pki" / "own" / "dev-cert.der"
        assert own.exists(), "the client certificate is made once and kept"
        made = own.read_bytes()
        [r] = await OpcUaCollector([device(sim.url, nodes, **secure)], tmp_path).poll_once()
        assert own.read_bytes() == made
        monkeypatch.setenv("OPC_PW", "wrong")
        bad = OpcUaCollector([device(sim.url, nodes, **secure)], tmp_path)
        [r] = await bad.poll_once()
        assert r.quality is Quality.COMM_LOST
        assert "refused user 'meter-reader'" in bad.health()[0].last_error
        anonymous = OpcUaCollector([device(sim.url, nodes, mode="poll")], tmp_path)
        [r] = await anonymous.poll_once()
        assert r.quality is Quality.COMM_LOST
    finally:
        await sim.stop()


async def test_server_certificate_trusted_on_first_use_and_a_changed_one_refused(tmp_path, server_certs):
    cert_a, key_a = server_certs["a"]
    cert_b, key_b = server_certs["b"]
    sim = await started(certificate=cert_a, private_key=key_a)
    port = sim.port
    nodes = [{"point": "active_power_kw", "node_id": sim.node_ids("m1")["active_power_kw"]}]
    cfg = device(sim.url, nodes, mode="poll", security_policy="Basic256Sha256", security_mode="Sign")
    try:
        [r] = await OpcUaCollector([cfg], tmp_path).poll_once()
        assert r.quality is Quality.GOOD
        assert (tmp_path / "opcua" / "pki" / "trusted" / "dev.der").read_bytes() != b""
    finally:
        await sim.stop()
    impostor = await started(certificate=cert_b, private_key=key_b, port=port)
    try:
        col = OpcUaCollector([cfg], tmp_path)
        [r] = await col.poll_once()
        assert r.quality is Quality.COMM_LOST
        assert "changed" in col.health()[0].last_error
        explicit = device(impostor.url, nodes, mode="poll", security_policy="Basic256Sha256", security_mode="Sign",
                          server_cert=str(cert_b))
        [r] = await OpcUaCollector([explicit], tmp_path / "other").poll_once()
        assert r.quality is Quality.GOOD, "an explicitly trusted certificate is accepted"
    finally:
        await impostor.stop()
    assert issubclass(TrustError, Exception)


async def test_server_restart_restores_the_subscription(tmp_path):
    sim = await started()
    port = sim.port
    nodes = [{"point": "active_power_kw", "node_id": sim.node_ids("m1")["active_power_kw"]}]
    col = OpcUaCollector([device(sim.url, nodes, mode="subscribe", interval_s=0.5)], tmp_path)
    got: list = []
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(got.extend, stop))
    try:
        await _wait(lambda: sum(r.quality is Quality.GOOD for r in got) >= 2)
        await sim.stop()
        await _wait(lambda: any(r.quality is Quality.COMM_LOST for r in got))
        assert not col.health()[0].online
        lost_at = len(got)
        await asyncio.sleep(1.5)
        assert sum(r.quality is Quality.COMM_LOST for r in got) == 1, "offline is said once per outage"
        sim = OpcUaPlantSimulator(meters(), port=port)
        await sim.start()
        await _wait(lambda: sum(r.quality is Quality.GOOD for r in got[lost_at:]) >= 2, within_s=30)
        assert col.health()[0].online
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await sim.stop()


async def _wait(cond, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(("entry", "message"), [
    ({"nodes": [{"point": "p", "node_id": "2;s=x"}]}, "is not ns=<n>"),
    ({"nodes": [{"point": "p", "node_id": "ns=2;s=x", "browse_path": "0:Objects"}]}, "exactly one of"),
    ({"nodes": [{"point": "p", "browse_path": "Objects/Plant"}]}, "is not <ns index>:<name>"),
    ({"security_policy": "Basic256Sha256"}, "needs security_mode"),
    ({"security_mode": "Sign"}, "needs security_policy"),
    ({"username": "u"}, "needs password_env"),
    ({"url": "http://x"}, "url"),
    ({"nodes": [{"point": "p", "node_id": "ns=2;i=1"}, {"point": "p", "node_id": "ns=2;i=2"}]}, "duplicate points"),
])
def test_config_errors_name_the_problem(entry, message):
    base = {"type": "opcua", "name": "d", "url": "opc.tcp://h:4840", "nodes": [{"point": "p", "node_id": "ns=2;i=1"}]}
    with pytest.raises(ValidationError, match=message):
        OpcUaDeviceConfig.model_validate({**base, **entry})


async def test_certificate_login(tmp_path, server_certs):
    cert, key = server_certs["a"]
    user_cert, user_key = server_certs["b"]
    sim = await started(certificate=cert, private_key=key, user_certs=[user_cert.read_bytes()], secure_only=True)
    try:
        nodes = [{"point": "active_power_kw", "node_id": sim.node_ids("m1")["active_power_kw"]}]
        secure = {"mode": "poll", "security_policy": "Basic256Sha256", "security_mode": "Sign"}
        col = OpcUaCollector([device(sim.url, nodes, user_certificate=str(user_cert), user_private_key=str(user_key),
                                     **secure)], tmp_path)
        [r] = await col.poll_once()
        assert r.quality is Quality.GOOD, col.health()[0].last_error
        stranger = OpcUaCollector([device(sim.url, nodes, user_certificate=str(cert), user_private_key=str(key),
                                          **secure)], tmp_path)
        [r] = await stranger.poll_once()
        assert r.quality is Quality.COMM_LOST
        assert "refused" in stranger.health()[0].last_error
    finally:
        await sim.stop()


async def test_deadband_holds_back_small_changes(tmp_path):
    sim = await started()
    try:
        ids = sim.node_ids("m1")
        nodes = [{"point": "quiet", "node_id": ids["voltage_ll_v"], "deadband": 1000.0},
                 {"point": "busy", "node_id": ids["active_power_kw"]}]
        col = OpcUaCollector([device(sim.url, nodes, mode="subscribe", interval_s=0.5)], tmp_path)
        got = await collect_until(col, lambda rs: sum(r.point == "busy" for r in rs) >= 4)
        assert sum(r.point == "busy" for r in got) >= 4
        assert sum(r.point == "quiet" for r in got) == 1, "only the first value: the voltage moves < 1000 V"
    finally:
        await sim.stop()


@pytest.mark.parametrize(("variant", "value"), [(ua.VariantType.Int64, -(2**53) - 1),
                                                (ua.VariantType.UInt64, 2**64 - 1),
                                                (ua.VariantType.Int32, 7)])
async def test_unscaled_64_bit_integer_nodes_keep_every_digit(tmp_path, variant, value):
    sim = await started(period_s=3600)
    try:
        server = sim._server  # a variable of the integer type, which the simulator's loop never writes
        assert server is not None
        idx = await server.get_namespace_index(NAMESPACE)
        node = await server.nodes.objects.add_variable(ua.NodeId("wide", idx), ua.QualifiedName("wide", idx), value,
                                                       varianttype=variant)
        nid = node.nodeid.to_string()
        nodes = [{"point": "exact", "node_id": nid}, {"point": "scaled", "node_id": nid, "scale": 0.5},
                 {"point": "offset", "node_id": nid, "offset": 1.0}]
        got = {r.point: r.value for r in await OpcUaCollector([device(sim.url, nodes, mode="poll")],
                                                               tmp_path).poll_once()}
    finally:
        await sim.stop()
    wide = variant in (ua.VariantType.Int64, ua.VariantType.UInt64)
    assert type(got["exact"]) is (int if wide else float)
    assert got["exact"] == value
    assert type(got["scaled"]) is float
    assert got["scaled"] == pytest.approx(value * 0.5)
    assert (type(got["offset"]), got["offset"]) == (float, pytest.approx(value + 1.0))
