"""Collector plugins by device `type`: each protocol's `[[devices]]` model and the factory of its collector."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TypeAlias, get_args

from pydantic import BaseModel

from collectors.base import Collector, CollectorConfigError, CollectorContext, CollectorError, Plugin
from collectors.modbus.config import ModbusDeviceConfig, ModbusPointConfig
from collectors.opcua.config import OpcUaDeviceConfig, OpcUaNodeConfig

# The one line that registers a protocol: its `[[devices]]` model, whose package (collectors/<protocol>/) defines
# `PLUGIN` (how to build the collector) and holds README.md and sample.toml. Spelled as a type so mypy knows it.
DeviceConfig: TypeAlias = ModbusDeviceConfig | OpcUaDeviceConfig
# What `resolved_points()` of each model returns, for the API's schema of a device's points.
PointConfig: TypeAlias = ModbusPointConfig | OpcUaNodeConfig


def plugin_of(model: type[BaseModel]) -> Plugin:
    """The `PLUGIN` of the package that defines `model` (collectors.modbus for collectors.modbus.config)."""
    package = importlib.import_module(model.__module__.rpartition(".")[0])
    plugin = getattr(package, "PLUGIN", None)
    if not isinstance(plugin, Plugin) or plugin.config is not model:
        raise CollectorError(f"{package.__name__} defines no PLUGIN for {model.__name__}")
    return plugin


PLUGINS: Mapping[str, Plugin] = {p.type: p for p in map(plugin_of, get_args(DeviceConfig))}


def build_collectors(devices: Sequence[BaseModel], context: CollectorContext) -> list[Collector]:
    """One collector per plugin that has devices, in the order of PLUGINS."""
    by_type: dict[str, list[BaseModel]] = {}
    for d in devices:
        by_type.setdefault(getattr(d, "type", ""), []).append(d)
    unknown = sorted(set(by_type) - set(PLUGINS))
    if unknown:
        raise CollectorConfigError(f"no collector plugin for device type {', '.join(map(repr, unknown))}")
    return [plugin.create(by_type[t], context) for t, plugin in PLUGINS.items() if t in by_type]
