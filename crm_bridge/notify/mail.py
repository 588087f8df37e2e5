"""E-mail over SMTP (smtplib), with optional STARTTLS and login; settings as a pydantic model."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from crm_bridge.errors import CrmError

log = logging.getLogger(__name__)


class NotifyError(CrmError, RuntimeError):
    """A notification could not be delivered."""


class EmailSettings(BaseModel):
    """SMTP relay settings; the password comes from the environment, never from the TOML."""

    model_config = ConfigDict(extra="forbid")
    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: str
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(10.0, gt=0)


def send_email(settings: EmailSettings, to: list[str], subject: str, body: str) -> None:
    """Send a plain-text message; NotifyError naming the server and the reason on failure."""
    if not to:
        raise NotifyError("e-mail has no recipients")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = settings.sender, ", ".join(to), subject
    msg.set_content(body)
    where = f"SMTP {settings.host}:{settings.port}"
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username and settings.password:
                smtp.login(settings.username, settings.password.get_secret_value())
            refused = smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotifyError(f"{where}: sending {subject!r} failed: {exc}") from exc
    if refused:
        raise NotifyError(f"{where}: recipients refused: {', '.join(sorted(refused))}")
    log.info("e-mail %r sent to %d recipients via %s", subject, len(to), where)
