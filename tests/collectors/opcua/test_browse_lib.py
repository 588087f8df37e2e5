"""collectors.opcua.browse against the real simulator: a secure-only server browsed with the collector's settings."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from asyncua import ua

from collectors.base import CollectorError
from collectors.opcua.browse import BrowseError, browse_nodes
from collectors.opcua.config import OpcUaEndpointConfig
from collectors.sim.load import LoadModel
from collectors.sim.opcua_server import OpcUaPlantSimulator, SimOpcUaMeter

pytestmark = pytest.mark.timeout(120)
POWER = "0:Objects/2:Plant/2:m1/2:active_power_kw"


async def _secure_sim(server_certs: dict) -> OpcUaPlantSimulator:
    cert, key = server_certs["a"]
    sim = OpcUaPlantSimulator([SimOpcUaMeter("m1", LoadModel(peak_kw=800.0, seed=7))], certificate=cert,
                              private_key=key, users={"meter-reader": "s3cret-pw"}, secure_only=True)
    await sim.start()
    return sim


def _endpoint(url: str, **kw: object) -> OpcUaEndpointConfig:
    return OpcUaEndpointConfig.model_validate({"name": "browse", "url": url, "timeout_s": 2, **kw})


SECURE = {"security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt", "username": "meter-reader",
          "password_env": "OPC_PW"}


async def test_secure_only_server_is_browsed_with_sign_and_encrypt_and_a_username(tmp_path, server_certs):
    sim = await _secure_sim(server_certs)
    try:
        nodes = await browse_nodes(_endpoint(sim.url, **SECURE), depth=3, state_dir=tmp_path,
                                   environ={"OPC_PW": "s3cret-pw"})
        by_path = {n["browse_path"]: n for n in nodes}
        assert by_path[POWER]["node_id"] == sim.node_ids("m1")["active_power_kw"]
        assert by_path[POWER]["status"] == "Good"
        assert by_path[POWER]["value"] > 0
        # Trusted on first use and pinned, as the collector does.
        assert (tmp_path / "opcua" / "pki" / "trusted" / "browse.der").exists()
        # An anonymous, unsecured browse of the same server gets no session.
        with pytest.raises(BrowseError) as err:
            await browse_nodes(_endpoint(sim.url), depth=1)
        assert isinstance(err.value, CollectorError)
    finally:
        await sim.stop()


async def test_wrong_password_is_a_device_error_naming_the_user(tmp_path, server_certs):
    sim = await _secure_sim(server_certs)
    try:
        with pytest.raises(BrowseError, match="refused user 'meter-reader'") as err:
            await browse_nodes(_endpoint(sim.url, **SECURE), state_dir=tmp_path, environ={"OPC_PW": "wrong"})
        assert err.value.code == "device_error"
        with pytest.raises(BrowseError, match="OPC_PW is not set"):
            await browse_nodes(_endpoint(sim.url, **SECURE), state_dir=tmp_path, environ={})
    finally:
        await sim.stop()


async def test_nan_and_uncertain_values_are_json_with_their_status(tmp_path):
    sim = OpcUaPlantSimulator([SimOpcUaMeter("m1", LoadModel(peak_kw=800.0, seed=7))], period_s=3600)
    await sim.start()
    try:
        await asyncio.sleep(0.5)  # past the simulator's first update, which would overwrite the values set here
        await sim.set_quality("m1", "power_factor", ua.StatusCode(ua.StatusCodes.Good), math.nan)
        await sim.set_quality("m1", "current_a", ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue), 12.5)
        nodes = {n["browse_name"]: n for n in await browse_nodes(_endpoint(sim.url), depth=3)}
    finally:
        await sim.stop()
    json.dumps(list(nodes.values()), allow_nan=False)  # raises on NaN
    assert (nodes["power_factor"]["value"], nodes["power_factor"]["value_text"]) == (None, "nan")
    assert (nodes["current_a"]["value"], nodes["current_a"]["status"]) == (12.5, "UncertainLastUsableValue")


async def test_unreachable_server_is_device_unreachable():
    with pytest.raises(BrowseError, match="cannot connect to opc.tcp://127.0.0.1:1/") as err:
        await browse_nodes(_endpoint("opc.tcp://127.0.0.1:1/", timeout_s=1))
    assert err.value.code == "device_unreachable"


async def test_secure_browse_needs_a_state_directory():
    with pytest.raises(BrowseError, match="state directory"):
        await browse_nodes(_endpoint("opc.tcp://127.0.0.1:1/", **SECURE))
