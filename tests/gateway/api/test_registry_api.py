"""The registry API: create, change and retire every kind of row, the role rule, isolation, the audit, and months
billed by the contract version in force for each."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import tests.gateway.api.world as world_mod
from crm_bridge.services import ContractInputs
from crm_bridge.tariffs import load_tariff, month_bill
from gateway.runtime import Gateway
from gateway.usecases import UseCases
from tests.gateway.api.world import World, token_for

R = "/api/v1/registry"


def registry_app(gw: Gateway) -> FastAPI:
    """The gateway's app with the registry routers (gateway/web.py registers them in the product)."""
    from gateway.api.routers import registry, registry_file
    from gateway.web import create_app

    app = create_app(gw)
    app.include_router(registry.router)
    app.include_router(registry_file.router)
    return app


@pytest.fixture(scope="module")
def reg_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    saved = world_mod.HISTORY_DAYS
    world_mod.HISTORY_DAYS = 75  # the two months before this one have data, whatever today's date
    try:
        return world_mod.build_world(tmp_path_factory.mktemp("regworld"))
    finally:
        world_mod.HISTORY_DAYS = saved


@pytest.fixture(scope="module")
def api(reg_world: World) -> TestClient:
    return TestClient(registry_app(reg_world.gw))


@pytest.fixture(scope="module")
def as_(api: TestClient) -> dict[str, dict[str, str]]:
    return {u: token_for(api, u) for u in ("admin", "eng", "mgr-a", "mgr-b", "cust-acme")}


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:400]}"
    return r.json()


def _invalid(r: Any, where: str) -> str:
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    wheres = [d["where"] for d in err["detail"]] if isinstance(err["detail"], list) else [err["detail"]["where"]]
    assert where in wheres, (where, err)
    assert where in err["message"] or err["message"].startswith(wheres[0])
    return str(err["message"])


def _audited(reg_world: World, action: str, actor: str, target: str) -> None:
    from gateway.web import auth_service

    rows, _ = auth_service(reg_world.gw).audit_log(limit=500)
    assert any(e.action == f"registry.{action}" and e.actor == actor and e.target == target and e.at is not None
               for e in rows), f"no audit of {action} by {actor} on {target}"


def test_customers_are_created_changed_and_retired(api, as_, reg_world):
    made = _ok(api.post(f"{R}/customers", headers=as_["admin"],
                        json={"code": "delta", "name": "Delta Glass", "timezone": "Asia/Shanghai",
                              "industry": "glass", "manager": "am-b"}), 201)
    assert (made["code"], made["managers"], made["retired_on"]) == ("delta", ["am-b"], None)
    _audited(reg_world, "customer.create", "admin", "customer:delta")
    assert _ok(api.post(f"{R}/customers", headers=as_["admin"], json={"code": "delta", "name": "x"}), 409)
    _invalid(api.post(f"{R}/customers", headers=as_["admin"], json={"code": "e", "name": "E", "timezone": "Mars/Base"}),
             "body.timezone")
    _invalid(api.post(f"{R}/customers", headers=as_["admin"], json={"code": "bad code", "name": "E"}), "body.code")
    _invalid(api.post(f"{R}/customers", headers=as_["admin"], json={"code": "e", "name": "E", "colour": "red"}),
             "body.colour")

    changed = _ok(api.patch(f"{R}/customers/delta", headers=as_["mgr-b"], json={"annual_revenue": 1.5e8}))
    assert changed["annual_revenue"] == 1.5e8
    _audited(reg_world, "customer.update", "mgr-b", "customer:delta")
    assert _ok(api.get(f"{R}/customers/delta", headers=as_["mgr-b"]))["name"] == "Delta Glass"
    listed = _ok(api.get(f"{R}/customers", headers=as_["mgr-b"]))
    assert {c["code"] for c in listed["items"]} == {"beta", "delta"}
    retired = _ok(api.delete(f"{R}/customers/delta", headers=as_["mgr-b"], params={"on": "2026-12-31"}))
    assert retired["retired_on"] == "2026-12-31"
    _audited(reg_world, "customer.retire", "mgr-b", "customer:delta")


def test_a_manager_creates_its_own_accounts_and_cannot_touch_another_managers(api, as_):
    mine = _ok(api.post(f"{R}/customers", headers=as_["mgr-a"], json={"code": "epsilon", "name": "Epsilon Foods"}),
               201)
    assert mine["managers"] == ["am-a"]
    assert _ok(api.get(f"{R}/customers/epsilon", headers=as_["mgr-a"]))["code"] == "epsilon"
    refused = api.post(f"{R}/customers", headers=as_["mgr-a"], json={"code": "zeta", "name": "Z", "manager": "am-b"})
    assert refused.status_code == 403
    # Another manager's account is not there for mgr-a: every kind of route answers 404, the same as a wrong id.
    for method, path, body in (("get", "/customers/beta", None), ("patch", "/customers/beta", {"name": "x"}),
                               ("delete", "/customers/beta", None), ("get", "/sites/beta-site", None),
                               ("patch", "/sites/beta-site", {"name": "x"}), ("get", "/meters/beta-m1", None),
                               ("put", "/meters/beta-m1/site", {"site": "acme-site"}),
                               ("post", "/customers/beta/contracts", {"x": 1}),
                               ("get", "/customers/beta/equipment", None),
                               ("post", "/customers/beta/contacts", {"name": "x"})):
        r = api.request(method.upper(), f"{R}{path}", headers=as_["mgr-a"], json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert set(r.json()) == {"error"}
    # A meter of mgr-a's cannot be moved onto another manager's site either.
    r = api.put(f"{R}/meters/acme-m1/site", headers=as_["mgr-a"], json={"site": "beta-site"})
    assert r.status_code == 404
    assert r.json()["error"]["detail"] == {"where": "body.site"}


def test_other_roles_are_refused(api, as_):
    assert api.get(f"{R}/customers", headers=as_["cust-acme"]).status_code == 403
    assert api.get(f"{R}/customers/acme/contracts", headers=as_["cust-acme"]).status_code == 403
    assert api.post(f"{R}/customers", headers=as_["eng"], json={"code": "q", "name": "Q"}).status_code == 403
    assert api.post(f"{R}/managers", headers=as_["mgr-a"], json={"code": "am-x", "name": "X"}).status_code == 403
    assert api.get(f"{R}/customers").status_code == 401


def test_sites_and_meters_with_their_moves(api, as_, reg_world):
    site = _ok(api.post(f"{R}/customers/acme/sites", headers=as_["mgr-a"],
                        json={"code": "acme-east", "name": "East Works", "address": "1 Harbour Rd"}), 201)
    assert (site["customer"], site["name"]) == ("acme", "East Works")
    assert _ok(api.patch(f"{R}/sites/acme-east", headers=as_["mgr-a"], json={"address": "2 Harbour Rd"}))[
        "address"] == "2 Harbour Rd"
    assert _ok(api.get(f"{R}/customers/acme/sites", headers=as_["mgr-a"]))[0]["code"] in ("acme-east", "acme-site")
    assert api.post(f"{R}/customers/acme/sites", headers=as_["mgr-a"], json={"code": "beta-site"}).status_code == 409

    meter = _ok(api.post(f"{R}/sites/acme-east/meters", headers=as_["mgr-a"],
                         json={"code": "acme-m9", "description": "feeder 9", "valid_from": "2026-01-01"}), 201)
    assert (meter["site"], meter["customer"]) == ("acme-east", "acme")
    assert [m["code"] for m in _ok(api.get(f"{R}/sites/acme-east/meters", headers=as_["mgr-a"]))] == ["acme-m9"]
    moved = _ok(api.put(f"{R}/meters/acme-m9/site", headers=as_["mgr-a"],
                        json={"site": "acme-site", "valid_from": "2026-06-01"}))
    assert moved["site"] == "acme-site"
    assert [(a["site"], a["valid_from"], a["valid_to"]) for a in moved["assignments"]] == [
        ("acme-east", "2026-01-01", "2026-06-01"), ("acme-site", "2026-06-01", None)]
    _audited(reg_world, "meter.move", "mgr-a", "meter:acme-m9")
    _invalid(api.put(f"{R}/meters/acme-m9/site", headers=as_["mgr-a"],
                     json={"site": "acme-east", "valid_from": "2026-03-01"}), "body.valid_from")
    assert _ok(api.patch(f"{R}/meters/acme-m9", headers=as_["mgr-a"], json={"description": "F9"}))[
        "description"] == "F9"
    assert _ok(api.get(f"{R}/meters/acme-m9", headers=as_["mgr-a"]))["description"] == "F9"
    assert _ok(api.delete(f"{R}/sites/acme-east", headers=as_["mgr-a"]))["retired_on"] is not None
    assert api.delete(f"{R}/sites/acme-site", headers=as_["mgr-a"]).status_code == 409  # meters still there
    retired = _ok(api.delete(f"{R}/meters/acme-m9", headers=as_["mgr-a"], params={"on": "2026-07-01"}))
    assert (retired["site"], retired["retired_on"]) == (None, "2026-07-01")
    # A retired meter has no owner: only those who see every customer still find it.
    assert api.get(f"{R}/meters/acme-m9", headers=as_["mgr-a"]).status_code == 404
    assert _ok(api.get(f"{R}/meters/acme-m9", headers=as_["admin"]))["retired_on"] == "2026-07-01"


def test_account_managers_and_their_links(api, as_, reg_world):
    made = _ok(api.post(f"{R}/managers", headers=as_["admin"],
                        json={"code": "am-c", "name": "赵敏 Zhao Min", "email": "zhao@example.com"}), 201)
    assert made["customers"] == []
    _invalid(api.post(f"{R}/managers", headers=as_["admin"], json={"code": "am-d", "name": "D", "email": "nope"}),
             "body.email")
    assert _ok(api.patch(f"{R}/managers/am-c", headers=as_["admin"], json={"name": "Zhao Min"}))["name"] == "Zhao Min"
    links = _ok(api.put(f"{R}/customers/gamma/managers", headers=as_["admin"], json={"managers": ["am-a", "am-c"]}))
    assert links == {"customer": "gamma", "managers": ["am-a", "am-c"]}
    _audited(reg_world, "manager.links", "admin", "customer:gamma")
    assert _ok(api.get(f"{R}/managers/am-c", headers=as_["admin"]))["customers"] == ["gamma"]
    assert "am-c" in {m["code"] for m in _ok(api.get(f"{R}/managers", headers=as_["admin"]))["items"]}
    assert api.put(f"{R}/customers/gamma/managers", headers=as_["mgr-a"], json={"managers": []}).status_code == 403
    _invalid(api.put(f"{R}/customers/gamma/managers", headers=as_["admin"], json={"managers": ["no such"]}),
             "body.managers.0")
    assert api.put(f"{R}/customers/gamma/managers", headers=as_["admin"],
                   json={"managers": ["am-nobody"]}).status_code == 404
    retired = _ok(api.delete(f"{R}/managers/am-c", headers=as_["admin"]))
    assert retired["customers"] == []
    assert retired["retired_on"] is not None
    assert _ok(api.get(f"{R}/customers/gamma/managers", headers=as_["mgr-a"]))["managers"] == ["am-a"]


_TERMS = {"transformer_kva": 4000.0, "contract_demand_kw": 2500.0, "basic_charge_mode": "contract",
          "pf_standard": 0.9, "tariff_id": "guangdong-1-10kv"}


def test_contracts_have_versions_and_bad_terms_are_named(api, as_, reg_world):
    _invalid(api.post(f"{R}/customers/acme/contracts", headers=as_["mgr-a"],
                      json={**_TERMS, "tariff_id": "atlantis-2099", "valid_from": "2030-01-01"}), "body.tariff_id")
    message = _invalid(api.post(f"{R}/customers/acme/contracts", headers=as_["mgr-a"],
                                json={**_TERMS, "contract_demand_kw": 1000, "valid_from": "2030-01-01"}),
                       "body.contract_demand_kw")
    assert "below the floor of 1600 kW" in message
    _invalid(api.post(f"{R}/customers/acme/contracts", headers=as_["mgr-a"],
                      json={**_TERMS, "basic_charge_mode": "whatever", "valid_from": "2030-01-01"}),
             "body.basic_charge_mode")
    _invalid(api.post(f"{R}/customers/acme/contracts", headers=as_["mgr-a"], json=_TERMS), "body.valid_from")

    new = _ok(api.post(f"{R}/customers/acme/contracts", headers=as_["mgr-a"],
                       json={**_TERMS, "contract_demand_kw": 3000.0, "valid_from": "2030-01-01"}), 201)
    history = _ok(api.get(f"{R}/customers/acme/contracts", headers=as_["mgr-a"]))
    assert [(c["valid_from"], c["valid_to"]) for c in history][-2:] == [("2000-01-01", "2030-01-01"),
                                                                        ("2030-01-01", None)]
    _audited(reg_world, "contract.create", "mgr-a", "customer:acme")
    assert api.post(f"{R}/customers/acme/contracts", headers=as_["mgr-a"],
                    json={**_TERMS, "valid_from": "2029-01-01"}).status_code == 409
    fixed = _ok(api.patch(f"{R}/contracts/{new['id']}", headers=as_["mgr-a"], json={"bill_threshold": 900000.0}))
    assert fixed["bill_threshold"] == 900000.0
    _invalid(api.patch(f"{R}/contracts/{new['id']}", headers=as_["mgr-a"], json={"contract_demand_kw": 100.0}),
             "body.contract_demand_kw")
    assert _ok(api.get(f"{R}/contracts/{new['id']}", headers=as_["mgr-a"]))["contract_demand_kw"] == 3000.0
    ended = _ok(api.post(f"{R}/contracts/{new['id']}/end", headers=as_["mgr-a"], json={"valid_to": "2031-01-01"}))
    assert ended["valid_to"] == "2031-01-01"
    _invalid(api.post(f"{R}/contracts/{new['id']}/end", headers=as_["mgr-a"], json={"valid_to": "2020-01-01"}),
             "body.valid_to")
    assert api.get(f"{R}/contracts/{new['id']}", headers=as_["mgr-b"]).status_code == 404


def test_equipment_inspections_and_contacts(api, as_, reg_world):
    tx = _ok(api.post(f"{R}/customers/acme/equipment", headers=as_["mgr-a"],
                      json={"kind": "transformer", "name": "T1", "site": "acme-site", "rating": 2500,
                            "rating_unit": "kVA"}), 201)
    assert (tx["site"], tx["next_due"]) == ("acme-site", None)
    _invalid(api.post(f"{R}/customers/acme/equipment", headers=as_["mgr-a"], json={"kind": "motor", "name": "M",
                                                                                   "rating": -1}), "body.rating")
    _invalid(api.post(f"{R}/customers/acme/equipment", headers=as_["mgr-a"],
                      json={"kind": "motor", "name": "M", "site": "gamma-site"}), "body.site")
    insp = _ok(api.post(f"{R}/equipment/{tx['id']}/inspections", headers=as_["mgr-a"],
                        json={"on": "2026-05-04", "result": "defects", "findings": "oil leak at valve 2",
                              "next_due": "2026-11-04"}), 201)
    assert (insp["findings"], insp["next_due"]) == ("oil leak at valve 2", "2026-11-04")
    _invalid(api.post(f"{R}/equipment/{tx['id']}/inspections", headers=as_["mgr-a"],
                      json={"on": "2026-05-04", "next_due": "2026-05-01"}), "body.next_due")
    assert _ok(api.patch(f"{R}/inspections/{insp['id']}", headers=as_["mgr-a"], json={"result": "repaired"}))[
        "result"] == "repaired"
    _audited(reg_world, "inspection.update", "mgr-a", f"inspection:{insp['id']}")
    # Engineers read equipment and inspections, and change nothing.
    assert _ok(api.get(f"{R}/equipment/{tx['id']}", headers=as_["eng"]))["next_due"] == "2026-11-04"
    assert len(_ok(api.get(f"{R}/equipment/{tx['id']}/inspections", headers=as_["eng"]))) == 1
    assert [e["name"] for e in _ok(api.get(f"{R}/customers/acme/equipment", headers=as_["eng"]))] == ["T1"]
    assert api.patch(f"{R}/equipment/{tx['id']}", headers=as_["eng"], json={"name": "x"}).status_code == 403
    assert api.get(f"{R}/customers/acme/contacts", headers=as_["eng"]).status_code == 403
    assert api.get(f"{R}/equipment/{tx['id']}", headers=as_["mgr-b"]).status_code == 404
    assert api.patch(f"{R}/inspections/{insp['id']}", headers=as_["mgr-b"], json={}).status_code == 404
    assert _ok(api.patch(f"{R}/equipment/{tx['id']}", headers=as_["mgr-a"], json={"rating": 3150}))["rating"] == 3150
    assert _ok(api.delete(f"{R}/equipment/{tx['id']}", headers=as_["mgr-a"]))["retired_on"] is not None

    who = _ok(api.post(f"{R}/customers/acme/contacts", headers=as_["mgr-a"],
                       json={"name": "王工 Wang", "email": "wang@acme.example", "role": "chief electrician"}), 201)
    _invalid(api.post(f"{R}/customers/acme/contacts", headers=as_["mgr-a"], json={"name": ""}), "body.name")
    assert _ok(api.patch(f"{R}/contacts/{who['id']}", headers=as_["mgr-a"], json={"phone": "+86 20 1234 5678"}))[
        "phone"] == "+86 20 1234 5678"
    assert [c["name"] for c in _ok(api.get(f"{R}/customers/acme/contacts", headers=as_["mgr-a"]))] == ["王工 Wang"]
    assert api.delete(f"{R}/contacts/{who['id']}", headers=as_["mgr-b"]).status_code == 404
    assert _ok(api.delete(f"{R}/contacts/{who['id']}", headers=as_["mgr-a"]))["retired_on"] is not None
    _audited(reg_world, "contact.retire", "mgr-a", f"contact:{who['id']}")


def _month(tz: str, back: int) -> date:
    first = datetime.now(ZoneInfo(tz)).date().replace(day=1)
    for _ in range(back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def test_a_contract_change_bills_each_month_by_its_own_contract(api, as_, reg_world):
    """gamma's contract demand changes from the first of last month: the month before is billed by the old terms."""
    before, last = _month("Asia/Shanghai", 2), _month("Asia/Shanghai", 1)
    _ok(api.post(f"{R}/customers/gamma/contracts", headers=as_["admin"],
                 json={**_TERMS, "contract_demand_kw": 3600.0, "transformer_kva": 6300.0,
                       "valid_from": last.isoformat()}), 201)
    uc = UseCases(reg_world.gw)
    tariff = load_tariff("guangdong-1-10kv")
    terms = {before: (4000.0, 2500.0), last: (6300.0, 3600.0)}
    for month in terms:
        frame, tz = uc.month_frame("gamma", month)
        _, bill = uc.month_bill("gamma", month)
        assert bill is not None
        own, other = (ContractInputs(**{**_TERMS, "transformer_kva": k, "contract_demand_kw": d, "timezone": str(tz)})
                      for k, d in (terms[month], terms[last if month == before else before]))
        assert bill.basic_charge == pytest.approx(month_bill(frame, own, tariff, month, tz=tz).basic_charge)
        assert bill.total == pytest.approx(month_bill(frame, own, tariff, month, tz=tz).total)
        # The other version's terms would give another bill: the test sees which contract billed the month.
        assert bill.basic_charge != pytest.approx(month_bill(frame, other, tariff, month, tz=tz).basic_charge)
