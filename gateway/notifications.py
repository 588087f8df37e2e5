"""Notifications wired into a gateway: the `[notify]` section, its users as recipients, the notifier on its sessions.

`install_notifications(gw)` puts a Notifier on the registry's sessionmaker (`session.info[PUBLISHER]`), so every
session the gateway opens (jobs, API, portal) queues the events its alerts and tickets raise. The jobs in
gateway/jobs.py send the queue, escalate and fold digests. Nothing is installed while `[notify]` has no channel.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm_bridge.notify.events import PUBLISHER, Attachment, notify_report
from crm_bridge.notify.recipients import Person
from crm_bridge.notify.service import DeliveryStats, Notifier

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)


class UserDirectory:
    """The gateway's enabled logins as recipients; a customer user without a language gets its company's."""

    def __init__(self, customer_languages: Mapping[str, str]) -> None:
        self.customer_languages = dict(customer_languages)

    def people(self, session: Session) -> list[Person]:
        from gateway.auth.models import User

        return [Person(u.username, u.role, u.customer, u.manager,
                       u.language or self.customer_languages.get(u.customer or ""))
                for u in session.scalars(select(User).where(User.disabled.is_(False)).order_by(User.username))]


def notifier_of(db: sessionmaker[Session]) -> Notifier | None:
    """The notifier installed on `db`, if any."""
    info = db.kw.get("info") or {}
    found = info.get(PUBLISHER)
    return found if isinstance(found, Notifier) else None


def install_notifications(gw: Gateway, environ: Mapping[str, str] | None = None) -> Notifier | None:
    """Put a notifier on `gw.db` (once); None when notifications are off or no channel is configured."""
    cfg = gw.config.notify
    if not cfg.enabled or not cfg.channels:
        return None
    existing = notifier_of(gw.db)
    if existing is not None:
        return existing
    from gateway.auth import AuthService

    AuthService.create_tables(gw.db.kw["bind"])  # the users table, also in a gateway that runs no API
    env = os.environ if environ is None else environ
    for where, var in cfg.secret_envs():
        if not env.get(var):
            log.error("%s: environment variable %s is not set; that channel's messages will fail", where, var)
    from gateway.portal.i18n import alert_message

    # The alert keys' texts are the portal's catalogue: each recipient reads an alert's message, and its rule's title
    # in the subject (`alert_type_<type>`), in their language.
    notifier = Notifier(cfg, UserDirectory({c.id: c.language for c in gw.config.customers}), env,
                        alert_text=alert_message)
    gw.db.configure(info={**(gw.db.kw.get("info") or {}), PUBLISHER: notifier})
    log.info("notifications on: %d channel(s) (%s)", len(cfg.channels), ", ".join(sorted(cfg.channels)))
    return notifier


def send_job(gw: Gateway) -> DeliveryStats | None:
    """Send the queued messages that are due (run every `notify.send_interval_s`)."""
    notifier = notifier_of(gw.db)
    return notifier.deliver_due(gw.db) if notifier is not None else None


def escalation_job(gw: Gateway) -> list[str]:
    """Escalate what is not acknowledged in time; warn of requests nearing or past their deadline."""
    notifier = notifier_of(gw.db)
    if notifier is None:
        return []
    with gw.db() as session:
        return notifier.escalate(session) + notifier.deadlines(session)


def digest_job(gw: Gateway) -> int:
    """Fold the digest messages whose time has come into one message per recipient."""
    notifier = notifier_of(gw.db)
    if notifier is None:
        return 0
    with gw.db() as session:
        return notifier.send_digests(session)


BRIEF_TITLE = {"zh": "每日简报", "en": "daily brief"}


def report_ready(gw: Gateway, customer: str, *, period: str, attachment: Attachment,
                 title: Mapping[str, str] | None = None, amount: float | None = None, currency: str = "CNY") -> None:
    """Queue "report ready" (with the file) for a customer's people and managers, and commit; see notify_report."""
    with gw.db() as session:
        notify_report(session, customer, period=period, attachment=attachment, at=datetime.now(UTC), title=title,
                      amount=amount, currency=currency)
        session.commit()
