"""Every crm_bridge error class descends from the one root, crm_bridge.errors.CrmError, keeping its second base."""

import pickle
from datetime import date

import pytest

from crm_bridge.alerts.engine import AlertError
from crm_bridge.desk.workflow import TicketError
from crm_bridge.errors import CrmError, NoData, TariffError, TariffNotInForce
from crm_bridge.notify.mail import NotifyError
from crm_bridge.registry.repo import RegistryLookupError
from crm_bridge.services import ServiceError
from crm_bridge.tariffs import load_tariff


@pytest.mark.parametrize(("error", "second"), [
    (TicketError, ValueError), (AlertError, ValueError), (NotifyError, RuntimeError),
    (RegistryLookupError, LookupError), (ServiceError, ValueError), (NoData, LookupError),
    (TariffNotInForce, TariffError),
])
def test_error_classes_share_the_root_and_keep_their_second_base(error: type[Exception], second: type) -> None:
    assert issubclass(error, CrmError)
    assert issubclass(error, second)


def test_an_unknown_tariff_is_caught_as_the_root() -> None:
    with pytest.raises(CrmError, match="no-such-tariff"):
        load_tariff("no-such-tariff")


def test_tariff_not_in_force_keeps_its_fields_across_processes() -> None:
    err = pickle.loads(pickle.dumps(  # noqa: S301 - our own bytes, round-tripped
        TariffNotInForce("sichuan-2023", date(2023, 1, 1), date(2022, 12, 31))))
    assert (err.tariff_id, err.first_date, err.asked) == ("sichuan-2023", date(2023, 1, 1), date(2022, 12, 31))
    assert str(err) == "tariff 'sichuan-2023' is not in force on 2022-12-31: its first version starts 2023-01-01"
