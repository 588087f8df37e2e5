"""Tariffs: ids and versions (shipped and imported), each tariff with its TOU bands and prices, and importing versions.

The versions are `gateway/usecases/tariffs.py`'s: the shipped data files joined with the versions an admin imported
(here, or with `energy-gateway tariffs import`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from crm_bridge.tariffs import Tariff
from gateway.api.deps import get_auth
from gateway.api.errors import not_found
from gateway.api.roles import Capability, needs
from gateway.api.scope import ActorDep, SessionDep
from gateway.auth import AuthService
from gateway.usecases.tariffs import ImportResult, Tariffs, TariffSummary

router = APIRouter(prefix="/api/v1/tariffs", tags=["tariffs"], dependencies=[needs(Capability.TARIFFS)])
TariffId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class TariffFileIn(BaseModel):
    """A tariff file as JSON, in the layout of the shipped TOML files; a version may also give `valid_to`."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(max_length=64)
    currency: str = Field("CNY", max_length=8)
    timezone: str | None = Field(None, max_length=64)
    versions: list[dict[str, Any]] = Field(min_length=1, max_length=200)


def get_tariffs(session: SessionDep, auth: Annotated[AuthService, Depends(get_auth)]) -> Tariffs:
    return Tariffs(session, auth.audit)


TariffsDep = Annotated[Tariffs, Depends(get_tariffs)]


@router.get("")
def list_tariffs(book: TariffsDep) -> list[TariffSummary]:
    """Every tariff with its versions, oldest first: valid_from, valid_to (None: until a newer one), shipped or not."""
    return book.all()


@router.get("/{tariff_id}")
def get_tariff(tariff_id: TariffId, book: TariffsDep) -> Tariff:
    """The tariff with every version: TOU bands, energy prices, basic-charge prices and contract rules."""
    tariff = book.effective(tariff_id)
    if tariff is None:
        raise not_found("tariff", tariff_id)
    return tariff


@router.get("/{tariff_id}/versions")
def tariff_versions(tariff_id: TariffId, book: TariffsDep) -> TariffSummary:
    """The tariff's versions on one line, with where each comes from."""
    return book.summary(tariff_id)


@router.post("/{tariff_id}/versions", status_code=201)
def import_versions(tariff_id: TariffId, body: TariffFileIn, book: TariffsDep, actor: ActorDep,
                    dry_run: Annotated[bool, Query(description="check only; store nothing")] = False) -> ImportResult:
    """Admin only: add a file's new versions. 422 names each key path; 409 names the dates that overlap or gap."""
    return book.import_text(body.model_dump(), f"api:{tariff_id}", actor, dry_run=dry_run, tariff_id=tariff_id)
