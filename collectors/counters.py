"""Energy counters: interval deltas that survive a register wrapping around and a meter being reset."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    NORMAL = "normal"
    WRAP = "wrap"  # the register rolled over its maximum
    RESET = "reset"  # the register went back (meter reset or replaced): the delta is unknown


@dataclass(frozen=True, slots=True)
class Delta:
    value: float | int | None
    step: Step


def counter_delta(previous: float | int, current: float | int, wrap_at: float | int | None,
                  wrap_window: float = 0.1) -> Delta:
    """Energy between two register readings.

    A fall is a wrap only when the register has a known wrap point, the previous value was in the top
    `wrap_window` of the range and the new one in the bottom of it; any other fall is a reset.
    """
    if current >= previous:
        return Delta(current - previous, Step.NORMAL)
    if wrap_at is not None and previous >= wrap_at * (1 - wrap_window) and current <= wrap_at * wrap_window:
        return Delta(current + wrap_at - previous, Step.WRAP)
    return Delta(None, Step.RESET)


class CounterTracker:
    """Turns a wrapping register into a monotonic total (register + wraps x range) for storage.

    After a reset the total restarts from the new register value; the stored series steps back there, which the
    query layer reports as one interval of unknown energy instead of inventing a number.
    """

    def __init__(self, wrap_at: float | int | None) -> None:
        self.wrap_at = wrap_at
        self._last_raw: float | int | None = None
        self._offset: float | int = 0  # an int, so an int register (a 64-bit counter) stays exact

    def update(self, raw: float | int) -> tuple[float | int, Step]:
        if self._last_raw is None:
            self._last_raw = raw
            return raw + self._offset, Step.NORMAL
        d = counter_delta(self._last_raw, raw, self.wrap_at)
        if d.step is Step.WRAP and self.wrap_at is not None:
            self._offset += self.wrap_at
        elif d.step is Step.RESET:
            self._offset = 0
        self._last_raw = raw
        return raw + self._offset, d.step
