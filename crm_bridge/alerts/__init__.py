"""Early-warning alerts: rules over interval data, de-duplicated lifecycle, evaluation job."""

from crm_bridge.alerts.engine import (
    AlertError,
    acknowledge,
    list_alerts,
    open_ticket,
    raise_alert,
    resolve,
)
from crm_bridge.alerts.evaluate import AlertSettings, evaluate_alerts

__all__ = [
    "AlertError", "AlertSettings", "acknowledge", "evaluate_alerts", "list_alerts", "open_ticket", "raise_alert",
    "resolve",
]
