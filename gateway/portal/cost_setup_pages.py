"""The portal's cost-allocation setup: cost centres and their formula versions, the sharing rule, budgets.

Every write calls the use case its API route calls (`gateway.usecases.allocation` put_cost_centre, add_formula and
add_rule; `Performance.put_budget` for one budget, where the API's PUT replaces them all), validated by the same
models, under the same capabilities (the customer file for cost centres and rules, money for budgets, and the
customer scope of the path), and is audited as the API audits. A bad value re-shows the page (422) with the
message next to its field in the reader's language; a use case's English message the forms do not foresee is shown
as it is, marked as such.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from gateway.api.deps import UseCasesDep, get_auth
from gateway.api.roles import Capability, allowed, needs
from gateway.api.routers.performance import BudgetIn
from gateway.api.scope import ActorDep, CustomerId, GatewayDep, SessionDep
from gateway.auth import AuthService, Principal
from gateway.portal import Csrf, User, _lang, _nav, _render, i18n
from gateway.runtime import Gateway
from gateway.usecases import allocation as uc_alloc
from gateway.usecases.allocation import CODE, CostCentreIn, FormulaIn, RuleIn
from gateway.usecases.errors import UseCaseError
from gateway.usecases.figures import UseCases
from gateway.usecases.performance import Performance

router = APIRouter(include_in_schema=False)
AuthDep = Annotated[AuthService, Depends(get_auth)]
KINDS = ("site", "line", "cost_centre")
RULES = {"kwh": "ep_rule_kwh", "coincident_peak": "ep_rule_peak", "fixed": "ep_rule_fixed"}
BANDS = ("critical_peak", "peak", "flat", "valley")
ELEMENTS = (*(f"energy_{b}" for b in BANDS), "basic_charge", "pf_adjustment", "government_funds")
MAX_SHARES = 200  # share fields read from one form
# The field a model's error is about -> the message shown next to it.
FIELDS = {"code": "cs_err_code", "name": "cs_err_name", "kind": "cs_err_kind", "formula": "cs_err_formula",
          "valid_from": "cs_err_valid_from", "rule": "cs_err_rule", "shares": "cs_err_share",
          "company_code": "cs_err_company_code", "cost_elements": "cs_err_element", "month": "cs_err_month",
          "amount": "cs_err_amount", "currency": "cs_err_currency", "cost_centre": "cs_err_budget_centre"}
# A use case's (English) message -> the field it is about and the message shown there, with the values it names.
USECASE: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^body\.formula: ['\"](?P<meter>.+)['\"] is not a meter of"), "formula", "cs_err_meter"),
    (re.compile(r"^body\.valid_from: .* does not follow the one from (?P<date>\d{4}-\d\d-\d\d)"), "valid_from",
     "cs_err_not_after"),
    (re.compile(r"^body\.shares: only the fixed rule"), "shares", "cs_err_shares_not_fixed"),
    (re.compile(r"^body\.shares\.(?P<code>[^:]+): no cost centre"), "shares", "cs_err_share_unknown"),
    (re.compile(r"^body\.shares\.(?P<code>[^:]+): .* is negative"), "shares", "cs_err_share"),
    (re.compile(r"^body\.shares: add up to (?P<total>\S+), not 1"), "shares", "cs_err_shares_sum"),
    (re.compile(r"^code: 'UNMETERED'"), "code", "cs_err_code_reserved"),
    (re.compile(r"^cost centre .* not found"), "code", "cs_err_centre_unknown"),
    (re.compile(r"^cost_centre: "), "cost_centre", "cs_err_budget_centre"),
    (re.compile(r"^month: no budget"), "month", "cs_err_budget_none"),
    (re.compile(r"^month: "), "month", "cs_err_month"),
]


def _problems(exc: ValidationError, lang: str) -> dict[str, str]:
    """Each field's first problem, in the reader's language."""
    out: dict[str, str] = {}
    for e in exc.errors():
        where = str(e["loc"][0]) if e["loc"] else "form"
        out.setdefault(where, i18n.text(FIELDS.get(where, "err_invalid"), lang))
    return out


def usecase_problem(exc: UseCaseError, lang: str) -> dict[str, str]:
    """A use case's refusal as {field: message}: a known one in the reader's language, else its own words."""
    said = str(exc)
    for pattern, field, key in USECASE:
        m = pattern.match(said)
        if m:
            return {field: i18n.text(key, lang, **m.groupdict())}
    where = (exc.where or "form").removeprefix("body.").split(".")[0]
    return {where if where in FIELDS else "form": i18n.text("cs_err_other", lang, text=said)}


def _validated(model: type[BaseModel], data: dict[str, Any]) -> tuple[Any, ValidationError | None]:
    try:
        return model.model_validate(data), None
    except ValidationError as exc:
        return None, exc


async def _form(request: Request) -> dict[str, str]:
    """The posted form's text fields, read in the event loop so that the handlers run in the thread pool."""
    form = await request.form()
    return {k[:100]: str(v)[:5000] for k, v in list(form.items())[:500]
            if k != "csrf_token" and isinstance(v, str)}


RawForm = Annotated[dict[str, str], Depends(_form)]


def _meters(gw: Gateway, customer: str) -> list[tuple[str, str]]:
    """The customer's meters with their roles ("billing" or "sub"), for writing formulas."""
    topology = gw.directory.topology
    return sorted((m, topology.role_of(m)) for m in gw.directory.meters if gw.directory.owner_of_meter(m) == customer)


def _page(request: Request, gw: Gateway, v: UseCases, s: Session, p: Principal, customer: str, status: int = 200,
          form: str | None = None, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
          saved: str | None = None) -> HTMLResponse:
    centres = uc_alloc.cost_centres(s, customer)
    rules = uc_alloc.rules(s, customer)
    money = allowed(p.role, Capability.MONEY)
    budgets = Performance(v, s).budgets(customer)["budgets"] if money else []
    current = next((r for r in reversed(rules) if r.valid_to is None), rules[-1] if rules else None)
    return _render(request, gw, "cost_setup.html.j2", p, status=status, page="costs", centres=centres,
                   rules=list(reversed(rules)), current=current, rule_keys=RULES, kinds=KINDS, elements=ELEMENTS,
                   meters=_meters(gw, customer), budgets=budgets, money=money, form=form, errors=errors or {},
                   values=values or {}, saved=saved, **_nav(gw, customer))


def _done(customer: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"/portal/c/{customer}/setup?saved={what}#{what}", status_code=303)


class _Form:
    """One posted form: what re-showing the page with its errors needs."""

    def __init__(self, name: str, request: Request, gw: Gateway, v: UseCases, s: Session, p: Principal,
                 customer: str, raw: dict[str, str]) -> None:
        self.name, self.request, self.gw, self.v, self.s, self.p = name, request, gw, v, s, p
        self.customer, self.raw = customer, raw
        self.lang = _lang(request, p, gw)

    def again(self, errors: dict[str, str]) -> HTMLResponse:
        self.s.rollback()  # nothing half-done stays in the request's session
        return _page(self.request, self.gw, self.v, self.s, self.p, self.customer, status=422, form=self.name,
                     errors=errors, values=self.raw)

    def refused(self, exc: UseCaseError) -> HTMLResponse:
        return self.again(usecase_problem(exc, self.lang))


@router.get("/portal/c/{customer_id}/setup", dependencies=[needs(Capability.METERED_DATA)])
def setup_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, session: SessionDep,
               p: User, saved: Annotated[str, Query(pattern="^(|centres|rule|budgets)$")] = "") -> HTMLResponse:
    """Cost centres with their formula history, the rule's versions, budgets (money); forms where the role may."""
    return _page(request, gw, v, session, p, customer_id, saved=saved or None)


@router.post("/portal/c/{customer_id}/setup/centres",
             dependencies=[Csrf, needs(Capability.METERED_DATA), needs(Capability.CUSTOMER_FILE)])
def save_centre(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, session: SessionDep,
                actor: ActorDep, auth: AuthDep, p: User, raw: RawForm) -> Response:
    """Add a cost centre, or rename one (or change its kind): PUT .../cost-centres/{code}."""
    f = _Form("centre", request, gw, v, session, p, customer_id, raw)
    code = raw.get("code", "").strip()
    body, exc = _validated(CostCentreIn, {"name": raw.get("name", "").strip(), "kind": raw.get("kind", "")})
    errors = _problems(exc, f.lang) if exc is not None else {}
    if not re.match(CODE, code):
        errors["code"] = i18n.text("cs_err_code", f.lang)
    if errors:
        return f.again(errors)
    try:
        uc_alloc.put_cost_centre(session, customer_id, code, body)
    except UseCaseError as err:
        return f.refused(err)
    auth.audit(actor.username, "allocation.cost_centre", f"customer:{customer_id}", f"{code}: {body.model_dump_json()}",
               actor.client)
    return _done(customer_id, "centres")


@router.post("/portal/c/{customer_id}/setup/formulas",
             dependencies=[Csrf, needs(Capability.METERED_DATA), needs(Capability.CUSTOMER_FILE)])
def add_formula(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, session: SessionDep,
                actor: ActorDep, auth: AuthDep, p: User, raw: RawForm) -> Response:
    """A new version of a cost centre's formula from a day: POST .../cost-centres/{code}/formulas."""
    f = _Form("formula", request, gw, v, session, p, customer_id, raw)
    code = raw.get("code", "").strip()
    body, exc = _validated(FormulaIn, {"formula": raw.get("formula", "").strip(),
                                       "valid_from": raw.get("valid_from", "").strip()})
    errors = _problems(exc, f.lang) if exc is not None else {}
    if not re.match(CODE, code):
        errors["code"] = i18n.text("cs_err_centre_unknown", f.lang)
    if errors:
        return f.again(errors)
    try:
        uc_alloc.add_formula(v, session, customer_id, code, body)
    except UseCaseError as err:
        return f.refused(err)
    auth.audit(actor.username, "allocation.formula", f"customer:{customer_id}", f"{code}: {body.model_dump_json()}",
               actor.client)
    return _done(customer_id, "centres")


@router.post("/portal/c/{customer_id}/setup/rules",
             dependencies=[Csrf, needs(Capability.METERED_DATA), needs(Capability.CUSTOMER_FILE)])
def add_rule(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, session: SessionDep,
             actor: ActorDep, auth: AuthDep, p: User, raw: RawForm) -> Response:
    """A new rule version: POST .../allocation-rules. Shares (fractions of 1) are read for the fixed rule only."""
    f = _Form("rule", request, gw, v, session, p, customer_id, raw)
    rule = raw.get("rule", "")
    shares = {k.removeprefix("share."): x.strip() for k, x in raw.items()
              if k.startswith("share.") and x.strip()} if rule == "fixed" else {}
    if len(shares) > MAX_SHARES:
        return f.again({"shares": i18n.text("cs_err_share", f.lang)})
    elements = {k: raw[f"element.{k}"].strip() for k in ELEMENTS if raw.get(f"element.{k}", "").strip()}
    body, exc = _validated(RuleIn, {"rule": rule, "valid_from": raw.get("valid_from", "").strip(), "shares": shares,
                                    "company_code": raw.get("company_code", "").strip(), "cost_elements": elements})
    if exc is not None:
        return f.again(_problems(exc, f.lang))
    try:
        uc_alloc.add_rule(session, customer_id, body)
    except UseCaseError as err:
        return f.refused(err)
    auth.audit(actor.username, "allocation.rule", f"customer:{customer_id}", body.model_dump_json(), actor.client)
    return _done(customer_id, "rule")


@router.post("/portal/c/{customer_id}/setup/budgets",
             dependencies=[Csrf, needs(Capability.METERED_DATA), needs(Capability.MONEY)])
def save_budget(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, session: SessionDep,
                actor: ActorDep, auth: AuthDep, p: User, raw: RawForm) -> Response:
    """Set one month's budget of the account or a cost centre, or (`remove`) take it away; the others stay."""
    remove = raw.get("remove") == "1"
    f = _Form("budget_remove" if remove else "budget", request, gw, v, session, p, customer_id, raw)
    data = {"month": raw.get("month", "").strip(), "cost_centre": raw.get("cost_centre", "").strip() or None,
            "amount": "0" if remove else raw.get("amount", "").strip(),
            "currency": raw.get("currency", "").strip() or "CNY"}
    body, exc = _validated(BudgetIn, data)
    if exc is not None:
        return f.again(_problems(exc, f.lang))
    try:
        Performance(v, session).put_budget(actor.username, customer_id, body.month, body.cost_centre,
                                           None if remove else body.amount, body.currency)
    except UseCaseError as err:
        return f.refused(err)
    auth.audit(actor.username, "performance.budget", f"customer:{customer_id}",
               f"{'remove ' if remove else ''}{body.model_dump_json()}", actor.client)
    return _done(customer_id, "budgets")


__all__ = ["router", "usecase_problem"]
