"""The collector registry: one plugin per device type, the gateway's config union and collectors built from it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from collectors import modbus, opcua
from collectors.base import CollectorConfigError, CollectorContext, CollectorError
from collectors.modbus import ModbusDeviceConfig
from collectors.opcua import OpcUaDeviceConfig
from collectors.reading import Reading
from collectors.registry import PLUGINS, DeviceConfig, build_collectors, plugin_of
from gateway.config import DeviceConfig as GatewayDeviceConfig
from gateway.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_each_registered_model_brings_its_package_plugin():
    assert list(PLUGINS) == ["modbus", "opcua"]
    assert tuple(p.config for p in PLUGINS.values()) == get_args(DeviceConfig)
    assert PLUGINS["modbus"] is modbus.PLUGIN
    assert PLUGINS["opcua"] is opcua.PLUGIN
    assert plugin_of(ModbusDeviceConfig) is modbus.PLUGIN


def test_a_model_whose_package_has_no_plugin_is_refused():
    from collectors.modbus.config import ModbusPointConfig

    with pytest.raises(CollectorError, match="collectors.modbus defines no PLUGIN for ModbusPointConfig"):
        plugin_of(ModbusPointConfig)
    with pytest.raises(CollectorError, match="collectors defines no PLUGIN for Reading"):
        plugin_of(Reading)  # type: ignore[arg-type]


def test_the_gateway_union_is_the_registry_union():
    union, field = get_args(GatewayDeviceConfig)
    assert union == DeviceConfig
    assert field.discriminator == "type"


def test_config_entries_become_one_collector_per_protocol_in_use(tmp_path):
    cfg = parse_config({"devices": [
        {"type": "opcua", "name": "o1", "url": "opc.tcp://127.0.0.1:4840", "nodes": [{"point": "p", "node_id": "i=1"}]},
        {"type": "modbus", "name": "m1", "host": "10.0.0.1", "profile": "generic"},
        {"type": "modbus", "name": "m2", "host": "10.0.0.1", "unit": 2, "profile": "generic"},
    ]})
    assert [type(d) for d in cfg.devices] == [OpcUaDeviceConfig, ModbusDeviceConfig, ModbusDeviceConfig]
    context = CollectorContext(state_dir=tmp_path, environ={"X": "1"})
    modbus, opcua = build_collectors(cfg.devices, context)
    assert modbus.name == "modbus"
    assert [h.device for h in modbus.health()] == ["m1", "m2"]
    assert opcua.name == "opcua"
    assert [h.device for h in opcua.health()] == ["o1"]
    assert opcua.devices[0].environ == {"X": "1"}  # type: ignore[attr-defined]
    assert build_collectors([], context) == []
    only_modbus = build_collectors(cfg.devices[1:], context)
    assert [c.name for c in only_modbus] == ["modbus"]


def test_a_device_of_no_plugin_is_refused(tmp_path):
    class Other(ModbusDeviceConfig):
        type: str  # type: ignore[assignment]

    stray = Other.model_construct(type="bacnet", name="b1")
    with pytest.raises(CollectorConfigError, match="no collector plugin for device type 'bacnet'"):
        build_collectors([stray], CollectorContext(state_dir=tmp_path, environ={}))


def test_the_runtime_names_no_protocol():
    """gateway/runtime.py builds collectors through the registry: no per-protocol import or isinstance there."""
    tree = ast.parse((ROOT / "gateway" / "runtime.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not {m for m in imported if m.startswith(("collectors.modbus", "collectors.opcua"))}
    assert not names & {"ModbusDeviceConfig", "OpcUaDeviceConfig", "ModbusCollector", "OpcUaCollector"}


@pytest.mark.parametrize("protocol", list(PLUGINS))
def test_every_plugins_sample_devices_speak_the_common_device_interface(protocol: str):
    """The gateway asks any device only through collectors.base.Device: sample entries answer every part of it."""
    import tomllib

    from collectors.base import Device

    sample = tomllib.loads((ROOT / "collectors" / protocol / "sample.toml").read_text(encoding="utf-8"))
    devices = [PLUGINS[protocol].config.model_validate(entry) for entry in sample["devices"]]
    assert devices
    for d in devices:
        assert isinstance(d, Device)
        assert d.address
        assert d.address == getattr(d, "url", d.address)
        points = list(d.resolved_points())
        assert points
        assert all(getattr(p, "name", None) or getattr(p, "point", None) for p in points)
        assert all(var for _, var in d.secret_envs())
        assert d.entry_problems() == []
        identity = d.identity()
        assert identity is None or (identity[0] and protocol in identity[1])


def test_a_modbus_identity_treats_loopback_spellings_as_one_unit():
    common = {"type": "modbus", "port": 502, "unit": 7, "profile": "generic"}
    one = ModbusDeviceConfig.model_validate({**common, "name": "a", "host": "localhost"})
    two = ModbusDeviceConfig.model_validate({**common, "name": "b", "host": "::1"})
    other_unit = ModbusDeviceConfig.model_validate({**common, "name": "c", "host": "127.0.0.1", "unit": 8})
    assert one.identity()[0] == two.identity()[0] != other_unit.identity()[0]
    assert two.address == "[::1]:502 unit 7"
    assert OpcUaDeviceConfig.model_validate({"type": "opcua", "name": "o", "url": "opc.tcp://h:4840",
                                             "nodes": [{"node_id": "ns=2;s=P", "point": "p"}]}).identity() is None
