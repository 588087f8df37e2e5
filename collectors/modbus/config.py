"""Configuration of Modbus devices and points (the `[[devices]]` entries with `type = "modbus"`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collectors.base import CollectorConfigError, host_key
from collectors.modbus.datatypes import DataType, RegisterKind, WordOrder, register_count
from collectors.modbus.profiles import available_profiles, profile_points


class Transport(StrEnum):
    TCP = "tcp"
    RTU_OVER_TCP = "rtu_over_tcp"  # serial gateways that pass RTU frames through a TCP socket
    RTU = "rtu"  # a local serial port


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModbusPointConfig(_Strict):
    name: str = Field(min_length=1)
    address: int = Field(ge=0, le=65535, description="0-based protocol address (register 40001 is address 0)")
    kind: RegisterKind = RegisterKind.HOLDING
    type: DataType = DataType.UINT16
    order: WordOrder = WordOrder.ABCD
    length: int | None = Field(None, ge=1, le=125, description="registers of a STRING")
    bit: int | None = Field(None, ge=0, le=15, description="bit of a register, for BIT in holding/input")
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    counter: bool = False  # an energy register: wraps and resets are detected

    @model_validator(mode="after")
    def _check(self) -> ModbusPointConfig:
        if self.kind.is_bit and self.type is not DataType.BIT:
            raise ValueError(f"a {self.kind} point must have type 'bit'")
        if self.type is DataType.STRING and self.length is None:
            raise ValueError("a string point needs 'length' (registers)")
        if self.counter and self.type not in (DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.FLOAT32,
                                              DataType.FLOAT64, DataType.INT32, DataType.INT64):
            raise ValueError(f"type {self.type} cannot be an energy counter")
        return self


def point_size(p: ModbusPointConfig) -> int:
    """Registers (or bits) the point spans."""
    if p.kind.is_bit:
        return 1
    return register_count(p.type, p.length)


class ModbusDeviceConfig(_Strict):
    type: Literal["modbus"]
    name: str = Field(min_length=1)
    transport: Transport = Transport.TCP
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit: int = Field(1, ge=0, le=255)
    interval_s: float = Field(1.0, gt=0, le=86400)
    timeout_s: float = Field(1.0, gt=0, le=60)
    retries: int = Field(1, ge=0, le=10)
    backoff_max_s: float = Field(60.0, gt=0)
    max_registers: int = Field(125, ge=1, le=125, description="largest read request")
    max_gap: int = Field(8, ge=0, le=100, description="unused registers a read may span to join two blocks")
    profile: str | None = None
    points: list[ModbusPointConfig] = []

    @model_validator(mode="after")
    def _check(self) -> ModbusDeviceConfig:
        if self.transport in (Transport.TCP, Transport.RTU_OVER_TCP) and not self.host:
            raise ValueError(f"transport {self.transport.value!r} needs 'host'")
        if self.transport is Transport.RTU and not self.serial_port:
            raise ValueError("transport 'rtu' needs 'serial_port'")
        if self.profile and self.points:
            raise ValueError("give either 'profile' or 'points', not both")
        if not self.profile and not self.points:
            raise ValueError("give a meter 'profile' or a list of 'points'")
        names = [p.name for p in self.points]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate point names {dup}")
        if self.profile and self.profile not in available_profiles():
            raise ValueError(f"unknown profile {self.profile!r}; known: {', '.join(available_profiles())}")
        return self

    @property
    def connection_key(self) -> str:
        """Devices with the same key share one connection (and its lock): one bus."""
        if self.transport is Transport.RTU:
            return f"rtu:{self.serial_port}"
        return f"{self.transport.value}:{self.host}:{self.port}"

    def resolved_points(self) -> list[ModbusPointConfig]:
        """The points read: the entry's own, or its profile's."""
        if self.points:
            return list(self.points)
        return load_profile(self.profile or "")

    # -- collectors.base.Device ----------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        if self.transport is Transport.RTU:
            return f"{self.serial_port} unit {self.unit}"
        host = self.host or ""
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"{shown}:{self.port} unit {self.unit}"

    def secret_envs(self) -> list[tuple[str, str]]:
        return []  # Modbus has no login

    def identity(self) -> tuple[str, str, str | None]:
        """One unit on one bus or host: loopback names and addresses are one host (nothing is resolved)."""
        spelled = f"modbus {self.transport.value} {self.address}"
        if self.transport is Transport.RTU:
            return f"{self.transport.value} {self.serial_port} unit {self.unit}", spelled, None
        return (f"{self.transport.value} {host_key(self.host or '')}:{self.port} unit {self.unit}", spelled,
                self.host)

    def entry_problems(self) -> list[tuple[str, str]]:
        problems = []
        for idx, p in enumerate(self.points):
            size = point_size(p)
            if p.address + size > 65536:
                problems.append((f"points[{idx}] ({p.name!r}).address",
                                 f"{p.type} at {p.address} needs {size} registers and runs past the last register "
                                 "65535"))
        return problems


def load_profile(name: str) -> list[ModbusPointConfig]:
    """A meter profile's points as ModbusPointConfig objects (defaults applied)."""
    points = []
    for i, raw in enumerate(profile_points(name)):
        try:
            points.append(ModbusPointConfig.model_validate(raw))
        except ValidationError as exc:
            raise CollectorConfigError(f"profile {name!r} points[{i}]: {exc.errors()[0]['msg']}") from None
    return points
