"""Modbus collector (pymodbus): TCP, RTU over TCP and serial RTU, with coalesced reads and per-device health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collectors.modbus.config import ModbusDeviceConfig, ModbusPointConfig

if TYPE_CHECKING:
    from collectors.modbus.collector import ModbusCollector

__all__ = ["ModbusCollector", "ModbusDeviceConfig", "ModbusPointConfig"]


def __getattr__(name: str) -> Any:  # the collector imports pymodbus: only when asked for
    if name == "ModbusCollector":
        from collectors.modbus.collector import ModbusCollector

        return ModbusCollector
    raise AttributeError(name)
