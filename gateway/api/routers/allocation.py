"""Cost allocation: a customer's cost centres, their virtual meters and rule, and the month bill split over them."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from gateway.api.deps import UseCasesDep, get_auth
from gateway.api.roles import Capability, needs
from gateway.api.scope import ActorDep, CustomerId, SessionDep
from gateway.auth import AuthService
from gateway.usecases import allocation as uc_alloc
from gateway.usecases import parse_month
from gateway.usecases.allocation import (
    CODE,
    AllocationPublic,
    CostCentreIn,
    CostCentrePublic,
    FormulaIn,
    RuleIn,
    RulePublic,
)
from gateway.usecases.figures import customer_config

router = APIRouter(prefix="/api/v1/customers", tags=["allocation"], dependencies=[needs(Capability.METERED_DATA)])
Code = Annotated[str, Path(pattern=CODE, description="The customer's cost-centre code")]
AuthDep = Annotated[AuthService, Depends(get_auth)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/{customer_id}/cost-centres")
def list_cost_centres(customer_id: CustomerId, session: SessionDep) -> list[CostCentrePublic]:
    """The customer's sites, lines and cost centres, each with every version of its formula."""
    return uc_alloc.cost_centres(session, customer_id)


@router.put("/{customer_id}/cost-centres/{code}", dependencies=[needs(Capability.CUSTOMER_FILE)],
            responses={201: {"model": CostCentrePublic, "description": "Created"}})
def put_cost_centre(customer_id: CustomerId, code: Code, body: CostCentreIn, session: SessionDep,
                    actor: ActorDep, auth: AuthDep, response: Response) -> CostCentrePublic:
    """Create (201) or rename (200) a cost centre."""
    out, created = uc_alloc.put_cost_centre(session, customer_id, code, body)
    auth.audit(actor.username, "allocation.cost_centre", f"customer:{customer_id}", f"{code}: {body.model_dump_json()}",
               actor.client)
    response.status_code = 201 if created else 200
    return out


@router.post("/{customer_id}/cost-centres/{code}/formulas", status_code=201,
             dependencies=[needs(Capability.CUSTOMER_FILE)])
def add_formula(customer_id: CustomerId, code: Code, body: FormulaIn, v: UseCasesDep, session: SessionDep,
                actor: ActorDep, auth: AuthDep) -> CostCentrePublic:
    """A new version of the cost centre's virtual meter (e.g. `main - sub1 - sub2`) from `valid_from`.

    Every meter must be one of the customer's; the version open then is closed on `valid_from` (409 for a version
    that does not follow the newest one).
    """
    out = uc_alloc.add_formula(v, session, customer_id, code, body)
    auth.audit(actor.username, "allocation.formula", f"customer:{customer_id}", f"{code}: {body.model_dump_json()}",
               actor.client)
    return out


@router.get("/{customer_id}/allocation-rules")
def list_rules(customer_id: CustomerId, session: SessionDep) -> list[RulePublic]:
    """Every version of the customer's sharing rule."""
    return uc_alloc.rules(session, customer_id)


@router.post("/{customer_id}/allocation-rules", status_code=201, dependencies=[needs(Capability.CUSTOMER_FILE)])
def add_rule(customer_id: CustomerId, body: RuleIn, session: SessionDep, actor: ActorDep,
             auth: AuthDep) -> RulePublic:
    """A new version of how basic charge and PF adjustment are shared: kwh, coincident_peak or fixed shares."""
    out = uc_alloc.add_rule(session, customer_id, body)
    auth.audit(actor.username, "allocation.rule", f"customer:{customer_id}", body.model_dump_json(), actor.client)
    return out


@router.get("/{customer_id}/allocation", dependencies=[needs(Capability.MONEY)], response_model=AllocationPublic,
            responses={200: {"description": "JSON, or the SAP CO upload file (Content-Disposition: attachment)",
                             "content": {"text/csv": {"schema": {"type": "string"}},
                                         XLSX: {"schema": {"type": "string", "format": "binary"}}}}})
def get_allocation(customer_id: CustomerId, v: UseCasesDep,
                   month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
                   fmt: Annotated[Literal["json", "csv", "xlsx"], Query(alias="format")] = "json",
                   lang: Annotated[Literal["zh", "en"] | None,
                                   Query(description="the export's text; default the customer's language")] = None,
                   sep: Annotated[Literal["comma", "semicolon"], Query(description="CSV separator")] = "comma",
                   ) -> AllocationPublic | Response:
    """The month bill split over the customer's cost centres and the unmetered-and-losses line.

    Energy by TOU band at each interval's price; basic charge and PF adjustment by the rule (shown with its shares);
    amounts are decimal strings that add up to the month bill's total to the cent. Cost centres whose meters lack
    data name the meter and intervals under `missing`. `format=csv|xlsx`: the SAP CO upload layout.
    """
    c = customer_config(v.gw, customer_id)
    first = parse_month(month, ZoneInfo(c.timezone))
    result = uc_alloc.allocation(v, customer_id, first)
    if fmt == "json":
        return result
    language = lang or c.language
    name = f"{customer_id}_allocation_{first:%Y-%m}"
    if fmt == "csv":
        return Response(uc_alloc.to_csv(result, language, ";" if sep == "semicolon" else ","),
                        media_type="text/csv; charset=utf-8; header=present",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Response(uc_alloc.to_xlsx(result, language), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
