"""Files attached to tickets: size-limited, their type read from their content (never from the name or the sender).

Only a short list of types a customer sends a desk is taken: photos (PNG, JPEG, GIF, WebP), PDF documents and
plain UTF-8 text. Anything else, whatever its name says, is refused with the reason.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_bridge.desk.workflow import TicketError, ticket_by_id
from crm_bridge.registry.models import TicketAttachment

MAX_BYTES = 5 * 1024 * 1024
MAX_PER_TICKET = 10
# Leading bytes of each accepted type (WebP: RIFF....WEBP, checked below).
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
               (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"))


def sniff(data: bytes) -> str | None:
    """The content type `data` is, from its content; None when it is none of the accepted ones."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # Text: no control characters but tab, line feed, carriage return and form feed.
    return "text/plain" if not re.search(r"[\x00-\x08\x0b\x0e-\x1f\x7f]", decoded) else None


def _clean_name(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1].strip().replace("\x00", "")
    return base[:200] or "attachment"


def attach(session: Session, ticket_id: int, name: str, data: bytes, by: str, now: datetime) -> TicketAttachment:
    """Attach `data` to the ticket (TicketError naming the reason: empty, too large, too many, type not accepted)."""
    ticket = ticket_by_id(session, ticket_id)
    if not data:
        raise TicketError("file: empty")
    if len(data) > MAX_BYTES:
        raise TicketError(f"file: {len(data):,} bytes is over the limit of {MAX_BYTES:,} bytes")
    count = session.scalar(select(func.count()).where(TicketAttachment.ticket_id == ticket.id)) or 0
    if count >= MAX_PER_TICKET:
        raise TicketError(f"file: ticket {ticket_id} already has {MAX_PER_TICKET} attachments, the most it takes")
    kind = sniff(data)
    if kind is None:
        raise TicketError("file: its content is not a PNG, JPEG, GIF or WebP picture, a PDF or plain text")
    att = TicketAttachment(name=_clean_name(name), content_type=kind, size=len(data), data=data, uploaded_by=by,
                           at=now)
    ticket.attachments.append(att)
    session.flush()
    return att
