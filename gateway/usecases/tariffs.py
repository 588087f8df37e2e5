"""Tariffs and their versions, in one place: list them, import a file as new versions, and the tariff to bill by.

A tariff's versions are the shipped file's (`crm_bridge/data/tariffs/`) plus those imported into the registry;
`effective` joins them, and is what billing should price with (`gateway.usecases.figures.tariff_of` still loads
the shipped file alone). The rules an import must keep are `crm_bridge.tariffs.versions`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from crm_bridge.errors import TariffError
from crm_bridge.registry.repo import insert_tariff_versions, tariff_version_rows
from crm_bridge.tariffs import Tariff, available_tariffs, load_tariff
from crm_bridge.tariffs.versions import (
    Span,
    TariffFileError,
    TariffHistoryError,
    merged_tariff,
    plan_import,
    read_tariff_document,
    read_tariff_file,
    spans_of_shipped,
    stored_document,
    version_of_document,
)
from gateway.usecases.desk import Actor, Audit
from gateway.usecases.errors import BadInput, Conflict, Forbidden, NotFound

# Joined tariffs by (tariff id, its stored versions' dates and documents), whichever registry they came from
_MERGED: dict[tuple[str, tuple[Any, ...]], Tariff | None] = {}
_MERGED_LOCK = threading.Lock()


class VersionPublic(BaseModel):
    """One version of a tariff: when it holds ([valid_from, valid_to); valid_to None: until a newer one), from where."""

    valid_from: date
    valid_to: date | None
    origin: str  # shipped (a data file of the release) or registry (imported)
    bands: list[str]  # the band names it prices


class TariffSummary(BaseModel):
    """A tariff with its versions, oldest first."""

    id: str
    currency: str
    timezone: str | None
    versions: list[VersionPublic]


class ImportResult(BaseModel):
    """What an import did (or, in a dry run, would do)."""

    tariff: str
    added: list[date]
    unchanged: list[date]
    dry_run: bool


@dataclass
class Tariffs:
    """Tariff versions on one registry session; `audit` records every import that adds a version."""

    s: Session
    audit: Audit

    def ids(self) -> list[str]:
        """Every tariff id: shipped, and kept only in the registry."""
        return sorted({*available_tariffs(), *(r.tariff_id for r in tariff_version_rows(self.s))})

    def _spans(self, tariff_id: str) -> list[Span]:
        shipped = load_tariff(tariff_id) if tariff_id in available_tariffs() else None
        spans = spans_of_shipped(shipped) if shipped else []
        for r in tariff_version_rows(self.s, tariff_id):
            spans.append(Span(r.valid_from, r.valid_to, "registry", version_of_document(r.document)))
        # The shipped newest version is open-ended only while nothing was imported after it.
        spans.sort(key=lambda x: x.valid_from)
        nexts: list[date | None] = [b.valid_from for b in spans[1:]] + [None]
        return [Span(a.valid_from, a.valid_to or b, a.origin, a.version) for a, b in zip(spans, nexts, strict=False)]

    def effective(self, tariff_id: str) -> Tariff | None:
        """The tariff with every version, shipped and imported; None if nothing prices `tariff_id`."""
        rows = tariff_version_rows(self.s, tariff_id)
        # Every bill asks: the joined tariff is made once per set of stored versions, not on each call.
        key = (tariff_id, tuple((r.valid_from, r.valid_to, json.dumps(r.document, sort_keys=True)) for r in rows))
        with _MERGED_LOCK:
            if key in _MERGED:
                return _MERGED[key]
        shipped = load_tariff(tariff_id) if tariff_id in available_tariffs() else None
        try:
            tariff = merged_tariff(tariff_id, shipped, [r.document for r in rows])
        except TariffError as exc:
            raise Conflict(str(exc), where="tariff") from None
        with _MERGED_LOCK:
            if len(_MERGED) > 256:
                _MERGED.clear()
            _MERGED[key] = tariff
        return tariff

    def summary(self, tariff_id: str) -> TariffSummary:
        spans = self._spans(tariff_id)
        if not spans:
            raise NotFound(f"no tariff {tariff_id!r}", where="tariff_id")
        tariff = self.effective(tariff_id)
        return TariffSummary(
            id=tariff_id, currency=tariff.currency if tariff else "CNY", timezone=tariff.timezone if tariff else None,
            versions=[VersionPublic(valid_from=s.valid_from, valid_to=s.valid_to, origin=s.origin,
                                    bands=sorted(s.version.energy_prices) if s.version else []) for s in spans])

    def all(self) -> list[TariffSummary]:
        return [self.summary(t) for t in self.ids()]

    def import_text(self, text: str | dict[str, Any], source: str, actor: Actor, dry_run: bool = False,
                    tariff_id: str | None = None) -> ImportResult:
        """Add the file's versions that are new; BadInput (every key path) or Conflict (the dates) if it cannot.

        `text` is the TOML file's text, or the same layout already parsed (the API's JSON body).
        `tariff_id`, when given (the API's path), must be the file's `id`. Nothing is stored in a dry run or on error.
        """
        if actor.role != "admin":
            raise Forbidden("only an admin imports tariff versions")
        try:
            file = (read_tariff_file(text, source) if isinstance(text, str)
                    else read_tariff_document(text, source))
        except TariffFileError as exc:
            raise BadInput(str(exc), where="file") from None
        tid = file.tariff.id
        if tariff_id is not None and tariff_id != tid:
            raise BadInput(f"{source}: id: the file is for tariff {tid!r}, not {tariff_id!r}", where="id")
        try:
            plan = plan_import(self._spans(tid), file)
        except TariffHistoryError as exc:
            raise Conflict(str(exc), where="versions", code="tariff_history") from None
        if not dry_run and plan.add:
            by_day = {v.valid_from: v for v in file.tariff.versions}
            insert_tariff_versions(self.s, tid, [(x.valid_from, x.valid_to,
                                                  stored_document(file.tariff, by_day[x.valid_from], source))
                                                 for x in plan.add])
            self.effective(tid)  # the joined history must still validate as one tariff, else nothing is kept
            self.s.commit()  # before the audit: it writes on its own session (SQLite allows one writer)
            self.audit(actor.username, "tariff.import", f"tariff:{tid}",
                       json.dumps({"added": [str(x.valid_from) for x in plan.add], "source": source}), actor.client)
        return ImportResult(tariff=tid, added=[x.valid_from for x in plan.add], unchanged=plan.unchanged,
                            dry_run=dry_run)

