"""Tariffs shipped as data: ids and the versions with their TOU bands and prices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from crm_bridge.errors import TariffError
from crm_bridge.tariffs import Tariff, available_tariffs, load_tariff
from gateway.api.errors import not_found
from gateway.api.roles import Capability, needs

router = APIRouter(prefix="/api/v1/tariffs", tags=["tariffs"], dependencies=[needs(Capability.TARIFFS)])


@router.get("")
def list_tariffs() -> list[str]:
    return list(available_tariffs())


@router.get("/{tariff_id}")
def get_tariff(tariff_id: Annotated[str, Path(max_length=64)]) -> Tariff:
    """The tariff with its versions: TOU bands, energy prices, basic-charge prices and PF table."""
    try:
        return load_tariff(tariff_id)
    except TariffError:
        raise not_found("tariff", tariff_id) from None
