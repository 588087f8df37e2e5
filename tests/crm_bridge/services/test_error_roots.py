"""Every crm_bridge error class descends from the one root, crm_bridge.errors.CrmError, keeping its second base."""

import pytest

from crm_bridge.alerts.engine import AlertError
from crm_bridge.desk.workflow import TicketError
from crm_bridge.errors import CrmError
from crm_bridge.notify.mail import NotifyError
from crm_bridge.registry.repo import RegistryLookupError
from crm_bridge.services import ServiceError
from crm_bridge.tariffs import load_tariff


@pytest.mark.parametrize(("error", "second"), [
    (TicketError, ValueError), (AlertError, ValueError), (NotifyError, RuntimeError),
    (RegistryLookupError, LookupError), (ServiceError, ValueError),
])
def test_error_classes_share_the_root_and_keep_their_second_base(error: type[Exception], second: type) -> None:
    assert issubclass(error, CrmError)
    assert issubclass(error, second)


def test_an_unknown_tariff_is_caught_as_the_root() -> None:
    with pytest.raises(CrmError, match="no-such-tariff"):
        load_tariff("no-such-tariff")
