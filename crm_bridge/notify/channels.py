"""Senders: one per configured channel, each sending one queued message or raising NotifyError (why, permanent?)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from crm_bridge.notify.chat import dingtalk_body, send_dingtalk, send_wecom, wecom_body
from crm_bridge.notify.config import (
    ChannelConfig,
    DingTalkChannelConfig,
    EmailChannelConfig,
    WebhookChannelConfig,
    WeComChannelConfig,
)
from crm_bridge.notify.events import Attachment
from crm_bridge.notify.mail import EmailSettings, NotifyError, send_email
from crm_bridge.notify.webhook import post_signed, webhook_body


@dataclass(frozen=True)
class OutMessage:
    """What a sender gets: the rendered texts, the address (e-mail), the event's kind and data, any attachment."""

    notification_id: int
    event_key: str
    event: str
    customer: str | None
    recipient: str
    address: str | None
    language: str
    subject: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)
    attachment: Attachment | None = None


class Sender(Protocol):
    """Sends over one channel. `where` names the target for records and dead letters, without secrets."""

    @property
    def where(self) -> str: ...

    def send(self, msg: OutMessage, http: httpx.Client) -> None: ...


def _secret(environ: Mapping[str, str], var: str, channel: str, key: str) -> str:
    value = environ.get(var, "")
    if not value:
        raise NotifyError(f"notify.channels.{channel}.{key}: environment variable {var} is not set", permanent=True)
    return value


@dataclass
class EmailSender:
    name: str
    config: EmailChannelConfig
    environ: Mapping[str, str]

    @property
    def where(self) -> str:
        return f"smtp://{self.config.host}:{self.config.effective_port}"

    def send(self, msg: OutMessage, http: httpx.Client) -> None:
        c = self.config
        if not msg.address:
            raise NotifyError("no e-mail address", permanent=True)
        password = _secret(self.environ, c.password_env, self.name, "password_env") if c.password_env else None
        settings = EmailSettings(
            host=c.host, port=c.effective_port, sender=c.sender, starttls=c.security == "starttls",
            tls=c.security == "tls", cafile=str(c.ca_file) if c.ca_file else None, username=c.username or None,
            password=password, timeout_s=c.timeout_s,
        )
        send_email(settings, [msg.address], msg.subject, msg.body, [msg.attachment] if msg.attachment else [])


@dataclass
class WebhookSender:
    name: str
    config: WebhookChannelConfig
    environ: Mapping[str, str]

    @property
    def where(self) -> str:
        return self.config.url

    def send(self, msg: OutMessage, http: httpx.Client) -> None:
        secret = _secret(self.environ, self.config.secret_env, self.name, "secret_env").encode()
        payload = {"notification_id": msg.notification_id, "key": msg.event_key, "customer": msg.customer,
                   "recipient": msg.recipient, "language": msg.language, "subject": msg.subject, "body": msg.body,
                   "data": msg.data}
        if msg.attachment is not None:
            payload["attachment"] = {"filename": msg.attachment.filename,
                                     "content_type": msg.attachment.content_type, "size": len(msg.attachment.data)}
        post_signed(http, self.config.url, secret, webhook_body(msg.event, payload))


@dataclass
class WeComSender:
    name: str
    config: WeComChannelConfig
    environ: Mapping[str, str]

    @property
    def where(self) -> str:
        return f"{self.config.url} (WeCom robot)"

    def send(self, msg: OutMessage, http: httpx.Client) -> None:
        key = _secret(self.environ, self.config.key_env, self.name, "key_env")
        body = wecom_body(msg.subject, msg.body, self.config.msgtype, self.config.mentioned_mobiles)
        send_wecom(http, self.config.url, key, body)


@dataclass
class DingTalkSender:
    name: str
    config: DingTalkChannelConfig
    environ: Mapping[str, str]

    @property
    def where(self) -> str:
        return f"{self.config.url} (DingTalk robot)"

    def send(self, msg: OutMessage, http: httpx.Client) -> None:
        c = self.config
        token = _secret(self.environ, c.access_token_env, self.name, "access_token_env")
        secret = _secret(self.environ, c.secret_env, self.name, "secret_env") if c.secret_env else ""
        send_dingtalk(http, c.url, token, secret, dingtalk_body(msg.subject, msg.body, c.msgtype, c.at_mobiles))


def build_sender(name: str, config: ChannelConfig, environ: Mapping[str, str]) -> Sender:
    """The sender of channel `name`."""
    if isinstance(config, EmailChannelConfig):
        return EmailSender(name, config, environ)
    if isinstance(config, WebhookChannelConfig):
        return WebhookSender(name, config, environ)
    if isinstance(config, WeComChannelConfig):
        return WeComSender(name, config, environ)
    return DingTalkSender(name, config, environ)
