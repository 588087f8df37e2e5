"""The CRM bridge's exception root and the errors every part of it shares."""

from __future__ import annotations

from datetime import date


class CrmError(Exception):
    """Root of crm_bridge errors: bad tariff or contract data, impossible workflow steps, unreachable peers."""


class TariffError(CrmError, ValueError):
    """A tariff document is invalid, or no tariff version covers the time asked for."""


class TariffNotInForce(TariffError):
    """A date before the tariff's first version: nothing can be priced (the API answers it as a client error)."""

    def __init__(self, tariff_id: str, first_date: date, asked: date) -> None:
        super().__init__(f"tariff {tariff_id!r} is not in force on {asked}: its first version starts {first_date}")
        self.tariff_id = tariff_id
        self.first_date = first_date
        self.asked = asked

    def __reduce__(self) -> tuple[type[TariffNotInForce], tuple[str, date, date]]:
        return type(self), (self.tariff_id, self.first_date, self.asked)


class ServiceError(CrmError, ValueError):
    """A service cannot run on what it was given: empty or naive data, a missing column, impossible terms."""


class NoData(CrmError, LookupError):
    """No interval with energy in the period asked for: it has not begun yet, or nothing was recorded."""
