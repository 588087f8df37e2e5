"""The account manager's workspace: the portfolio (every account with its figures) and each account's page.

The portfolio sorts and filters on the server (query parameters, links and a GET form: no script). The account page
shows the customer file with forms that call the registry's and the accounts' use cases, under the same capability
as their API routes; a form with a bad value comes back with the message next to the field, in the reader's
language (422). A manager reaches only its own accounts: another's is the same 404 as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from crm_bridge.tariffs.contract import BasicChargeMode
from crm_bridge.tariffs.model import available_tariffs
from crm_bridge.tariffs.power_factor import pf_standards
from gateway.api.deps import UseCasesDep
from gateway.api.roles import Capability, allowed, needs
from gateway.api.routers.registry_scope import RegistryDep
from gateway.api.schemas.registry import (
    ContactCreate,
    ContactUpdate,
    ContractCreate,
    EquipmentCreate,
    InspectionCreate,
)
from gateway.api.scope import AccessDep, AccountsDep, ActorDep, CustomerId, GatewayDep
from gateway.portal import Csrf, User, _lang, _nav, _render, i18n
from gateway.portal.i18n import text
from gateway.runtime import Gateway
from gateway.usecases.errors import UseCaseError
from gateway.usecases.figures import customer_config
from gateway.usecases.portfolio import SORTS, AccountRow, MonthFigure, portfolio_rows, sort_and_filter

router = APIRouter(include_in_schema=False)
RowId = Annotated[int, Path(ge=1, le=2**62)]  # a contact's or an equipment's id (the registry's own)
CHANNELS = ("visit", "call", "meeting", "email")
CONTRACT_FIELDS = ("valid_from", "transformer_kva", "hv_motors_kw", "contract_demand_kw", "basic_charge_mode",
                   "pf_standard", "bill_threshold", "tariff_id")
# pydantic's error types -> the message shown next to the field
_ERRORS = {"missing": "err_required", "string_too_short": "err_required", "string_too_long": "err_too_long",
           "string_pattern_mismatch": "err_format", "date_parsing": "err_date",
           "date_from_datetime_parsing": "err_date", "float_parsing": "err_number",
           "greater_than_equal": "err_number", "greater_than": "err_number", "finite_number": "err_number",
           "less_than_equal": "err_invalid", "enum": "err_invalid"}


@router.get("/portal/accounts", dependencies=[needs(Capability.METERED_DATA)])
def accounts_page(request: Request, gw: GatewayDep, v: UseCasesDep, access: AccessDep,
                  sort: Annotated[str, Query(max_length=20)] = "name",
                  order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
                  q: Annotated[str, Query(max_length=100)] = "",
                  tier: Annotated[str, Query(pattern="^(|A|B|C|none)$")] = "",
                  attention: Annotated[str, Query(max_length=5)] = "") -> HTMLResponse:
    """The portfolio: every account the caller sees (a manager its own, an admin all) with its figures."""
    p = access.principal
    ids = access.visible([c.id for c in gw.config.customers])
    if not allowed(p.role, Capability.CUSTOMER_FILE):  # engineers and customers: the list of accounts only
        return _render(request, gw, "accounts.html.j2", p, page="accounts", full=False,
                       accounts=[customer_config(gw, c) for c in ids])
    rows = portfolio_rows(v, ids)
    shown = sort_and_filter(rows, sort if sort in SORTS else "name", order == "desc", q, tier, attention == "1")
    lang = _lang(request, p, gw)
    return _render(request, gw, "accounts.html.j2", p, page="accounts", full=True, total=len(rows),
                   rows=[(r, _cells(r, lang)) for r in shown],
                   show_money=allowed(p.role, Capability.MONEY), sort=sort, order=order, q=q, tier=tier,
                   attention=attention == "1",
                   computing=any(r.computing for r in rows))


# Formatted figures, kept: a 200-account page has some 1,500 of them, mostly the same from one load to the next, and
# Babel takes tens of microseconds for each.
@lru_cache(maxsize=65_536)
def _num(x: float | None, lang: str, digits: int = 0) -> str:
    return i18n.num(x, lang, digits)


@lru_cache(maxsize=65_536)
def _money(x: float | None, currency: str, lang: str) -> str:
    return i18n.money(x, currency, lang)


def _why(key: str, lang: str) -> Markup:
    """Why a cell has no figure, shown muted."""
    return Markup('<span class="muted">{}</span>').format(text(key, lang))


def _figure(f: MonthFigure, what: str, lang: str) -> str | Markup:
    """A month's kWh or bill, or why there is none."""
    if f.state in ("computing", "pending"):
        return _why(f"acct_{f.state}", lang)
    if what == "kwh":
        return _num(f.kwh, lang)
    if f.state in ("before_tariff", "no_contract") or f.total is None or f.currency is None:
        return _why("acct_before_tariff" if f.state == "before_tariff" else "no_contract", lang)
    return _money(f.total, f.currency, lang)


def _cells(r: AccountRow, lang: str) -> dict[str, str | Markup]:
    """The portfolio row's cells, formatted once here rather than cell by cell in the template.

    Still escaped: Markup interpolates with escaping, and the template escapes the plain strings.
    """
    return {
        "kwh": _figure(r.this_month, "kwh", lang), "bill": _figure(r.this_month, "bill", lang),
        "last_month": _figure(r.last_month, "bill", lang), "last_year": _figure(r.last_year, "bill", lang),
        "last_month_kwh": "" if r.last_month.kwh is None else f"{_num(r.last_month.kwh, lang)} kWh",
        "last_year_kwh": "" if r.last_year.kwh is None else f"{_num(r.last_year.kwh, lang)} kWh",
        "money": _why("acct_computing", lang) if r.money_computing
        else "–" if r.money_at_stake is None or r.currency is None else _money(r.money_at_stake, r.currency, lang),
        "satisfaction": "–" if r.satisfaction is None else _num(round(r.satisfaction, 1), lang, 1),
        "visit": _why("acct_never", lang) if r.days_since_visit is None
        else text("acct_days_ago", lang, n=r.days_since_visit),
    }


def _account_page(request: Request, gw: Gateway, v: UseCasesDep, accounts: AccountsDep, registry: RegistryDep,
                  actor: ActorDep, p: User, customer: str, status: int = 200, form: str | None = None,
                  errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                  saved: str | None = None) -> HTMLResponse:
    file = accounts.customer_file(customer)
    contacts, equipment, contracts, inspections = [], [], [], {}
    if file.registered:
        contacts = registry.contacts(actor, customer)
        equipment = registry.equipment(actor, customer)
        contracts = sorted(registry.contracts(actor, customer), key=lambda k: k.valid_from, reverse=True)
        inspections = {e.id: registry.inspections(actor, e.id) for e in equipment}
    row = portfolio_rows(v, [customer])[0]
    return _render(request, gw, "accounts_customer.html.j2", p, status=status, page="accounts", file=file,
                   contacts=contacts, equipment=equipment, contracts=contracts, inspections=inspections,
                   history=list(reversed(accounts.tier_changes(customer))), row=row, channels=CHANNELS,
                   tariffs=available_tariffs(), pf_standards=pf_standards(), modes=[m.value for m in BasicChargeMode],
                   today=datetime.now(ZoneInfo(customer_config(gw, customer).timezone)).date(), form=form,
                   errors=errors or {}, values=values or {}, saved=saved,
                   show_money=allowed(p.role, Capability.MONEY), **_nav(gw, customer))


@router.get("/portal/accounts/{customer_id}", dependencies=[needs(Capability.CUSTOMER_FILE)])
def account_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, accounts: AccountsDep,
                 registry: RegistryDep, actor: ActorDep, p: User,
                 saved: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    """The customer file, its tier history and the forms to change them."""
    return _account_page(request, gw, v, accounts, registry, actor, p, customer_id, saved=saved or None)


def _problems(exc: ValidationError, lang: str) -> dict[str, str]:
    """Each field's first problem, in the reader's language."""
    out: dict[str, str] = {}
    for e in exc.errors():
        where = str(e["loc"][0]) if e["loc"] else "form"
        out.setdefault(where, text(_ERRORS.get(e["type"], "err_invalid"), lang))
    return out


def _fields(raw: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    """The form's non-empty fields among `names` (an empty field is a value not given)."""
    return {k: raw[k].strip() for k in names if raw.get(k, "").strip()}


async def _form(request: Request) -> dict[str, str]:
    """The posted form's text fields.

    Read in this dependency, in the event loop, so that the handlers run in the thread pool like every sync route:
    they write the registry and may render a page.
    """
    form = await request.form()
    return {k: str(v)[:5000] for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}


RawForm = Annotated[dict[str, str], Depends(_form)]


class _Ctx:
    """What a form handler needs to re-show the page."""

    def __init__(self, request: Request, gw: Gateway, v: UseCasesDep, accounts: AccountsDep, registry: RegistryDep,
                 actor: ActorDep, p: User, customer: str) -> None:
        self.args = (request, gw, v, accounts, registry, actor, p, customer)
        self.customer = customer
        self.lang = _lang(request, p, gw)

    def again(self, form: str, errors: dict[str, str], values: dict[str, str]) -> HTMLResponse:
        return _account_page(*self.args, status=422, form=form, errors=errors, values=values)

    def usecase_error(self, form: str, exc: UseCaseError, values: dict[str, str]) -> HTMLResponse:
        """A use case's BadInput/Conflict names its field (`body.x`): the message goes next to it."""
        where = (exc.where or "form").removeprefix("body.")
        key = f"err_{where}" if f"err_{where}" in _known() else "err_invalid"
        return self.again(form, {where: text(key, self.lang)}, values)


def _known() -> set[str]:
    from gateway.portal.i18n import messages

    return set(messages())


def _done(customer: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"/portal/accounts/{customer}?saved={what}#{what}", status_code=303)


def _validated(model: type[BaseModel], data: dict[str, Any]) -> tuple[Any, ValidationError | None]:
    try:
        return model.model_validate(data), None
    except ValidationError as exc:
        return None, exc


def _create(ctx: _Ctx, form: str, model: type[BaseModel], raw: dict[str, str], names: tuple[str, ...],
            save: Callable[[Any], object], anchor: str) -> Response:
    """A form that adds one record: its fields validated by `model` (errors beside them), then `save`d."""
    new, exc = _validated(model, _fields(raw, names))
    if exc is not None:
        return ctx.again(form, _problems(exc, ctx.lang), raw)
    try:
        save(new)
    except UseCaseError as err:
        return ctx.usecase_error(form, err, raw)
    return _done(ctx.customer, anchor)


@router.post("/portal/accounts/{customer_id}/contacts", dependencies=[Csrf, needs(Capability.CUSTOMER_FILE)])
def add_contact(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, accounts: AccountsDep,
                registry: RegistryDep, actor: ActorDep, p: User, raw: RawForm) -> Response:
    ctx = _Ctx(request, gw, v, accounts, registry, actor, p, customer_id)
    return _create(ctx, "contact_new", ContactCreate, raw, ("name", "email", "phone", "role"),
                   lambda new: registry.create_contact(actor, customer_id, new), "contacts")


@router.post("/portal/accounts/{customer_id}/contacts/{contact_id}",
             dependencies=[Csrf, needs(Capability.CUSTOMER_FILE)])
def change_contact(request: Request, customer_id: CustomerId, contact_id: RowId, gw: GatewayDep, v: UseCasesDep,
                   accounts: AccountsDep, registry: RegistryDep, actor: ActorDep, p: User, raw: RawForm) -> Response:
    """Change a contact's fields (an emptied field is cleared; the name stays required), or retire it."""
    ctx = _Ctx(request, gw, v, accounts, registry, actor, p, customer_id)
    form = f"contact_{contact_id}"
    try:
        if not any(x.id == contact_id for x in registry.contacts(actor, customer_id)):
            return ctx.again(form, {"form": text("error_404", ctx.lang)}, raw)
        if raw.get("retire") == "1":
            registry.retire_contact(actor, contact_id, None)
            return _done(customer_id, "contacts")
        fields = {k: (raw.get(k, "").strip() or None) for k in ("name", "email", "phone", "role")}
        update, exc = _validated(ContactUpdate, fields)
        if exc is not None:
            return ctx.again(form, _problems(exc, ctx.lang), raw)
        if update.name is None:
            return ctx.again(form, {"name": text("err_required", ctx.lang)}, raw)
        registry.update_contact(actor, contact_id, update)
    except UseCaseError as err:
        return ctx.usecase_error(form, err, raw)
    return _done(customer_id, "contacts")


@router.post("/portal/accounts/{customer_id}/equipment", dependencies=[Csrf, needs(Capability.CUSTOMER_FILE)])
def add_equipment(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, accounts: AccountsDep,
                  registry: RegistryDep, actor: ActorDep, p: User, raw: RawForm) -> Response:
    ctx = _Ctx(request, gw, v, accounts, registry, actor, p, customer_id)
    return _create(ctx, "equipment_new", EquipmentCreate, raw, ("kind", "name", "site", "rating", "rating_unit"),
                   lambda new: registry.create_equipment(actor, customer_id, new), "equipment")


@router.post("/portal/accounts/{customer_id}/equipment/{equipment_id}/inspections",
             dependencies=[Csrf, needs(Capability.CUSTOMER_FILE)])
def add_inspection(request: Request, customer_id: CustomerId, equipment_id: RowId, gw: GatewayDep, v: UseCasesDep,
                   accounts: AccountsDep, registry: RegistryDep, actor: ActorDep, p: User, raw: RawForm) -> Response:
    ctx = _Ctx(request, gw, v, accounts, registry, actor, p, customer_id)
    form = f"inspection_{equipment_id}"
    try:
        if registry.get_equipment(actor, equipment_id).customer != customer_id:
            return ctx.again(form, {"form": text("error_404", ctx.lang)}, raw)
        new, exc = _validated(InspectionCreate, _fields(raw, ("on", "kind", "result", "findings", "next_due")))
        if exc is not None:
            return ctx.again(form, _problems(exc, ctx.lang), raw)
        registry.add_inspection(actor, equipment_id, new)
    except UseCaseError as err:
        return ctx.usecase_error(form, err, raw)
    return _done(customer_id, "equipment")


@router.post("/portal/accounts/{customer_id}/contracts", dependencies=[Csrf, needs(Capability.CUSTOMER_FILE)])
def add_contract(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, accounts: AccountsDep,
                 registry: RegistryDep, actor: ActorDep, p: User, raw: RawForm) -> Response:
    """A new contract version from `valid_from` (the version in force then ends that day): the history is kept."""
    ctx = _Ctx(request, gw, v, accounts, registry, actor, p, customer_id)
    return _create(ctx, "contract_new", ContractCreate, raw, CONTRACT_FIELDS,
                   lambda new: registry.create_contract(actor, customer_id, new), "contracts")


@router.post("/portal/accounts/{customer_id}/interactions", dependencies=[Csrf, needs(Capability.CUSTOMER_FILE)])
def add_interaction(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, accounts: AccountsDep,
                    registry: RegistryDep, actor: ActorDep, p: User, raw: RawForm) -> Response:
    ctx = _Ctx(request, gw, v, accounts, registry, actor, p, customer_id)
    errors = {}
    if raw.get("channel") not in CHANNELS:
        errors["channel"] = text("err_required", ctx.lang)
    summary = raw.get("summary", "").strip()
    if not summary:
        errors["summary"] = text("err_required", ctx.lang)
    elif len(summary) > 2000:
        errors["summary"] = text("err_too_long", ctx.lang)
    if errors:
        return ctx.again("interaction_new", errors, raw)
    try:
        accounts.add_interaction(actor, customer_id, raw["channel"], summary)
    except UseCaseError as err:
        return ctx.usecase_error("interaction_new", err, raw)
    return _done(customer_id, "interactions")


@router.post("/portal/accounts/{customer_id}/tier", dependencies=[Csrf, needs(Capability.CUSTOMER_FILE)])
def override_tier(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, accounts: AccountsDep,
                  registry: RegistryDep, actor: ActorDep, p: User, raw: RawForm) -> Response:
    """Set or clear ("") the manual tier; the reason is required either way."""
    ctx = _Ctx(request, gw, v, accounts, registry, actor, p, customer_id)
    tier = raw.get("tier", "")
    if tier not in ("", "A", "B", "C"):
        return ctx.again("tier", {"tier": text("err_invalid", ctx.lang)}, raw)
    if not raw.get("reason", "").strip():
        return ctx.again("tier", {"reason": text("err_reason_required", ctx.lang)}, raw)
    try:
        accounts.override_tier(actor, customer_id, tier or None, raw["reason"][:1000])
    except UseCaseError as err:
        return ctx.usecase_error("tier", err, raw)
    return _done(customer_id, "tier")
