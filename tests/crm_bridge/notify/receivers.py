"""Real receivers on loopback for the notification tests: SMTP (aiosmtpd) and a signature-checking HTTP server.

The SMTP server speaks STARTTLS or implicit TLS with a self-signed certificate and requires a login; the HTTP
server checks signatures the way a CRM webhook, a WeCom robot or a DingTalk robot does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crm_bridge.notify.chat import dingtalk_verify
from crm_bridge.notify.webhook import SIG_HEADER, TS_HEADER, verify

SMTP_USER = "gateway"
SMTP_PASSWORD = "relay-pass-123"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem); the cert is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the SMTP server received: (envelope recipients, parsed message), and the logins it accepted."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        self.received.set()
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login.decode() == SMTP_USER
              and data.password.decode() == SMTP_PASSWORD)
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(folder: Path, mode: str, port: int) -> Iterator[tuple[Mailbox, Path]]:
    """An SMTP server on 127.0.0.1:`port`: `starttls` (TLS required before login) or `tls` (TLS from the start);
    both require a login. Yields the mailbox and the certificate to trust."""
    cert, key = self_signed(folder)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    box = Mailbox()
    common: dict[str, Any] = {"authenticator": box.authenticate, "auth_required": True, "auth_require_tls": True}
    if mode == "starttls":
        ctl = Controller(box, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True, **common)
    else:  # aiosmtpd counts only STARTTLS as TLS for AUTH; here the whole connection is TLS from the start
        ctl = Controller(box, hostname="127.0.0.1", port=port, ssl_context=ctx, server_hostname="localhost",
                         **{**common, "auth_require_tls": False})
    ctl.start()
    try:
        yield box, cert
    finally:
        ctl.stop()


@dataclass
class Hit:
    """One request the HTTP receiver took, and whether its signature checked out."""

    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    signed_ok: bool

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """A loopback HTTP server playing a CRM webhook, a WeCom robot or a DingTalk robot.

    `kind` says how it checks a request: `webhook` (X-Webhook-Signature over timestamp and body), `wecom` (the
    robot key in `key`), `dingtalk` (timestamp and sign query parameters, 加签). `script` gives the answer to each
    request in turn as (HTTP status, JSON body or None); after the script, success. A request whose signature does
    not check is answered as the real service would refuse it.
    """

    def __init__(self, kind: str, secret: str, script: list[tuple[int, dict[str, Any] | None]] | None = None,
                 token: str = "") -> None:
        self.kind, self.secret, self.token = kind, secret, token
        self.script = list(script or [])
        self.hits: list[Hit] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                parts = urlsplit(self.path)
                hit = Hit(parts.path, parse_qs(parts.query), parts.query, dict(self.headers.items()), body,
                          outer._check(parts.query, dict(self.headers.items()), body))
                with outer.arrived:  # recorded before answering: the sender returns only after the answer
                    status, answer = outer._answer(hit)
                    outer.hits.append(hit)
                    outer.arrived.notify_all()
                payload = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{kind}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _check(self, raw_query: str, headers: dict[str, str], body: bytes) -> bool:
        q = parse_qs(raw_query)
        if self.kind == "webhook":
            return verify(self.secret.encode(), headers.get(TS_HEADER, ""), body, headers.get(SIG_HEADER, ""),
                          now=time.time())
        if self.kind == "wecom":
            return q.get("key") == [self.secret]
        # DingTalk: parse_qs URL-decodes `sign` once, as DingTalk does, before comparing with the Base64 HMAC.
        return (q.get("access_token") == [self.token]
                and dingtalk_verify(self.secret, q.get("timestamp", [""])[0], q.get("sign", [""])[0],
                                    now_ms=time.time() * 1000))

    def _answer(self, hit: Hit) -> tuple[int, dict[str, Any] | None]:
        if not hit.signed_ok:
            if self.kind == "webhook":
                return 401, None
            # Both robots answer HTTP 200 with an error code: WeCom 93000 (invalid key), DingTalk 310000 (sign).
            return 200, {"errcode": 93000 if self.kind == "wecom" else 310000, "errmsg": "sign not match"}
        if self.script:
            return self.script.pop(0)
        return (204, None) if self.kind == "webhook" else (200, {"errcode": 0, "errmsg": "ok"})

    def wait_for(self, count: int, timeout: float = 30) -> list[Hit]:
        """Block until `count` requests arrived (readiness, not a fixed sleep)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.hits) >= count, timeout=timeout)
            return list(self.hits)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
