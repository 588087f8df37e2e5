"""Isolation: every id-taking route of the OpenAPI spec, for every role, with an id the caller does not own.

The test walks the spec, so a route added later is covered without editing this file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.gateway.api.world import CUSTOMERS, MANAGERS, World, token_for

ID_PARAMS = {"customer_id", "site_id", "meter_id", "alert_id", "ticket_id", "device"}


def _owned(world: World, username: str) -> set[str]:
    info = world.logins[username]
    if info["role"] in ("admin", "engineer"):
        return set(CUSTOMERS)
    if info["role"] == "customer":
        return {info["customer"]}
    return set(MANAGERS[info["manager"]])


def _ids(world: World, customer: str) -> dict[str, str]:
    return {"customer_id": customer, "site_id": f"{customer}-site", "meter_id": f"{customer}-m1",
            "alert_id": str(world.alerts[customer]), "ticket_id": str(world.tickets[customer]),
            "device": f"{customer}-dev", "key": "load_shift", "code": "CC-1"}


def _query(op: dict[str, Any], world: World, customer: str) -> dict[str, str]:
    """Valid values for the required query parameters, so that only ownership decides the answer."""
    out = {}
    for p in op.get("parameters", []):
        if p["in"] != "query" or not p.get("required"):
            continue
        schema = p.get("schema", {})
        pattern = schema.get("pattern", "")
        if r"\d{4}-\d{2}-\d{2}" in pattern:
            out[p["name"]] = world.today[customer]
        elif r"\d{4}-\d{2}$" in pattern:
            out[p["name"]] = world.today[customer][:7]
        else:
            out[p["name"]] = "1"
    return out


def _body(op: dict[str, Any], customer: str) -> dict[str, Any] | None:
    if "requestBody" not in op:
        return None
    return {"customer": customer, "kind": "request", "category": "billing", "title": "x", "to": "closed",
            "satisfaction": 5}


def _routes(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], set[str]]]:
    out = []
    for path, methods in spec["paths"].items():
        params = set(re.findall(r"{(\w+)}", path))
        if params & ID_PARAMS:
            for method, op in methods.items():
                out.append((path, method, op, params))
    return out


def test_the_spec_has_id_routes_of_every_kind(client):
    routes = _routes(client.app.openapi())
    kinds = set().union(*(r[3] for r in routes))
    assert ID_PARAMS <= kinds, f"no route takes {ID_PARAMS - kinds}"
    assert len(routes) >= 20


@pytest.mark.parametrize("username", ["eng", "mgr-a", "mgr-b", "cust-acme", "cust-beta", "cust-gamma"])
def test_no_role_gets_data_of_an_id_it_does_not_own(client, world, username):
    headers = token_for(client, username)
    owned = _owned(world, username)
    foreign = [c for c in CUSTOMERS if c not in owned]
    checked = 0
    for path, method, op, _params in _routes(client.app.openapi()):
        for customer in foreign:
            url = path
            for name, value in _ids(world, customer).items():
                url = url.replace("{" + name + "}", value)
            assert "{" not in url, f"{path}: a path parameter this test does not know"
            r = client.request(method.upper(), url, headers=headers, params=_query(op, world, customer),
                               json=_body(op, customer))
            assert r.status_code in (403, 404), f"{username} {method.upper()} {url} -> {r.status_code}: {r.text[:300]}"
            assert set(r.json()) == {"error"}, f"{username} {url} answered more than an error body"
            checked += 1
    if foreign:
        assert checked > 0


@pytest.mark.parametrize("username", ["mgr-a", "cust-acme", "cust-beta"])
def test_own_ids_are_served(client, world, username):
    """The positive control: the same walk with owned ids is not refused for data routes."""
    from datetime import date

    from sqlalchemy import delete

    from crm_bridge.registry.allocation_models import CostCentre
    from gateway.usecases import allocation as uc_alloc

    headers = token_for(client, username)
    customer = sorted(_owned(world, username))[0]
    ids = _ids(world, customer)
    with world.gw.db() as s:  # the cost centre the walk names, for this test only (the world is shared)
        made = all(c.code != ids["code"] for c in uc_alloc.cost_centres(s, customer))
        if made:
            uc_alloc.put_cost_centre(s, customer, ids["code"], uc_alloc.CostCentreIn(name="walk", kind="line"))
            uc_alloc.add_formula(client.app.state.usecases, s, customer, ids["code"],
                                 uc_alloc.FormulaIn(formula=ids["meter_id"], valid_from=date(2020, 1, 1)))
    served = 0
    try:
        for path, method, op, _ in _routes(client.app.openapi()):
            if method != "get" or "{device}" in path:
                continue
            url = path
            for name, value in ids.items():
                url = url.replace("{" + name + "}", value)
            r = client.get(url, headers=headers, params=_query(op, world, customer))
            if r.status_code == 403:
                continue  # a route this role may not use at all
            assert r.status_code == 200, f"{username} GET {url} -> {r.status_code}: {r.text[:300]}"
            served += 1
    finally:
        if made:
            with world.gw.db() as s:
                s.execute(delete(CostCentre).where(CostCentre.code == ids["code"]))
                s.commit()
    assert served >= 10


def test_manager_lists_hold_only_their_accounts(client, world):
    headers = token_for(client, "mgr-b")
    for path in ("/api/v1/customers", "/api/v1/sites", "/api/v1/meters", "/api/v1/alerts", "/api/v1/tickets",
                 "/api/v1/portfolio"):
        items = client.get(path, headers=headers).json()["items"]
        assert items, path
        for item in items:
            assert item.get("customer", item.get("id")) == "beta", (path, item)
