"""Customers: list, detail, contract, day curve, interval series, month figures, advice and exports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gateway.api.deps import Page, PageParams, UseCasesDep, page_of
from gateway.api.errors import ApiError
from gateway.api.roles import Capability, allowed, needs
from gateway.api.schemas.customers import AdvicePublic, ContractPublic, CustomerPublic, ServicesPublic
from gateway.api.schemas.figures import CustomerSeries, DayCurve, MonthView
from gateway.api.scope import AccessDep, ActorDep, CustomerId, DeskDep, GatewayDep
from gateway.usecases import parse_day, parse_month, without_money
from gateway.usecases.desk import AdviceRequestPublic
from gateway.usecases.figures import contract_of, customer_config

router = APIRouter(prefix="/api/v1/customers", tags=["customers"], dependencies=[needs(Capability.METERED_DATA)])
DATE = r"^\d{4}-\d{2}-\d{2}$"


def _customer(gw: GatewayDep, cid: str) -> CustomerPublic:
    c = customer_config(gw, cid)
    return CustomerPublic(id=c.id, name=c.name or c.id, timezone=c.timezone, language=c.language,
                          sites=gw.directory.sites_of(cid))


@router.get("")
def list_customers(gw: GatewayDep, access: AccessDep, page: PageParams) -> Page[CustomerPublic]:
    """The customers the caller may see."""
    ids = access.visible([c.id for c in gw.config.customers])
    return page_of([_customer(gw, c) for c in ids], page)


@router.get("/{customer_id}")
def get_customer(customer_id: CustomerId, gw: GatewayDep) -> CustomerPublic:
    return _customer(gw, customer_id)


@router.get("/{customer_id}/contract", dependencies=[needs(Capability.CONTRACTS)])
def get_contract(customer_id: CustomerId, gw: GatewayDep) -> ContractPublic:
    """Transformer kVA, HV motors, contract demand, basic-charge mode, PF standard, bill threshold, tariff."""
    c = contract_of(gw, customer_id)
    if c is None:
        raise ApiError(404, f"customer {customer_id!r} has no contract on file")
    return ContractPublic(customer=customer_id, transformer_kva=c.transformer_kva, hv_motors_kw=c.hv_motors_kw,
                          contract_demand_kw=c.contract_demand_kw, basic_charge_mode=c.basic_charge_mode,
                          pf_standard=c.pf_standard, bill_threshold=c.bill_threshold, tariff_id=c.tariff_id)


@router.get("/{customer_id}/day-curve")
def day_curve(customer_id: CustomerId, v: UseCasesDep,
              day: Annotated[str | None, Query(alias="date", pattern=DATE,
                                               description="Local day YYYY-MM-DD; default today")] = None,
              ) -> DayCurve:
    """15-min kW of one local day: actual, forecast and the same weekday a week before, with TOU bands."""
    tz = ZoneInfo(customer_config(v.gw, customer_id).timezone)
    return DayCurve.model_validate(v.day_curve(customer_id, parse_day(day, tz)))


@router.get("/{customer_id}/series")
def series(customer_id: CustomerId, uc: UseCasesDep,
           start: Annotated[str, Query(pattern=DATE, description="First local day")],
           end: Annotated[str, Query(pattern=DATE, description="Last local day (inclusive)")],
           freq: Annotated[Literal["15min", "1h", "1d"], Query()] = "1h") -> CustomerSeries:
    """Mean kW, kWh, max 15-min demand, kvarh and PF per interval, each with its status.

    Each row counts its 15-min intervals as measured, estimated, missing and pending; nothing is filled.
    """
    return CustomerSeries.model_validate(uc.series("customer", customer_id, start, end, freq))


# Unset fields are left out: a view without money (engineers) has no money keys at all, while a customer without a
# contract gets them as null.
@router.get("/{customer_id}/month", response_model_exclude_unset=True)
def month(customer_id: CustomerId, v: UseCasesDep, access: AccessDep,
          month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default this month")]
          = None) -> MonthView:
    """Energy, peak demand and when, load factor, PF; with money: TOU costs, basic-charge modes, PF adjustment.

    Roles without money (engineers) get the same view without its money keys: `tou`, `basic_charge`, `pf_adjustment`,
    `government_funds`, `total`, `currency` and `versions`.
    """
    tz = ZoneInfo(customer_config(v.gw, customer_id).timezone)
    view = v.month_view(customer_id, parse_month(month, tz))
    return MonthView.model_validate(view if allowed(access.principal.role, Capability.MONEY) else without_money(view))


@router.get("/{customer_id}/services", dependencies=[needs(Capability.MONEY)])
def services(customer_id: CustomerId, v: UseCasesDep,
             month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default this month")]
             = None) -> ServicesPublic:
    """Every value-added service of the month, each with its evidence.

    Load-curve card, TOU advice, demand and basic charge, PF, base load, bill forecast against the threshold, and
    saving advice ranked by money.
    """
    from gateway.usecases.services import services_for

    tz = ZoneInfo(customer_config(v.gw, customer_id).timezone)
    return ServicesPublic.model_validate(services_for(v, customer_id, parse_month(month, tz)))


@router.get("/{customer_id}/advice", dependencies=[needs(Capability.MONEY)])
def advice(customer_id: CustomerId, v: UseCasesDep) -> list[AdvicePublic]:
    """Saving advice ranked by money (per month and per year), with evidence and assumptions."""
    from gateway.usecases.services import advice_for

    return [AdvicePublic.model_validate(a) for a in advice_for(v, customer_id)]


@router.post("/{customer_id}/advice/{key}/request", status_code=201,
             dependencies=[needs(Capability.MONEY), needs(Capability.TICKET_DESK)])
def advice_request(customer_id: CustomerId, key: Annotated[str, Path(pattern="^[a-z0-9_]{1,60}$")],
                   v: UseCasesDep, desk: DeskDep, actor: ActorDep) -> AdviceRequestPublic:
    """Open a service request for one piece of the customer's advice (its `kind`, e.g. `load_shift`), linked both ways.

    The request's title is the advice's in the account's language. Who may: as for opening a request for an alert
    (the desk). 404 when the customer's advice has no such item,
    409 when the item already has its request (the error names the ticket).
    """
    from gateway.usecases.desk import advice_month
    from gateway.usecases.services import advice_for

    c = customer_config(v.gw, customer_id)
    month = advice_month(datetime.now(ZoneInfo(c.timezone)).date())
    return desk.open_advice_request(actor, customer_id, key, month, advice_for(v, customer_id), c.language)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FILE = {"schema": {"type": "string", "format": "binary"}}
_TEXT = {"schema": {"type": "string"}}


@router.get("/{customer_id}/export", response_class=Response, responses={200: {
    "description": "The intervals as a file (Content-Disposition: attachment)",
    "content": {"text/csv": _TEXT, XLSX: _FILE, "application/atom+xml": _TEXT}}})
def export(customer_id: CustomerId, v: UseCasesDep, access: AccessDep,
           fmt: Annotated[Literal["csv", "xlsx", "greenbutton"], Query(alias="format")] = "csv",
           start: Annotated[str | None, Query(pattern=DATE)] = None,
           end: Annotated[str | None, Query(pattern=DATE)] = None) -> Response:
    """15-min intervals as CSV, XLSX or Green Button (ESPI) XML; default the last 30 local days.

    Every interval carries its status (measured, estimated, missing, pending). Green Button adds costs and a
    UsageSummary per whole month from the month bill for roles that may see money.
    """
    from reports.tables import to_csv, to_xlsx

    c = customer_config(v.gw, customer_id)
    tz = ZoneInfo(c.timezone)
    last = parse_day(end, tz, "end") if end else parse_day(None, tz) - timedelta(days=1)
    first = parse_day(start, tz, "start") if start else last - timedelta(days=29)
    name = f"{customer_id}_{first}_{last}"
    if fmt == "greenbutton":
        xml = v.greenbutton(customer_id, first, last, money=allowed(access.principal.role, Capability.MONEY))
        return Response(xml, media_type="application/atom+xml",
                        headers={"Content-Disposition": f'attachment; filename="{name}.xml"'})
    frame = v.intervals(customer_id, first, last)
    if fmt == "csv":
        return Response(to_csv(frame), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Response(to_xlsx(frame, f"{c.name or customer_id} {first}..{last}"),
                    media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


@router.get("/{customer_id}/report", dependencies=[needs(Capability.REPORTS)], response_class=Response,
            responses={200: {"description": "The report as PDF, a self-contained script-free HTML page or an XLSX "
                                            "workbook (Content-Disposition names the file)",
                             "content": {"application/pdf": _FILE, "text/html": _TEXT, XLSX: _FILE}}})
def report(customer_id: CustomerId, v: UseCasesDep, access: AccessDep,
           month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default this month")]
           = None,
           fmt: Annotated[Literal["html", "pdf", "xlsx"], Query(alias="format")] = "html",
           lang: Annotated[Literal["zh", "en"] | None,
                           Query(description="zh or en; default the customer's language")] = None) -> Response:
    """The monthly customer report as PDF, script-free HTML or XLSX, in Chinese or English.

    The month bill by TOU band, the basic-charge modes compared, PF adjustment and total; the month before and last
    year; charts; peak demand; load factor; forecast accuracy; alerts; advice; open requests; data quality. Roles
    without money get it without the money.
    """
    from gateway.api.routers.reports import file_response
    from gateway.usecases.reports import customer_report

    tz = ZoneInfo(customer_config(v.gw, customer_id).timezone)
    first = parse_month(month, tz)
    content = customer_report(v, customer_id, first, fmt, lang,
                              money=allowed(access.principal.role, Capability.MONEY))
    return file_response(content, fmt, f"{customer_id}_{first:%Y-%m}")
