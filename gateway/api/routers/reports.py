"""Reports as files: a customer's daily brief and an account manager's portfolio, as PDF, HTML or XLSX.

The monthly customer report is `GET /api/v1/customers/{id}/report`. Every report is in Chinese or English.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gateway.api.deps import UseCasesDep
from gateway.api.roles import Capability, Role, allowed, needs
from gateway.api.scope import AccessDep, CustomerId
from gateway.usecases import BadInput, NotFound, parse_day, parse_month
from gateway.usecases.figures import customer_config

router = APIRouter(prefix="/api/v1", tags=["reports"], dependencies=[needs(Capability.REPORTS)])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "xlsx": XLSX}
# The HTML reports hold no script and load nothing (charts are inline SVG, styles inline), so they are served under
# a policy that allows neither, sandboxed: an opaque origin, no cookies, no API calls.
REPORT_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
              "form-action 'none'; base-uri 'none'")
_FILE = {"schema": {"type": "string", "format": "binary"}}
_TEXT = {"schema": {"type": "string"}}
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "The report as PDF, a self-contained script-free HTML page or an XLSX workbook "
                   "(Content-Disposition names the file)",
    "content": {"application/pdf": _FILE, "text/html": _TEXT, XLSX: _FILE}}}
Format = Annotated[Literal["html", "pdf", "xlsx"], Query(alias="format")]
Lang = Annotated[Literal["zh", "en"] | None, Query(description="zh or en; default the customer's (or your) language")]


def file_response(content: bytes, fmt: str, name: str) -> Response:
    """A report file: HTML shown inline under REPORT_CSP, PDF inline, XLSX as an attachment."""
    disposition = "attachment" if fmt == "xlsx" else "inline"
    headers = {"Content-Disposition": f'{disposition}; filename="{name}.{fmt}"'}
    if fmt == "html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return Response(content, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get("/customers/{customer_id}/brief", response_class=Response, responses=FILE_RESPONSES)
def brief(customer_id: CustomerId, v: UseCasesDep, access: AccessDep,
          day: Annotated[str | None, Query(alias="date", pattern=r"^\d{4}-\d{2}-\d{2}$",
                                           description="Local day YYYY-MM-DD; default yesterday")] = None,
          fmt: Format = "html", lang: Lang = None) -> Response:
    """The daily brief on one page: the day against its forecast and the same weekday last week, cost and alerts.

    The energy cost only for roles that may see money.
    """
    from gateway.usecases.reports import brief_report

    tz = ZoneInfo(customer_config(v.gw, customer_id).timezone)
    the_day = parse_day(day, tz) if day else parse_day(None, tz) - timedelta(days=1)
    content = brief_report(v, customer_id, the_day, fmt, lang, money=allowed(access.principal.role, Capability.MONEY))
    return file_response(content, fmt, f"{customer_id}_{the_day}")


@router.get("/portfolio/report", response_class=Response, responses=FILE_RESPONSES,
            dependencies=[needs(Capability.CUSTOMER_FILE)])
def portfolio_report(v: UseCasesDep, access: AccessDep,
                     manager: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                                                          description="Manager code; default your own")] = None,
                     month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$",
                                                       description="YYYY-MM; default this month")] = None,
                     fmt: Format = "html", lang: Lang = None) -> Response:
    """An account manager's portfolio: tiers, trends, largest changes, open advice, alerts, requests, response times.

    Tiers and tier changes, kWh and bill trends, the largest changes, money in open advice, open alerts and
    requests, request response times against target, satisfaction. A manager sees its own portfolio only (another
    code is 404, as one that does not exist); an admin names the manager.
    """
    from gateway.usecases.reports import portfolio_report as make

    p = access.principal
    code = manager or p.manager
    if code is None:
        raise BadInput("name the account manager: ?manager=CODE", "manager")
    if p.role != Role.ADMIN and code != p.manager:
        raise NotFound(f"no account manager {code!r}", "manager")
    first = parse_month(month, ZoneInfo(v.gw.config.gateway.timezone))
    content = make(v, code, first, fmt, lang or (p.language if p.language in ("zh", "en") else None))
    return file_response(content, fmt, f"portfolio_{code}_{first:%Y-%m}")
