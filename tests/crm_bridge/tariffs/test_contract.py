"""The contract-demand rule of 发改办价格〔2016〕1583号 and the one enum of basic-charge modes."""

from __future__ import annotations

from datetime import date

import pytest

from crm_bridge.errors import CrmError, TariffError
from crm_bridge.tariffs import (
    BasicChargeMode,
    basic_charges,
    contract_charge,
    contract_floor_kw,
    demand_limit_kw,
    effective_contract_kw,
    load_tariff,
)
from crm_bridge.tariffs.model import parse_tariff

GD = load_tariff("guangdong-1-10kv").version_at(date(2024, 5, 1))  # 36.1 /kW-month, 22.6 /kVA-month


def test_the_floor_is_40_percent_of_transformers_plus_hv_motors() -> None:
    # 3200 kVA + 800 kW of HV motors = 4000; 40 % = 1600 kW
    assert contract_floor_kw(3200, 800, GD) == pytest.approx(1600)
    assert effective_contract_kw(1000, 3200, 800, GD) == pytest.approx(1600), "1000 < 1600: raised"
    assert effective_contract_kw(2000, 3200, 800, GD) == pytest.approx(2000), "above the floor: as agreed"
    assert effective_contract_kw(1000, 3200, 0, GD) == pytest.approx(1280), "no motors: 0.4 x 3200"
    assert effective_contract_kw(1000, 3200, 800) == pytest.approx(1600), "no version: the national rule (data)"


def test_the_raised_contract_sets_the_105_percent_threshold_and_the_doubled_excess() -> None:
    # C = 1000 kW agreed, raised to 1600; threshold 1.05 x 1600 = 1680 kW (not 1.05 x 1000 = 1050)
    assert demand_limit_kw(1000, 3200, 800, GD) == pytest.approx(1680)
    # Pmax 1600: under 1680, no excess: 1600 x 36.1 = 57,760 (the agreed 1000 would have doubled 550 kW)
    assert contract_charge(GD, 1000, 1600, 3200, 800) == pytest.approx(57_760)
    # Pmax 1800: 120 kW above 1680 at twice the price: 57,760 + 2 x 36.1 x 120 = 57,760 + 8,664 = 66,424
    assert contract_charge(GD, 1000, 1800, 3200, 800) == pytest.approx(66_424)
    bc = basic_charges(GD, 3200, pmax_kw=1800, contract_kw=1000, hv_motors_kw=800)
    assert bc.contract == pytest.approx(66_424)
    assert bc.effective_contract_kw == pytest.approx(1600)
    assert bc.capacity == pytest.approx(4000 * 22.6)  # 90,400: HV motors count in the capacity too
    assert bc.demand == pytest.approx(1800 * 36.1)  # 64,980
    assert bc.cheapest is BasicChargeMode.DEMAND
    assert bc.recommended_contract_kw == pytest.approx(1800 / 1.05)  # 1714 kW, above the floor
    low = basic_charges(GD, 3200, pmax_kw=1000, contract_kw=1000, hv_motors_kw=800)
    assert low.recommended_contract_kw == pytest.approx(1600), "C* = 952 kW would be raised to the floor anyway"


def test_domain_worked_example_above_the_floor() -> None:
    # C = 2300 (floor 0.4 x 3200 = 1280), Pmax 2500: 2300 x 36.1 + 2 x 36.1 x (2500 - 2415) = 83,030 + 6,137
    assert contract_charge(GD, 2300, 2500, 3200) == pytest.approx(89_167)


def test_a_version_may_state_its_own_floor_and_threshold() -> None:
    doc = load_tariff("guangdong-1-10kv").model_dump(mode="json")
    doc["versions"][0] |= {"contract_floor_share_of_capacity": 0.5, "contract_excess_threshold": 1.1}
    version = parse_tariff(doc).versions[0]
    assert effective_contract_kw(1000, 3200, 0, version) == pytest.approx(1600)  # 0.5 x 3200
    assert demand_limit_kw(1000, 3200, 0, version) == pytest.approx(1760)  # 1.1 x 1600
    # shipped versions leave them to the national rule file: 0.4, 1.05, 2
    del doc["versions"][0]["contract_floor_share_of_capacity"]
    assert parse_tariff(doc).versions[0].contract_floor_share_of_capacity == 0.4


@pytest.mark.parametrize(("text", "mode"), [
    ("capacity", BasicChargeMode.CAPACITY), ("demand", BasicChargeMode.DEMAND), (" Demand ", BasicChargeMode.DEMAND),
    ("contract", BasicChargeMode.CONTRACT), (BasicChargeMode.CONTRACT, BasicChargeMode.CONTRACT),
])
def test_one_enum_one_spelling(text: str, mode: BasicChargeMode) -> None:
    assert BasicChargeMode.parse(text) is mode
    assert mode == mode.value  # a str enum: JSON and the registry column keep the plain word


def test_an_unknown_mode_or_impossible_terms_are_crm_errors() -> None:
    with pytest.raises(CrmError, match="basic charge mode 'weekly' is not one of capacity, demand, contract"):
        BasicChargeMode.parse("weekly")
    with pytest.raises(CrmError, match="basic charge mode 'max_demand' is not one of"):
        BasicChargeMode.parse("max_demand")  # the older spellings are rewritten by registry migration 0002
    with pytest.raises(TariffError, match="contract demand must be positive"):
        effective_contract_kw(0, 3200)
    with pytest.raises(TariffError, match="transformer_kva must be positive"):
        effective_contract_kw(1000, 0)
