"""Modbus collector (pymodbus): TCP, RTU over TCP and serial RTU, with coalesced reads and per-device health."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from collectors.base import Collector, CollectorContext, Plugin
from collectors.modbus.config import ModbusDeviceConfig, ModbusPointConfig

if TYPE_CHECKING:
    from collectors.modbus.collector import ModbusCollector

__all__ = ["PLUGIN", "ModbusCollector", "ModbusDeviceConfig", "ModbusPointConfig"]


def create(devices: Sequence[ModbusDeviceConfig], context: CollectorContext) -> Collector:
    """One collector for every Modbus device; devices at one address share its connection."""
    from collectors.modbus.collector import ModbusCollector

    return ModbusCollector(devices)


PLUGIN = Plugin(ModbusDeviceConfig, create)


def __getattr__(name: str) -> Any:  # the collector imports pymodbus: only when asked for
    if name == "ModbusCollector":
        from collectors.modbus.collector import ModbusCollector

        return ModbusCollector
    raise AttributeError(name)
