"""Bridge out: e-mail over SMTP and HMAC-signed webhooks to an external CRM."""

from crm_bridge.notify.mail import EmailSettings, NotifyError, send_email
from crm_bridge.notify.webhook import WebhookSettings, send_webhook, sign, verify

__all__ = ["EmailSettings", "NotifyError", "WebhookSettings", "send_email", "send_webhook", "sign", "verify"]
