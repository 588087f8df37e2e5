"""The use cases between the stores and the surfaces: every figure the API, portal, CLI, reports and jobs show."""

from gateway.usecases.errors import (
    BadInput,
    BeforeTariff,
    Conflict,
    Forbidden,
    NoContract,
    NoData,
    NotFound,
    UseCaseError,
)
from gateway.usecases.figures import MONEY_FIELDS, TtlCache, UseCases, parse_day, parse_month, without_money

__all__ = [
    "MONEY_FIELDS", "BadInput", "BeforeTariff", "Conflict", "Forbidden", "NoContract", "NoData", "NotFound",
    "TtlCache", "UseCaseError", "UseCases", "parse_day", "parse_month", "without_money",
]
