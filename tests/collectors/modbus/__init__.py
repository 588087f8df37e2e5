"""Modbus collector tests against real pymodbus servers."""
