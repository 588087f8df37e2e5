"""The pipeline's first stage: readings get their customer/site/meter tags, and non-finite values become `bad`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from collectors.base import ReadingBatch
from collectors.reading import Quality, Reading


class Tagger:
    """Adds the customer/site/meter tags of the meter-to-customer mapping to a hand-over of readings.

    It is also the last guard before storage: a non-finite number (NaN, inf) is never stored as a value; the
    reading becomes quality `bad` with no value. It works on whole columns (one look-up per device of the batch,
    not per reading) and gives a `ReadingBatch`; a device without a mapping keeps the tags it came with.
    """

    def __init__(self, tags: Mapping[str, tuple[str, str, str]]) -> None:
        self._tags = dict(tags)

    def __call__(self, readings: Sequence[Reading]) -> ReadingBatch:
        b = ReadingBatch.of(readings)
        value, quality = b.value, b.quality
        bad = [i for i, v in enumerate(value) if v is not None and v.__class__ is not int and not math.isfinite(v)]
        if bad:
            value, quality = list(value), list(quality)
            for i in bad:
                value[i], quality[i] = None, Quality.BAD
        devices = set(b.device)
        tags = {d: self._tags.get(d) for d in devices}
        if len(devices) == 1:  # one poll of one device: the common case
            t = tags[b.device[0]] if b.device else None
            n = len(b)
            customer, site, meter = ([t[0]] * n, [t[1]] * n, [t[2]] * n) if t is not None else (b.customer, b.site,
                                                                                                  b.meter)
        elif all(t is not None for t in tags.values()):
            rows = [tags[d] for d in b.device]
            customer, site, meter = ([t[k] for t in rows] for k in range(3))  # type: ignore[index]
        else:
            customer, site, meter = list(b.customer), list(b.site), list(b.meter)
            for i, d in enumerate(b.device):
                if (t := tags[d]) is not None:
                    customer[i], site[i], meter[i] = t
        return ReadingBatch(b.device, b.point, value, b.unit, quality, b.source_ts, b.gateway_ts, customer, site,
                            meter)
