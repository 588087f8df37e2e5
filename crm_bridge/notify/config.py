"""The `[notify]` section of gateway.toml: channels, defaults by role, retries, escalation; unknown keys refused.

Secrets never appear here: each channel names the environment variable holding its password, signing secret or
robot key (`password_env`, `secret_env`, `key_env`, `access_token_env`), and `secret_envs()` lists them with their
key paths for the start-up check.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm_bridge.notify.events import SUBSCRIBABLE, EventKind, allowed_events

Language = Literal["zh", "en"]
RoleName = Literal["admin", "engineer", "account_manager", "customer"]
Severity = Literal["info", "warning", "critical"]
_ENV = r"^[A-Za-z_][A-Za-z0-9_]*$"
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_QUIET = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _subscribable(kinds: list[EventKind]) -> list[EventKind]:
    if EventKind.DIGEST in kinds:
        raise ValueError("'digest' is not an event to subscribe to (set digest = true instead)")
    return kinds


def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    """`"22:00-07:00"` -> (22:00, 07:00); "" -> None; ValueError naming the expected form otherwise."""
    if not value:
        return None
    m = _QUIET.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"quiet hours {value!r} are not HH:MM-HH:MM (such as 22:00-07:00)")
    start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    if start == end:
        raise ValueError(f"quiet hours {value!r} start and end at the same time")
    return start, end


def _quiet(value: str) -> str:
    parse_quiet_hours(value)
    return value.strip()


class EmailChannelConfig(_Strict):
    """An SMTP relay. `security`: `starttls` (port 587), `tls` (implicit TLS, port 465) or `none` (port 25)."""

    type: Literal["email"]
    host: str = Field(min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str = ""
    password_env: str = Field("", pattern=r"^$|" + _ENV)
    sender: str = Field(min_length=3, max_length=200)
    ca_file: Path | None = None  # trust this CA (an internal relay's own certificate); else the system's
    timeout_s: float = Field(10.0, gt=0, le=120, allow_inf_nan=False)

    @field_validator("sender")
    @classmethod
    def _address(cls, value: str) -> str:
        if "@" not in value or value.startswith("@") or value.endswith("@"):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _login(self) -> EmailChannelConfig:
        if bool(self.username) != bool(self.password_env):
            raise ValueError("username and password_env go together (a login needs both)")
        if self.password_env and self.security == "none":
            raise ValueError("a login over security = \"none\" would send the password in clear; use starttls or tls")
        return self

    @property
    def effective_port(self) -> int:
        """The port, or the usual one for the security mode."""
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.security]


class _GroupChannel(_Strict):
    """A channel that reaches a group (a CRM, a chat group), not one person."""

    # The channel's own subscription, besides users who choose it: these events of `customers` (empty: all).
    events: list[EventKind] = []
    customers: list[str] = []
    language: Language | None = None  # of the group's messages; default: notify.language
    timeout_s: float = Field(5.0, gt=0, le=60, allow_inf_nan=False)

    _events = field_validator("events")(_subscribable)


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise ValueError(f"{value!r} is not an http(s) URL without query (such as https://crm.example/hooks/energy)")
    return value


class WebhookChannelConfig(_GroupChannel):
    """A JSON POST signed with HMAC-SHA256 (`X-Webhook-Signature` over timestamp and body)."""

    type: Literal["webhook"]
    url: str
    secret_env: str = Field(pattern=_ENV)

    _url = field_validator("url")(_http_url)


class WeComChannelConfig(_GroupChannel):
    """A WeCom (企业微信) group robot: the robot's key, which is its secret, is the `key` query parameter."""

    type: Literal["wecom"]
    url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    key_env: str = Field(pattern=_ENV)
    msgtype: Literal["markdown", "text"] = "markdown"
    mentioned_mobiles: list[str] = []  # @ these mobile numbers (text messages only: WeCom's markdown cannot @)

    _url = field_validator("url")(_http_url)


class DingTalkChannelConfig(_GroupChannel):
    """A DingTalk (钉钉) custom robot, signed (加签) when `secret_env` names its SEC... secret."""

    type: Literal["dingtalk"]
    url: str = "https://oapi.dingtalk.com/robot/send"
    access_token_env: str = Field(pattern=_ENV)
    secret_env: str = Field("", pattern=r"^$|" + _ENV)  # empty: the robot checks keywords or addresses instead
    msgtype: Literal["markdown", "text"] = "markdown"
    at_mobiles: list[str] = []

    _url = field_validator("url")(_http_url)


ChannelConfig = Annotated[
    EmailChannelConfig | WebhookChannelConfig | WeComChannelConfig | DingTalkChannelConfig,
    Field(discriminator="type"),
]


class RetryConfig(_Strict):
    """A failed send is tried again after backoff_s, doubling up to backoff_max_s, `attempts` times in all."""

    attempts: int = Field(5, ge=1, le=20)
    backoff_s: float = Field(30.0, ge=0, le=3600, allow_inf_nan=False)
    backoff_max_s: float = Field(3600.0, ge=0, le=86400, allow_inf_nan=False)

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s))


class RoleDefaults(_Strict):
    """What a user of a role gets until it sets its own preferences."""

    events: list[EventKind] = []
    channels: list[str] = []  # channel names; empty: every e-mail channel
    digest: bool = False  # one message a day (at notify.digest_time) instead of one per event
    quiet_hours: str = ""  # "22:00-07:00" in the user's time zone: held until the end, except critical alerts

    _events = field_validator("events")(_subscribable)
    _quiet = field_validator("quiet_hours")(_quiet)


DEFAULT_ROLES: dict[str, RoleDefaults] = {
    "admin": RoleDefaults(),
    "engineer": RoleDefaults(),
    "account_manager": RoleDefaults(events=list(SUBSCRIBABLE)),
    "customer": RoleDefaults(events=[EventKind.ALERT_OPENED, EventKind.ALERT_RESOLVED, EventKind.THRESHOLD_CROSSED,
                                     EventKind.REPORT_READY]),
}


class EscalationConfig(_Strict):
    """Who hears when an alert or a request is not acknowledged in time (a request's target comes from its tier)."""

    alert_ack_min: dict[Severity, int] = {"critical": 15, "warning": 120}  # severities not named never escalate
    to: list[str] = []  # usernames of the second person for every account
    by_manager: dict[str, list[str]] = {}  # account-manager code -> usernames, before `to`

    @field_validator("alert_ack_min")
    @classmethod
    def _positive(cls, value: dict[Severity, int]) -> dict[Severity, int]:
        bad = [k for k, v in value.items() if v <= 0]
        if bad:
            raise ValueError(f"alert_ack_min.{bad[0]} must be a positive number of minutes")
        return value


class NotifyConfig(_Strict):
    """The `[notify]` section."""

    enabled: bool = True
    language: Language = "zh"  # for recipients whose language is unknown and for group channels
    timezone: str = "Asia/Shanghai"  # for recipients whose time zone is unknown (quiet hours, digest, dates)
    send_interval_s: float = Field(5.0, ge=1, le=300, allow_inf_nan=False)
    digest_time: time = time(8, 0)
    due_soon_fraction: float = Field(0.8, gt=0, lt=1, allow_inf_nan=False)  # of a request's resolve target
    channels: dict[str, ChannelConfig] = {}
    retry: RetryConfig = RetryConfig()
    roles: dict[RoleName, RoleDefaults] = {}
    escalation: EscalationConfig = EscalationConfig()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Asia/Shanghai')") from None
        return value

    @model_validator(mode="after")
    def _references(self) -> NotifyConfig:
        problems = [f"channels.{n}: a channel name is letters, digits, '-' and '_'"
                    for n in self.channels if not _CHANNEL_NAME.fullmatch(n)]
        known = ", ".join(sorted(self.channels)) or "none configured"
        for role, d in self.roles.items():
            problems += [f"roles.{role}.channels: unknown channel {c!r} (channels: {known})"
                         for c in d.channels if c not in self.channels]
            allowed = allowed_events(role)
            problems += [f"roles.{role}.events: {e.value!r} is not for the {role} role (it may hear of: "
                         f"{', '.join(k.value for k in allowed)})" for e in d.events if e not in allowed]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def role_defaults(self, role: str) -> RoleDefaults:
        """The built-in defaults of `role` with the keys the config sets for it (nothing for an unknown role)."""
        base = DEFAULT_ROLES.get(role, RoleDefaults())
        conf = self.roles.get(role)  # type: ignore[call-overload]
        if conf is None:
            return base
        return base.model_copy(update={k: getattr(conf, k) for k in conf.model_fields_set})

    def email_channels(self) -> list[str]:
        return [n for n, c in self.channels.items() if isinstance(c, EmailChannelConfig)]

    def secret_envs(self) -> list[tuple[str, str]]:
        """(key path, variable name) of every secret the section names, for the start-up check."""
        out: list[tuple[str, str]] = []
        for name, c in self.channels.items():
            for key in ("password_env", "secret_env", "key_env", "access_token_env"):
                var = getattr(c, key, "")
                if var:
                    out.append((f"notify.channels.{name}.{key}", var))
        return out
