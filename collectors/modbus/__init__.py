"""Modbus collector (pymodbus): TCP, RTU over TCP and serial RTU, with coalesced reads and per-device health."""

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.config import ModbusDeviceConfig, ModbusPointConfig

__all__ = ["ModbusCollector", "ModbusDeviceConfig", "ModbusPointConfig"]
