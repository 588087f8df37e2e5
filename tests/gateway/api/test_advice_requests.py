"""A piece of advice turned into a request through the API: once, linked both ways, only by the desk, only one's own.

The world's customers have a contract and ten days of history, so their advice (from the advice month) has items.
"""

from __future__ import annotations

import re

from gateway.portal.i18n import advice_title
from tests.gateway.api.world import token_for


def _advice(client, headers, customer: str) -> dict[str, dict]:
    r = client.get(f"/api/v1/customers/{customer}/advice", headers=headers)
    assert r.status_code == 200, r.text
    items = {a["kind"]: a for a in r.json()}
    assert items, f"the world's advice for {customer} has items"
    return items


def test_advice_becomes_one_request_carrying_its_key_title_and_money(client, world):
    mgr = token_for(client, "mgr-b")
    items = _advice(client, mgr, "beta")
    key, item = next(iter(items.items()))
    r = client.post(f"/api/v1/customers/beta/advice/{key}/request", headers=mgr)
    assert r.status_code == 201, r.text
    body = r.json()
    link, ticket = body["advice"], body["ticket"]
    assert (link["advice_key"], link["customer"], link["title"]) == (key, "beta", item["title"])
    assert link["money_per_month"] == item["money_per_month"]
    assert link["currency"] == item["currency"]
    assert link["text_key"].startswith("advice_"), "kept as a message key and values, for each reader's language"
    assert link["ticket_id"] == ticket["id"]
    assert (ticket["customer"], ticket["category"], ticket["kind"]) == ("beta", "advice", "request")
    assert ticket["title"] == advice_title(link, "en"), "beta reads English: the title in the account's language"
    assert ticket["owner"] == "am-b", "the account's manager owns it"

    again = client.post(f"/api/v1/customers/beta/advice/{key}/request", headers=mgr)
    assert again.status_code == 409, again.text
    assert f"already has request {ticket['id']}" in again.json()["error"]["message"]

    cust = token_for(client, "cust-beta")
    seen = client.get(f"/api/v1/tickets/{ticket['id']}", headers=cust)
    assert seen.status_code == 200, "the customer follows the request like any other"
    assert seen.json()["title"] == ticket["title"]


def test_unknown_advice_is_404(client, world):
    mgr = token_for(client, "mgr-a")
    r = client.post("/api/v1/customers/acme/advice/no_such_advice/request", headers=mgr)
    assert r.status_code == 404, r.text
    assert set(r.json()) == {"error"}
    r = client.post("/api/v1/customers/acme/advice/Not-A-Key!/request", headers=mgr)
    assert r.status_code in (404, 422), "a key outside [a-z0-9_] is refused"


def test_another_customers_advice_is_404(client, world):
    """Isolation: the same answer as for an account that does not exist, for every role that could ask."""
    mgr_a, mgr_b = token_for(client, "mgr-a"), token_for(client, "mgr-b")
    key = next(iter(_advice(client, mgr_b, "beta")))
    for headers, customer in ((mgr_a, "beta"), (mgr_b, "acme"), (mgr_b, "gamma"), (mgr_a, "nobody")):
        r = client.post(f"/api/v1/customers/{customer}/advice/{key}/request", headers=headers)
        assert r.status_code == 404, (customer, r.text)
        assert set(r.json()) == {"error"}


def test_the_role_rule_is_the_alerts_one(client, world):
    """As with opening a request for an alert: the desk (managers, admins) may; customers and engineers may not."""
    admin = token_for(client, "admin")
    key = next(iter(_advice(client, admin, "gamma")))
    for username in ("cust-gamma", "eng"):
        r = client.post(f"/api/v1/customers/gamma/advice/{key}/request", headers=token_for(client, username))
        assert r.status_code == 403, (username, r.text)
    r = client.post(f"/api/v1/customers/gamma/advice/{key}/request", headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["ticket"]["owner"] == "am-a"
    title = r.json()["ticket"]["title"]
    assert title != r.json()["advice"]["title"], "gamma reads Chinese: the title in the account's language"
    assert re.search(r"[\u4e00-\u9fff]", title), title


def test_the_route_is_typed_in_the_openapi(client):
    op = client.app.openapi()["paths"]["/api/v1/customers/{customer_id}/advice/{key}/request"]["post"]
    assert op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("AdviceRequestPublic")
