"""The basic-charge modes of the two-part tariff and the contract-demand rule (40 % floor, 105 % threshold).

发改办价格〔2016〕1583号: a customer pays the basic charge by capacity (transformer kVA plus high-voltage motor kW,
x price per kVA-month), by actual maximum demand (the month's largest 15-min demand x price per kW-month) or by a
contract demand C (C x price per kW-month, and twice the price for demand above 1.05 C). C may not be set below 40 %
of the total capacity; a lower C is raised to that floor, and the raised figure is then the contract for every
purpose: the charge, the 105 % threshold, the doubled excess, the demand alerts and the advice. The shares are data
(the tariff version's, else crm_bridge/data/tariffs/contract_demand.toml).
"""

from __future__ import annotations

from enum import StrEnum

from crm_bridge.errors import ServiceError, TariffError
from crm_bridge.tariffs.model import TariffVersion, contract_rules


class BasicChargeMode(StrEnum):
    """How the basic charge is billed; the one vocabulary of the registry, the services, the bill and the API."""

    CAPACITY = "capacity"
    DEMAND = "demand"
    CONTRACT = "contract"

    @classmethod
    def parse(cls, text: str | BasicChargeMode) -> BasicChargeMode:
        """The mode named `text` (capacity, demand or contract); ServiceError naming the three if it is none of them."""
        if isinstance(text, BasicChargeMode):
            return text
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise ServiceError(f"basic charge mode {text!r} is not one of capacity, demand, contract") from None


def _rule(version: TariffVersion | None, name: str) -> float:
    return float(getattr(version, name)) if version is not None else contract_rules()[name]


def total_capacity(transformer_kva: float, hv_motors_kw: float = 0.0) -> float:
    """Transformer kVA plus high-voltage motor kW: the capacity the capacity charge and the 40 % floor are on."""
    if transformer_kva <= 0:
        raise TariffError(f"transformer_kva must be positive, got {transformer_kva}")
    if hv_motors_kw < 0:
        raise TariffError(f"hv_motors_kw must not be negative, got {hv_motors_kw}")
    return transformer_kva + hv_motors_kw


def contract_floor_kw(transformer_kva: float, hv_motors_kw: float = 0.0, version: TariffVersion | None = None) -> float:
    """The lowest contract demand allowed: 40 % (the version's share) of transformer kVA + HV motor kW."""
    return _rule(version, "contract_floor_share_of_capacity") * total_capacity(transformer_kva, hv_motors_kw)


def effective_contract_kw(contract_kw: float, transformer_kva: float, hv_motors_kw: float = 0.0,
                          version: TariffVersion | None = None) -> float:
    """The contract demand in force: the contract figure, raised to the floor when set below it.

    `version` gives the floor share (None: the national rule of contract_demand.toml). Worked: 3200 kVA + 800 kW of
    HV motors, C = 1000 kW -> max(1000, 0.4 x 4000) = 1600 kW.
    """
    if contract_kw <= 0:
        raise TariffError(f"contract demand must be positive, got {contract_kw} kW")
    return max(float(contract_kw), contract_floor_kw(transformer_kva, hv_motors_kw, version))


def excess_threshold(version: TariffVersion | None = None) -> float:
    """The multiple of the contract above which demand is billed at the excess price (1.05)."""
    return _rule(version, "contract_excess_threshold")


def demand_limit_kw(contract_kw: float, transformer_kva: float, hv_motors_kw: float = 0.0,
                    version: TariffVersion | None = None) -> float:
    """1.05 x the effective contract: the demand above which the excess is billed twice (and the alerts' 100 %)."""
    return excess_threshold(version) * effective_contract_kw(contract_kw, transformer_kva, hv_motors_kw, version)


def contract_charge(version: TariffVersion, contract_kw: float, pmax_kw: float, transformer_kva: float,
                    hv_motors_kw: float = 0.0) -> float:
    """A month's contract-demand charge under one version: C_eff x p + multiplier x p x (Pmax - 1.05 C_eff)+.

    Worked (Guangdong 36.1/kW-month): C = 2300, Pmax = 2500 -> 2300 x 36.1 + 2 x 36.1 x (2500 - 2415) = 89,166.70.
    """
    c = effective_contract_kw(contract_kw, transformer_kva, hv_motors_kw, version)
    p = version.basic_per_kw_month
    excess = max(0.0, pmax_kw - version.contract_excess_threshold * c)
    return c * p + version.contract_excess_multiplier * p * excess
