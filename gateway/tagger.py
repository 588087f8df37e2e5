"""The pipeline's first stage: readings get their customer/site/meter tags, and non-finite values become `bad`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from collectors.reading import Quality, Reading


class Tagger:
    """Adds the customer/site/meter tags of the meter-to-customer mapping to each reading.

    It is also the last guard before storage: a non-finite number (NaN, inf) is never stored as a value; the
    reading becomes quality `bad` with no value.
    """

    def __init__(self, tags: Mapping[str, tuple[str, str, str]]) -> None:
        self._tags = dict(tags)

    def __call__(self, readings: Sequence[Reading]) -> list[Reading]:
        out = []
        for r in readings:
            if r.value is not None and not math.isfinite(r.value):
                r = replace(r, value=None, quality=Quality.BAD)
            t = self._tags.get(r.device)
            out.append(r.tagged(*t) if t is not None else r)
        return out
