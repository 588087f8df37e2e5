"""Tariff versions beyond the shipped files: reading an import file, checking it joins the history, merging.

A tariff's history is the shipped TOML file's versions plus the versions imported into the registry
(`tariff_version` rows whose document this module writes). Together they must form one unbroken line: a version
holds from its `valid_from` until the next one starts. An import file is a tariff file in the shipped layout whose
versions may also say `valid_to` (the first day they no longer hold), which must be exactly where the next version
starts. The check refuses, naming the dates:

- a version whose `valid_from` exists already with other prices (history is never rewritten; the same version
  again is "unchanged", so importing a file twice changes nothing);
- a version starting inside an existing one that is followed by another (it would shorten a version in the past);
- a `valid_to` before the next version's start (a gap: days with no prices) or after it (an overlap);
- a `valid_to` on the newest version (the newest holds until a newer one is imported).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError

from crm_bridge.errors import TariffError
from crm_bridge.tariffs.model import Tariff, TariffVersion

DOCUMENT_FORMAT = "tariff-version/1"  # the registry rows this module writes; other documents are left alone


class TariffFileError(TariffError):
    """An import file that cannot be read or does not validate; `problems` holds one line per error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class TariffHistoryError(TariffError):
    """Versions that would overlap, leave a gap, or rewrite an existing version; the message names the dates."""


@dataclass(frozen=True)
class Span:
    """One version on the time line: [valid_from, valid_to), where it comes from, and its prices (if known)."""

    valid_from: date
    valid_to: date | None
    origin: str  # "shipped", "registry" or the import file's name
    version: TariffVersion | None = None  # None for a registry document of another layout


@dataclass
class TariffFile:
    """A parsed import file: the tariff (validated like a shipped one) and each version's stated `valid_to`."""

    tariff: Tariff
    valid_to: list[date | None]
    source: str


@dataclass
class ImportPlan:
    """What importing a file would do: versions to add (in order) and those already on file unchanged."""

    tariff_id: str
    add: list[Span] = field(default_factory=list)
    unchanged: list[date] = field(default_factory=list)


def _same(a: TariffVersion, b: TariffVersion) -> bool:
    return a.model_dump(mode="json") == b.model_dump(mode="json")


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc) or "(file)"


def read_tariff_file(text: str, source: str) -> TariffFile:
    """Parse and validate an import file; TariffFileError with every problem as `key.path: why`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffFileError(source, [f"not valid TOML: {exc}"]) from None
    return read_tariff_document(doc, source)


def read_tariff_document(doc: dict[str, Any], source: str) -> TariffFile:
    """Validate a parsed import file (TOML, or the same layout as JSON with dates as strings)."""
    valid_to: list[date | None] = []
    problems: list[str] = []
    versions = doc.get("versions")
    if isinstance(versions, list):
        for k, v in enumerate(versions):
            end = v.pop("valid_to", None) if isinstance(v, dict) else None
            if end is not None and not isinstance(end, date):
                try:
                    end = date.fromisoformat(str(end))
                except ValueError:
                    problems.append(f"versions.{k}.valid_to: {end!r} is not a date (YYYY-MM-DD)")
                    end = None
            valid_to.append(end)
    try:
        tariff = Tariff.model_validate(doc)
    except ValidationError as exc:
        problems += [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
    if problems:
        raise TariffFileError(source, problems)
    return TariffFile(tariff, valid_to, source)


def spans_of_shipped(tariff: Tariff) -> list[Span]:
    """The shipped file's versions as spans (each ends where the next starts)."""
    out = []
    for k, v in enumerate(tariff.versions):
        nxt = tariff.versions[k + 1].valid_from if k + 1 < len(tariff.versions) else None
        out.append(Span(v.valid_from, nxt, "shipped", v))
    return out


def plan_import(existing: list[Span], file: TariffFile) -> ImportPlan:
    """Check `file` against the `existing` versions and say what importing it adds; TariffHistoryError if it cannot.

    `existing` is every version already known for the tariff (shipped and registry), in any order.
    """
    tid = file.tariff.id
    known = {s.valid_from: s for s in existing}
    plan = ImportPlan(tid)
    new: list[Span] = []
    for v, end in zip(file.tariff.versions, file.valid_to, strict=True):
        same = known.get(v.valid_from)
        if same is None:
            new.append(Span(v.valid_from, end, file.source, v))
        elif same.version is not None and _same(same.version, v) and end in (None, same.valid_to):
            plan.unchanged.append(v.valid_from)
        else:
            raise TariffHistoryError(
                f"tariff {tid!r}: a version from {v.valid_from} exists already ({same.origin}) with other prices or "
                "dates; a version is never rewritten: import the change as a new version from a later day")
    starts = sorted(known)
    for s in new:
        later = [d for d in starts if d > s.valid_from]
        earlier = [d for d in starts if d < s.valid_from]
        if earlier and later:
            raise TariffHistoryError(
                f"tariff {tid!r}: the version from {s.valid_from} overlaps the one from {earlier[-1]}, which holds "
                f"until {later[0] - timedelta(days=1)}; versions already followed by another are never shortened")
    line = sorted([*existing, *new], key=lambda x: x.valid_from)
    for a, b in zip(line, line[1:], strict=False):
        if a.valid_to is None or a.valid_to == b.valid_from:
            continue
        if a.valid_to < b.valid_from:
            raise TariffHistoryError(
                f"tariff {tid!r}: a gap from {a.valid_to} to {b.valid_from - timedelta(days=1)}: the version from "
                f"{a.valid_from} ends before {a.valid_to} but the next one starts {b.valid_from}; make valid_to "
                f"{b.valid_from} or add a version for the gap")
        raise TariffHistoryError(
            f"tariff {tid!r}: the version from {a.valid_from} runs to {a.valid_to - timedelta(days=1)} and overlaps "
            f"the one from {b.valid_from}; make its valid_to {b.valid_from}")
    if line and line[-1].valid_to is not None and line[-1] in new:
        raise TariffHistoryError(
            f"tariff {tid!r}: the newest version (from {line[-1].valid_from}) gives valid_to {line[-1].valid_to}; the "
            "newest version holds until a newer one is imported, so leave valid_to out")
    plan.add = sorted(new, key=lambda x: x.valid_from)
    return plan


def stored_document(tariff: Tariff, version: TariffVersion, source: str) -> dict[str, Any]:
    """The JSON document a registry row keeps for an imported version (with the tariff's currency and clock)."""
    return {"format": DOCUMENT_FORMAT, "currency": tariff.currency, "timezone": tariff.timezone, "source": source,
            "version": version.model_dump(mode="json")}


def version_of_document(document: dict[str, Any]) -> TariffVersion | None:
    """The version a registry document holds; None for a document of another layout (left as it is)."""
    if document.get("format") != DOCUMENT_FORMAT:
        return None
    try:
        return TariffVersion.model_validate(document["version"])
    except (ValidationError, KeyError) as exc:
        raise TariffError(f"a stored tariff version does not validate: {exc}") from None


def merged_tariff(tariff_id: str, shipped: Tariff | None, stored: list[dict[str, Any]]) -> Tariff | None:
    """The shipped tariff with the imported versions (registry documents) added, in date order.

    None when neither the shipped files nor the registry hold a priced version of `tariff_id`.
    """
    extra = [(d, v) for d in stored if (v := version_of_document(d)) is not None]
    if not extra:
        return shipped
    versions = sorted([*(shipped.versions if shipped else []), *(v for _, v in extra)], key=lambda v: v.valid_from)
    head = extra[0][0]
    currency = shipped.currency if shipped else str(head.get("currency") or "CNY")
    timezone = shipped.timezone if shipped else head.get("timezone")
    try:
        return Tariff(id=tariff_id, currency=currency, timezone=timezone, versions=versions)
    except ValidationError as exc:
        raise TariffError(f"tariff {tariff_id!r}: the shipped and imported versions do not fit together: "
                          f"{exc.errors()[0]['msg']}") from None
