"""One connection (TCP socket or serial line) shared by the devices behind it, with a lock serialising requests.

A serial bus cannot carry two requests at once, and many TCP-to-serial gateways cannot either.
"""

from __future__ import annotations

import asyncio
import logging

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from collectors.base import CollectorError
from collectors.modbus.config import ModbusDeviceConfig, Transport
from collectors.modbus.datatypes import RegisterKind

log = logging.getLogger(__name__)


class DeviceUnreachable(CollectorError):
    """No answer in time, or the connection could not be made or was lost.

    `slow` tells a timeout (which held the bus for the whole timeout) from a refused connection (which cost
    nothing): only slow failures earn a device backoff.
    """

    def __init__(self, message: str, slow: bool) -> None:
        super().__init__(message)
        self.slow = slow


class DeviceException(CollectorError):
    """The device answered with a Modbus exception."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Bus:
    def __init__(self, cfg: ModbusDeviceConfig) -> None:
        self.key = cfg.connection_key
        self.lock = asyncio.Lock()
        self._cfg = cfg
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        cfg = self._cfg
        # We retry and reconnect ourselves (per-device backoff); the library's own reconnect loop is off.
        if cfg.transport is Transport.RTU:
            return AsyncModbusSerialClient(
                port=cfg.serial_port or "", baudrate=cfg.baudrate, parity=cfg.parity, stopbits=cfg.stopbits,
                bytesize=cfg.bytesize, timeout=cfg.timeout_s, retries=cfg.retries, reconnect_delay=0,
            )
        framer = FramerType.RTU if cfg.transport is Transport.RTU_OVER_TCP else FramerType.SOCKET
        return AsyncModbusTcpClient(cfg.host or "", port=cfg.port, framer=framer, timeout=cfg.timeout_s,
                                    retries=cfg.retries, reconnect_delay=0)

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        if self._client is not None:
            self._client.close()
        self._client = self._make_client()
        try:
            ok = await asyncio.wait_for(self._client.connect(), timeout=self._cfg.timeout_s + 1)
        except (TimeoutError, OSError, ModbusException) as exc:
            ok = False
            reason = str(exc) or type(exc).__name__
        else:
            reason = "connection refused or timed out"
        if not ok:
            self._client.close()
            self._client = None
            raise DeviceUnreachable(f"{self.key}: cannot connect ({reason})", slow=False)
        return self._client

    async def read(self, kind: RegisterKind, address: int, count: int, unit: int, timeout_s: float
                   ) -> list[int] | list[bool]:
        """One request; the caller holds `lock`."""
        client = await self._connected()
        call = {
            RegisterKind.COIL: client.read_coils,
            RegisterKind.DISCRETE: client.read_discrete_inputs,
            RegisterKind.HOLDING: client.read_holding_registers,
            RegisterKind.INPUT: client.read_input_registers,
        }[kind]
        try:
            # The library retries inside `timeout`; this outer bound only guards against a wedged transport.
            async with asyncio.timeout(timeout_s * (self._cfg.retries + 1) + 1.0):
                resp = await call(address, count=count, device_id=unit)
        except (TimeoutError, ModbusIOException, ConnectionException, OSError) as exc:
            self.drop()
            raise DeviceUnreachable(f"{self.key} unit {unit}: no answer to {kind.value} {address}+{count} "
                                    f"({type(exc).__name__})", slow=not isinstance(exc, ConnectionException)) from None
        except ModbusException as exc:
            self.drop()
            raise DeviceUnreachable(f"{self.key} unit {unit}: {exc}", slow=True) from None
        if resp.isError():
            code = int(getattr(resp, "exception_code", 0) or 0)
            raise DeviceException(code, f"{self.key} unit {unit}: exception {code} to {kind.value} {address}+{count}")
        if kind.is_bit:
            return list(resp.bits[:count])
        regs = list(resp.registers)
        if len(regs) != count:
            raise DeviceException(0, f"{self.key} unit {unit}: asked {count} registers at {address}, got {len(regs)}")
        return regs

    def drop(self) -> None:
        """Forget the connection (a timed-out TCP stream may hold a late answer that would be misread)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        self.drop()
