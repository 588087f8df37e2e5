"""Read planning: coalesce points into as few requests as the device allows, and split on its complaints."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.modbus.config import ModbusPointConfig, point_size
from collectors.modbus.datatypes import RegisterKind

MAX_BITS = 2000  # function 1/2 limit


@dataclass(frozen=True, slots=True)
class ReadBlock:
    kind: RegisterKind
    address: int
    count: int
    points: tuple[ModbusPointConfig, ...]

    def split(self) -> list[ReadBlock]:
        """Halve by points (a device answered exception 2/3 to the whole block)."""
        if len(self.points) <= 1:
            return [self]
        mid = len(self.points) // 2
        return [block_of(self.kind, self.points[:mid]), block_of(self.kind, self.points[mid:])]


def block_of(kind: RegisterKind, points: tuple[ModbusPointConfig, ...] | list[ModbusPointConfig]) -> ReadBlock:
    start = min(p.address for p in points)
    end = max(p.address + point_size(p) for p in points)
    return ReadBlock(kind, start, end - start, tuple(points))


def plan_reads(points: list[ModbusPointConfig], max_registers: int = 125, max_gap: int = 8) -> list[ReadBlock]:
    """Group points by function, then join neighbours into requests.

    Neighbours join while the request stays within `max_registers` and the unused registers between them stay
    within `max_gap` (reading a gap costs little; a round trip costs a lot).
    """
    blocks: list[ReadBlock] = []
    for kind in RegisterKind:
        mine = sorted((p for p in points if p.kind is kind), key=lambda p: (p.address, point_size(p)))
        limit = MAX_BITS if kind.is_bit else max_registers
        current: list[ModbusPointConfig] = []
        start = end = 0
        for p in mine:
            p_end = p.address + point_size(p)
            if current and p.address - end <= max_gap and max(end, p_end) - start <= limit:
                current.append(p)
                end = max(end, p_end)
                continue
            if current:
                blocks.append(block_of(kind, current))
            current, start, end = [p], p.address, p_end
        if current:
            blocks.append(block_of(kind, current))
    return blocks
