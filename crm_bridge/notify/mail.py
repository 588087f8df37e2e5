"""E-mail over SMTP (smtplib): STARTTLS or implicit TLS, login, attachments; settings as a pydantic model."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from crm_bridge.errors import CrmError
from crm_bridge.notify.events import Attachment

log = logging.getLogger(__name__)


class NotifyError(CrmError, RuntimeError):
    """A notification could not be delivered; `permanent` when trying again cannot help (a refused address)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class EmailSettings(BaseModel):
    """SMTP relay settings; the password comes from the environment, never from the TOML.

    `starttls` upgrades a plain connection; `tls` speaks TLS from the first byte (port 465). `cafile` trusts that
    CA (an internal relay's own certificate) instead of the system's.
    """

    model_config = ConfigDict(extra="forbid")
    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: str
    starttls: bool = False
    tls: bool = False
    cafile: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(10.0, gt=0)


def _permanent(exc: Exception) -> bool:
    """5xx answers (bad login, refused sender or recipients) do not get better by retrying; the rest may."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError)


def send_email(
    settings: EmailSettings, to: list[str], subject: str, body: str, attachments: Sequence[Attachment] = (),
) -> None:
    """Send a plain-text message (with attachments); NotifyError naming the server and the reason on failure."""
    if not to:
        raise NotifyError("e-mail has no recipients", permanent=True)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = settings.sender, ", ".join(to), subject
    msg.set_content(body)
    for a in attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(a.data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=a.filename)
    where = f"SMTP {settings.host}:{settings.port}"
    context = ssl.create_default_context(cafile=settings.cafile)
    try:
        smtp = (smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s, context=context)
                if settings.tls else smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s))
        with smtp:
            if settings.starttls and not settings.tls:
                smtp.starttls(context=context)
            if settings.username and settings.password:
                smtp.login(settings.username, settings.password.get_secret_value())
            refused = smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotifyError(f"{where}: sending {subject!r} failed: {exc}", permanent=_permanent(exc)) from exc
    if refused:
        raise NotifyError(f"{where}: recipients refused: {', '.join(sorted(refused))}", permanent=True)
    log.info("e-mail %r sent to %d recipients via %s", subject, len(to), where)
