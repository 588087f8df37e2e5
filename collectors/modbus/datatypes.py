"""Modbus data types, byte/word orders and register kinds, and how to decode and encode them."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from enum import StrEnum


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BIT = "bit"


class WordOrder(StrEnum):
    """Byte order of a multi-register value, named by where bytes A (most significant) .. D land."""

    ABCD = "ABCD"  # big-endian, high word first (Modbus default)
    DCBA = "DCBA"  # little-endian
    BADC = "BADC"  # bytes swapped inside each word
    CDAB = "CDAB"  # words swapped (low word first)


class RegisterKind(StrEnum):
    COIL = "coil"  # function 1
    DISCRETE = "discrete"  # function 2
    HOLDING = "holding"  # function 3
    INPUT = "input"  # function 4

    @property
    def function(self) -> int:
        return {"coil": 1, "discrete": 2, "holding": 3, "input": 4}[self.value]

    @property
    def is_bit(self) -> bool:
        return self in (RegisterKind.COIL, RegisterKind.DISCRETE)


_STRUCT = {
    DataType.INT16: ">h", DataType.UINT16: ">H", DataType.INT32: ">i", DataType.UINT32: ">I",
    DataType.INT64: ">q", DataType.UINT64: ">Q", DataType.FLOAT32: ">f", DataType.FLOAT64: ">d",
}
_WORDS = {DataType.INT16: 1, DataType.UINT16: 1, DataType.INT32: 2, DataType.UINT32: 2, DataType.INT64: 4,
          DataType.UINT64: 4, DataType.FLOAT32: 2, DataType.FLOAT64: 4, DataType.BIT: 1}


def register_count(dtype: DataType, length: int | None = None) -> int:
    if dtype is DataType.STRING:
        return length or 1
    return _WORDS[dtype]


def modulus(dtype: DataType) -> int | None:
    """Where an unsigned counter of this type wraps to zero."""
    return {DataType.UINT16: 1 << 16, DataType.UINT32: 1 << 32, DataType.UINT64: 1 << 64}.get(dtype)


def _to_canonical(raw: bytes, order: WordOrder) -> bytes:
    """Bytes as read (register by register, each big-endian) -> big-endian ABCD.. bytes."""
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if order in (WordOrder.BADC, WordOrder.DCBA):
        words = [w[::-1] for w in words]
    if order in (WordOrder.CDAB, WordOrder.DCBA):
        words = words[::-1]
    return b"".join(words)


def decode(registers: list[int], dtype: DataType, order: WordOrder = WordOrder.ABCD, bit: int | None = None
           ) -> float | int | str | bool:
    """Decode registers (16-bit ints as the device sent them) into a value."""
    raw = b"".join(struct.pack(">H", r & 0xFFFF) for r in registers)
    if dtype is DataType.BIT:
        return bool((registers[0] >> (bit or 0)) & 1)
    if dtype is DataType.STRING:
        data = raw if order in (WordOrder.ABCD, WordOrder.CDAB) else _to_canonical(raw, WordOrder.BADC)
        return data.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()
    want = register_count(dtype)
    if len(registers) != want:
        raise ValueError(f"{dtype} needs {want} registers, got {len(registers)}")
    canon = _to_canonical(raw, order) if want > 1 else (raw[::-1] if order in (WordOrder.BADC, WordOrder.DCBA)
                                                         else raw)
    value: float | int = struct.unpack(_STRUCT[dtype], canon)[0]
    return value


def encode(value: float | int | str, dtype: DataType, order: WordOrder = WordOrder.ABCD, length: int | None = None
           ) -> list[int]:
    """Registers a device would hold for `value` (the simulator and tests use it)."""
    if dtype is DataType.STRING:
        data = str(value).encode("ascii")[: 2 * (length or 1)].ljust(2 * (length or 1), b"\x00")
        if order in (WordOrder.BADC, WordOrder.DCBA):
            data = _to_canonical(data, WordOrder.BADC)
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if dtype is DataType.BIT:
        return [1 if value else 0]
    fmt = _STRUCT[dtype]
    canon = struct.pack(fmt, value if fmt[-1] in "fd" else int(value))
    if len(canon) == 2:
        raw = canon[::-1] if order in (WordOrder.BADC, WordOrder.DCBA) else canon
    else:
        # _to_canonical is its own inverse for every order.
        raw = _to_canonical(canon, order)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def make_decoder(dtype: DataType, order: WordOrder = WordOrder.ABCD, bit: int | None = None
                 ) -> Callable[[Sequence[int]], float | int | str | bool]:
    """A decoder for one point, built once at plan time: the hot path is two struct calls per value."""
    if dtype in (DataType.BIT, DataType.STRING):
        return lambda regs: decode(list(regs), dtype, order, bit)
    n = _WORDS[dtype]
    value = struct.Struct(_STRUCT[dtype])
    swap_bytes = order in (WordOrder.BADC, WordOrder.DCBA)
    reverse_words = n > 1 and order in (WordOrder.CDAB, WordOrder.DCBA)
    words = struct.Struct(f"{'<' if swap_bytes else '>'}{n}H")

    def run(regs: Sequence[int]) -> float | int:
        if len(regs) != n:
            raise ValueError(f"{dtype} needs {n} registers, got {len(regs)}")
        result: float | int = value.unpack(words.pack(*(regs[::-1] if reverse_words else regs)))[0]
        return result

    return run
