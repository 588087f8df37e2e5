"""HMAC-SHA256-signed webhooks (httpx): one signed POST, or in-place retries with backoff and a dead letter."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.orm import Session

from crm_bridge.notify.mail import NotifyError
from crm_bridge.registry.models import DeadLetter

log = logging.getLogger(__name__)
TS_HEADER = "X-Webhook-Timestamp"
SIG_HEADER = "X-Webhook-Signature"


class WebhookSettings(BaseModel):
    """Webhook target; the secret comes from the environment."""

    model_config = ConfigDict(extra="forbid")
    url: str
    secret: SecretStr
    attempts: int = Field(4, ge=1, le=20)
    backoff_s: float = Field(0.5, ge=0)
    timeout_s: float = Field(5.0, gt=0)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Signature `sha256=<hex>` over `<timestamp>.<body>` (the timestamp is signed to stop replays)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: float = 300) -> bool:
    """Receiver side: signature matches and the timestamp is within `tolerance_s` of `now`."""
    try:
        ts = float(timestamp)
    except ValueError:
        return False
    return abs(now - ts) <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def webhook_body(event: str, payload: dict[str, Any]) -> bytes:
    """The JSON body of a webhook: `{"event", "data"}`, compact."""
    return json.dumps({"event": event, "data": payload}, separators=(",", ":"), default=str).encode()


def post_signed(http: httpx.Client, url: str, secret: bytes, body: bytes) -> None:
    """One signed POST of `body`; NotifyError on failure, `permanent` for a 4xx other than 408 and 429."""
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", TS_HEADER: ts, SIG_HEADER: sign(secret, ts, body)}
    try:
        resp = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise NotifyError(f"webhook {url}: {type(exc).__name__}: {exc}") from exc
    if resp.status_code >= 300:
        permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
        raise NotifyError(f"webhook {url}: HTTP {resp.status_code}: {resp.text[:200]}", permanent=permanent)


def send_webhook(
    session: Session, settings: WebhookSettings, event: str, payload: dict[str, Any],
    client: httpx.Client | None = None,
) -> bool:
    """POST `{"event", "data"}` signed; retry on network errors and 5xx/429 with exponential backoff.

    Returns True when delivered. After the last failure (or a 4xx that retrying cannot fix) a DeadLetter row is
    committed and False returned; nothing raises, so the caller's job goes on.
    """
    body = webhook_body(event, payload)
    secret = settings.secret.get_secret_value().encode()
    own = client is None
    http = client or httpx.Client(timeout=settings.timeout_s)
    error = "not attempted"
    attempt = 0
    try:
        for attempt in range(1, settings.attempts + 1):
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", TS_HEADER: ts, SIG_HEADER: sign(secret, ts, body)}
            try:
                resp = http.post(settings.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    return True
                error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                if resp.status_code < 500 and resp.status_code != 429:
                    break
            log.warning("webhook %s to %s attempt %d/%d failed: %s", event, settings.url, attempt,
                        settings.attempts, error)
            if attempt < settings.attempts:
                time.sleep(settings.backoff_s * 2 ** (attempt - 1))
    finally:
        if own:
            http.close()
    session.add(DeadLetter(url=settings.url, event=event, payload=payload, error=error, attempts=attempt,
                           at=datetime.now(UTC)))
    session.commit()
    log.error("webhook %s to %s dead-lettered after %d attempts: %s", event, settings.url, attempt, error)
    return False
