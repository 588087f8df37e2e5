"""Notifications: events queued in the registry and sent by e-mail, signed webhooks, WeCom and DingTalk robots.

Names load on first use (PEP 562), so that `crm_bridge.notify.config` (read by `check-config`) pulls in neither
SQLAlchemy nor httpx.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_bridge.notify.config import NotifyConfig
    from crm_bridge.notify.events import Attachment, Event, EventKind, notify_report, publish
    from crm_bridge.notify.mail import EmailSettings, NotifyError, send_email
    from crm_bridge.notify.recipients import Directory, Person
    from crm_bridge.notify.service import Notifier
    from crm_bridge.notify.webhook import WebhookSettings, send_webhook, sign, verify

_WHERE = {
    "NotifyConfig": "config", "Attachment": "events", "Event": "events", "EventKind": "events", "publish": "events",
    "notify_report": "events",
    "EmailSettings": "mail", "NotifyError": "mail", "send_email": "mail", "Directory": "recipients",
    "Person": "recipients", "Notifier": "service", "WebhookSettings": "webhook", "send_webhook": "webhook",
    "sign": "webhook", "verify": "webhook",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"crm_bridge.notify.{_WHERE[name]}"), name)


__all__ = [
    "Attachment", "Directory", "EmailSettings", "Event", "EventKind", "Notifier", "NotifyConfig", "NotifyError",
    "Person", "WebhookSettings", "notify_report", "publish", "send_email", "send_webhook", "sign", "verify",
]
