"""ESPI LocalTimeParameters from a zone's own rules (zoneinfo): standard offset, DST offset, DST start and end rules."""

from __future__ import annotations

import calendar
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

log = logging.getLogger(__name__)
DST_DISABLED = "FFFFFFFF"  # DstRuleType: rule processing / DST correction disabled


@dataclass(frozen=True)
class TimeConfiguration:
    """ESPI LocalTimeParameters: standard offset, DST offset and the DST rules, all from the zone's rules."""

    dst_end_rule: str
    dst_offset: int
    dst_start_rule: str
    tz_offset: int


def iana_zone(tz: tzinfo | None) -> ZoneInfo | None:
    """The IANA zone behind an index's tz (zoneinfo or pytz), or None for a fixed offset."""
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _offset_s(zone: tzinfo, at_s: int) -> int:
    off = datetime.fromtimestamp(at_s, UTC).astimezone(zone).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def _transitions(zone: tzinfo, year: int) -> list[tuple[int, int, int]]:
    """(UTC epoch, offset before, offset after) of every change of the zone's UTC offset in `year`."""
    out = []
    t, end = int(datetime(year, 1, 1, tzinfo=UTC).timestamp()), int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    before = _offset_s(zone, t)
    while t < end:
        nxt = min(t + 86_400, end)
        after = _offset_s(zone, nxt)
        if after != before:
            lo, hi = t, nxt  # offset(lo) is the old one, offset(hi) the new one
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset_s(zone, mid) == before else (lo, mid)
            out.append((hi, before, after))
        t, before = nxt, after
    return out


def _rule_day(year: int, month: int, op: int, dom: int, dow: int) -> date | None:
    """The day a DstRuleType rule names in `year` (operators as the schema defines them)."""
    days = calendar.monthrange(year, month)[1]
    if op == 0:
        return date(year, month, dom) if 1 <= dom <= days else None
    if op == 1:
        if not 1 <= dom <= days:
            return None
        first = date(year, month, dom)
        found = first + timedelta(days=(dow - first.isoweekday()) % 7)
        return found if found.month == month else None
    if op == 7:
        last = date(year, month, days)
        return last - timedelta(days=(last.isoweekday() - dow) % 7)
    first = date(year, month, 1)
    found = first + timedelta(days=(dow - first.isoweekday()) % 7 + 7 * (op - 2))
    return found if found.month == month else None


def _rule(local: datetime, others: Sequence[datetime]) -> str:
    """The DstRuleType of a change at local wall time `local` (the wall clock just before the change).

    Of the forms that name that day, the first that also gives the change in the neighbouring years `others` is
    taken (the last Sunday, not the fifth): the zone's rule, not one year's date.
    """
    day, dow = local.day, local.isoweekday()
    candidates = [(7, 0, dow)] if day + 7 > calendar.monthrange(local.year, local.month)[1] else []
    candidates.append(((day - 1) // 7 + 2, 0, dow))
    candidates += [(1, d, dow) for d in range(max(1, day - 6), day + 1)]
    candidates.append((0, day, 0))
    secs = local.minute * 60 + local.second

    def fits(c: tuple[int, int, int], t: datetime) -> bool:
        return (t.month == local.month and (t.hour, t.minute, t.second) == (local.hour, local.minute, local.second)
                and _rule_day(t.year, t.month, *c) == t.date())

    op, dom, wd = next((c for c in candidates if all(fits(c, t) for t in others)), candidates[0])
    value = local.month << 28 | op << 25 | dom << 20 | wd << 17 | local.hour << 12 | secs
    return f"{value:08X}"


def _changes(zone: tzinfo, year: int) -> tuple[datetime, datetime, int, int] | None:
    """Local wall times (before the change) of DST start and end in `year`, standard offset and DST offset."""
    changes = _transitions(zone, year)
    if len(changes) != 2:
        return None
    (t1, b1, a1), (t2, b2, a2) = changes
    if a1 - b1 != b2 - a2 or a1 == b1:
        return None
    (ts, bs), (te, be) = ((t1, b1), (t2, b2)) if a1 > b1 else ((t2, b2), (t1, b1))
    return _wall(ts, bs), _wall(te, be), min(b1, a1), abs(a1 - b1)


def _wall(epoch_s: int, offset_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s + offset_s, UTC).replace(tzinfo=None)


def time_configuration(timezone: str | tzinfo, year: int) -> TimeConfiguration:
    """LocalTimeParameters for a zone from its rules (zoneinfo): standard offset, DST offset, DST start and end.

    A rule's time is the local wall-clock time just before the change (US: 02:00 both ways, as the Green Button
    samples write `360E2000` and `B40E2000`; EU: 02:00 on the last Sunday of March, 03:00 on the last Sunday of
    October). A zone without DST in `year` has both rules disabled (`FFFFFFFF`) and a DST offset of 0.
    """
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    found = _changes(zone, year)
    if found is None:
        mid = datetime(year, 1, 1, tzinfo=UTC)
        standard = mid.astimezone(zone).utcoffset() or timedelta(0)
        dst = mid.astimezone(zone).dst() or timedelta(0)
        if _transitions(zone, year):
            log.warning("zone %s changes its offset in %d in a way no DST rule states; DST rules left out", zone, year)
        return TimeConfiguration(DST_DISABLED, 0, DST_DISABLED, int((standard - dst).total_seconds()))
    start, end, standard_s, dst_s = found
    near = [c for y in (year - 2, year - 1, year + 1, year + 2) if (c := _changes(zone, y)) is not None]
    return TimeConfiguration(_rule(end, [c[1] for c in near]), dst_s, _rule(start, [c[0] for c in near]), standard_s)


def fixed_offset(idx: pd.DatetimeIndex) -> TimeConfiguration:
    """A fixed UTC offset has no DST rules."""
    offset = idx[0].utcoffset() if len(idx) else timedelta(0)
    return TimeConfiguration(DST_DISABLED, 0, DST_DISABLED, int((offset or timedelta(0)).total_seconds()))
