"""The use cases' errors: what went wrong in the caller's terms. Only gateway/api turns them into HTTP."""

from __future__ import annotations

from datetime import date


class UseCaseError(Exception):
    """Root of the use cases' errors; `where` names the input at fault, `code` a finer reason than the class's."""

    def __init__(self, message: str, where: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.code = code


class BadInput(UseCaseError):
    """An argument that is not what it must be (a date that is not a date, a range backwards or too long)."""


class NotFound(UseCaseError):
    """An id that does not exist (the API answers the same for one the caller may not see)."""


class Forbidden(UseCaseError):
    """The caller's role may not do this (which customers it sees is checked before: those are NotFound)."""


class Conflict(UseCaseError):
    """A change the current state does not allow: a ticket moved out of order, an alert already resolved."""


class NoData(UseCaseError):
    """Nothing measured for what was asked: a month not begun, a meter silent for the whole range."""


class NoContract(UseCaseError):
    """The customer has no contract on file, or its tariff is not one the gateway ships."""


class BeforeTariff(UseCaseError):
    """A date before the first version of the customer's tariff: no price is known for it."""

    def __init__(self, tariff_id: str, first_date: date, asked: date) -> None:
        super().__init__(f"tariff {tariff_id!r} starts on {first_date.isoformat()}; no prices before it "
                         f"(asked {asked.isoformat()})", where="date")
        self.tariff_id, self.first_date, self.asked = tariff_id, first_date, asked
