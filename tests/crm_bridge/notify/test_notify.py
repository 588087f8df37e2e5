"""E-mail against a real aiosmtpd server; webhooks against a real local HTTP receiver that checks the signature."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from sqlalchemy.orm import Session

from crm_bridge.notify import EmailSettings, NotifyError, WebhookSettings, send_email, send_webhook, sign, verify
from crm_bridge.registry import make_engine, migrate
from crm_bridge.registry.models import DeadLetter

SECRET = "s3cret-for-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collect(Sink):
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Collect, int]]:
    handler = _Collect()
    port = _free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield handler, port
    finally:
        ctl.stop()


def test_email_delivered_to_real_smtp_server(smtp: tuple[_Collect, int]) -> None:
    handler, port = smtp
    cfg = EmailSettings(host="127.0.0.1", port=port, sender="alerts@utility.example")
    send_email(cfg, ["ops@plant.example", "boss@plant.example"], "Demand at 92 %", "Window 14:30-14:45")
    [(rcpts, raw)] = handler.messages
    assert rcpts == ["ops@plant.example", "boss@plant.example"]
    msg = message_from_bytes(raw)
    assert msg["Subject"] == "Demand at 92 %"
    assert "Window 14:30-14:45" in msg.get_payload()


def test_email_starttls_refused_by_plain_server_is_clear(smtp: tuple[_Collect, int]) -> None:
    _, port = smtp
    cfg = EmailSettings(host="127.0.0.1", port=port, sender="a@b.example", starttls=True)
    with pytest.raises(NotifyError, match=f"127.0.0.1:{port}"):
        send_email(cfg, ["x@y.example"], "s", "b")


def test_email_unreachable_server_is_clear() -> None:
    port = _free_port()
    cfg = EmailSettings(host="127.0.0.1", port=port, sender="a@b.example", timeout_s=2)
    with pytest.raises(NotifyError, match=f"SMTP 127.0.0.1:{port}"):
        send_email(cfg, ["x@y.example"], "s", "b")


def test_email_settings_forbid_unknown_keys() -> None:
    with pytest.raises(ValueError, match="pasword"):
        EmailSettings.model_validate({"host": "h", "sender": "s", "pasword": "x"})


class _Receiver:
    """Local HTTP receiver: verifies the signature; fails the first `fail_first` requests with `fail_status`."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self.bad_signatures = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                ok = verify(SECRET.encode(), self.headers.get("X-Webhook-Timestamp", ""), body,
                            self.headers.get("X-Webhook-Signature", ""), now=time.time())
                if not ok:
                    outer.bad_signatures += 1
                    status = 401
                elif outer.requests <= fail_first:
                    status = fail_status
                else:
                    outer.received.append(json.loads(body))
                    status = 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_signature_roundtrip_and_tamper() -> None:
    sig = sign(b"k", "1700000000", b"{}")
    assert verify(b"k", "1700000000", b"{}", sig, now=1700000010)
    assert not verify(b"k", "1700000000", b"{ }", sig, now=1700000010)
    assert not verify(b"other", "1700000000", b"{}", sig, now=1700000010)
    assert not verify(b"k", "1700000000", b"{}", sig, now=1700009999)  # replay outside tolerance
    assert not verify(b"k", "soon", b"{}", sig, now=1700000010)


def test_webhook_signed_and_delivered(session: Session) -> None:
    with _Receiver() as rx:
        cfg = WebhookSettings(url=rx.url, secret=SECRET, backoff_s=0)
        assert send_webhook(session, cfg, "alert.opened", {"customer": "C1", "kw": 2100.0})
    assert rx.received == [{"event": "alert.opened", "data": {"customer": "C1", "kw": 2100.0}}]
    assert rx.bad_signatures == 0


def test_webhook_wrong_secret_rejected_and_dead_lettered(session: Session) -> None:
    with _Receiver() as rx:
        cfg = WebhookSettings(url=rx.url, secret="wrong", backoff_s=0, attempts=3)
        assert not send_webhook(session, cfg, "alert.opened", {"customer": "C1"})
    assert rx.bad_signatures == 1  # 401 is not retried
    [dl] = session.query(DeadLetter).all()
    assert "HTTP 401" in dl.error


def test_webhook_retries_then_succeeds(session: Session) -> None:
    with _Receiver(fail_first=2) as rx:
        cfg = WebhookSettings(url=rx.url, secret=SECRET, backoff_s=0.01, attempts=4)
        assert send_webhook(session, cfg, "ticket.created", {"id": 7})
    assert rx.requests == 3
    assert rx.received == [{"event": "ticket.created", "data": {"id": 7}}]
    assert session.query(DeadLetter).count() == 0


def test_failing_receiver_retries_then_dead_letter(session: Session) -> None:
    with _Receiver(fail_first=100) as rx:
        cfg = WebhookSettings(url=rx.url, secret=SECRET, backoff_s=0.01, attempts=3)
        assert not send_webhook(session, cfg, "ticket.created", {"id": 8})
    assert rx.requests == 3
    [dl] = session.query(DeadLetter).all()
    assert (dl.attempts, dl.event, dl.payload) == (3, "ticket.created", {"id": 8})
    assert "HTTP 503" in dl.error


def test_unreachable_receiver_dead_letter(session: Session) -> None:
    cfg = WebhookSettings(url=f"http://127.0.0.1:{_free_port()}/hook", secret=SECRET, backoff_s=0, attempts=2)
    assert not send_webhook(session, cfg, "x", {"a": 1})
    [dl] = session.query(DeadLetter).all()
    assert "ConnectError" in dl.error
