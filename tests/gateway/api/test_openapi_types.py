"""The OpenAPI spec types every API operation: a response schema for its success, a Page for lists, ErrorBody on errors.

The test walks /openapi.json, so a route added later without a response model fails here without editing this file.
"""

from __future__ import annotations

from typing import Any

import pytest

API = "/api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
ERROR_STATUSES = ("401", "403", "404", "422", "424", "429")


@pytest.fixture(scope="module")
def spec(client) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in spec["paths"].items() if path.startswith(API)
            for method, op in item.items() if method in METHODS]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return schema


def _is_typed(spec: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Whether a schema says what the value is: not `{}`, not a bare `dict[str, Any]` object, not a list of those."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema or "oneOf" in schema:
        branches = [b for b in schema.get("anyOf", schema.get("oneOf", [])) if b.get("type") != "null"]
        return bool(branches) and all(_is_typed(spec, b) for b in branches)
    kind = schema.get("type")
    if kind == "object":
        return bool(schema.get("properties"))
    if kind == "array":
        return _is_typed(spec, schema.get("items", {}))
    return kind in {"string", "integer", "number", "boolean"} or "enum" in schema


def _success(op: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    codes = sorted(c for c in op["responses"] if c.startswith("2"))
    assert codes, "no success response documented"
    return codes[0], op["responses"][codes[0]]


def test_the_spec_has_every_api_operation(spec):
    assert len(_operations(spec)) >= 40


def test_every_operation_has_a_response_schema_for_its_success(spec):
    untyped = []
    for method, path, op in _operations(spec):
        status, response = _success(op)
        content = response.get("content", {})
        if not content or not all(_is_typed(spec, media.get("schema", {})) for media in content.values()):
            untyped.append(f"{method} {path} {status}: {content or 'no content'}")
    assert not untyped, "operations without a response schema:\n" + "\n".join(untyped)


def _pages(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Operations that take `limit` and `offset`: the lists."""
    out = []
    for method, path, op in _operations(spec):
        names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        if {"limit", "offset"} <= names:
            out.append((method, path, op))
    return out


def test_list_operations_return_a_page(spec):
    lists = _pages(spec)
    assert len(lists) >= 9, [f"{m} {p}" for m, p, _ in lists]
    wrong = []
    for method, path, op in lists:
        _, response = _success(op)
        page = _resolve(spec, response["content"]["application/json"]["schema"])
        props = page.get("properties", {})
        items = _resolve(spec, props.get("items", {}).get("items", {}))
        if (set(page.get("required", [])) != {"items", "total", "limit", "offset"}
                or props["items"].get("type") != "array" or not _is_typed(spec, items)
                or any(props[k].get("type") != "integer" for k in ("total", "limit", "offset"))):
            wrong.append(f"{method} {path}: {page}")
    assert not wrong, "lists that do not return a typed Page:\n" + "\n".join(wrong)


def test_documented_errors_are_the_one_error_body(spec):
    body = spec["components"]["schemas"].get("ErrorBody")
    assert body is not None, "no ErrorBody schema in the spec"
    assert body["required"] == ["error"]
    error = _resolve(spec, body["properties"]["error"])
    assert {"code", "message"} <= set(error["required"])
    assert "detail" in error["properties"]
    wrong = []
    for method, path, op in _operations(spec):
        for status in ERROR_STATUSES:
            if status in op["responses"]:
                schema = op["responses"][status].get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") != "#/components/schemas/ErrorBody":
                    wrong.append(f"{method} {path} {status}: {schema}")
        if not {"401", "403", "404", "422"} <= set(op["responses"]):
            wrong.append(f"{method} {path}: documents {sorted(op['responses'])}")
    assert not wrong, "error responses that are not ErrorBody:\n" + "\n".join(wrong)
    token = spec["paths"]["/api/v1/auth/token"]["post"]["responses"]
    probe = spec["paths"]["/api/v1/devices/probe"]["post"]["responses"]
    assert "429" in token
    assert "424" in probe


@pytest.mark.parametrize(("path", "method"), [
    ("/api/v1/customers/{customer_id}/day-curve", "get"),
    ("/api/v1/customers/{customer_id}/month", "get"),
    ("/api/v1/customers/{customer_id}/series", "get"),
    ("/api/v1/auth/token", "post"),
])
def test_main_routes_show_an_example(spec, path, method):
    _, response = _success(spec["paths"][path][method])
    media = response["content"]["application/json"]
    schema = _resolve(spec, media["schema"])
    examples = schema.get("examples") or list(media.get("examples", {}).values())
    assert examples, f"{method.upper()} {path}: no example"
    assert set(schema.get("required", [])) <= set(examples[0]), "the example lacks required fields"


def test_series_rows_carry_the_status_and_the_counts(spec):
    _, response = _success(spec["paths"]["/api/v1/customers/{customer_id}/series"]["get"])
    series = _resolve(spec, response["content"]["application/json"]["schema"])
    row = _resolve(spec, series["properties"]["intervals"]["items"])
    assert {"start", "status", "missing", "measured_intervals", "estimated_intervals", "missing_intervals",
            "pending_intervals"} <= set(row["properties"])


def _real_calls(world) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(user, spec path, url, query) of the routes that carry data in the test world: the fuzz mostly gets 404s."""
    day, month = world.today["acme"], world.today["acme"][:7]
    c = "/api/v1/customers/{customer_id}"
    return [
        ("cust-acme", c + "/day-curve", "/api/v1/customers/acme/day-curve", {"date": day}),
        ("cust-acme", c + "/month", "/api/v1/customers/acme/month", {"month": month}),
        ("eng", c + "/month", "/api/v1/customers/acme/month", {"month": month}),
        ("cust-acme", c + "/series", "/api/v1/customers/acme/series", {"start": day, "end": day, "freq": "15min"}),
        ("cust-acme", "/api/v1/sites/{site_id}/series", "/api/v1/sites/acme-site/series", {"start": day, "end": day}),
        ("cust-acme", "/api/v1/meters/{meter_id}/series", "/api/v1/meters/acme-m1/series",
         {"start": day, "end": day, "freq": "1d"}),
        ("cust-acme", c + "/services", "/api/v1/customers/acme/services", {"month": month}),
        ("cust-acme", c + "/advice", "/api/v1/customers/acme/advice", {}),
        ("cust-acme", c + "/contract", "/api/v1/customers/acme/contract", {}),
        ("cust-acme", "/api/v1/alerts", "/api/v1/alerts", {}),
        ("admin", c + "/file", "/api/v1/customers/acme/file", {}),
        ("admin", "/api/v1/portfolio", "/api/v1/portfolio", {}),
        ("admin", "/api/v1/devices", "/api/v1/devices", {}),
        ("admin", "/api/v1/devices/{device}/points", "/api/v1/devices/acme-dev/points", {}),
        ("admin", "/api/v1/devices/health", "/api/v1/devices/health", {}),
        ("admin", "/api/v1/tariffs/{tariff_id}", "/api/v1/tariffs/guangdong-1-10kv", {}),
        ("admin", "/api/v1/users", "/api/v1/users", {}),
        ("admin", "/api/v1/audit", "/api/v1/audit", {}),
        ("admin", "/api/v1/auth/me", "/api/v1/auth/me", {}),
    ]


def test_real_answers_match_their_documented_schemas(client, world):
    import schemathesis
    from schemathesis.checks import response_schema_conformance

    from tests.gateway.api.world import token_for

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    for user, path, url, query in _real_calls(world):
        response = client.get(url, params=query, headers=token_for(client, user))
        assert response.status_code == 200, f"{user} {url}: {response.status_code} {response.text[:300]}"
        assert response.json(), f"{user} {url}: empty"
        schema[path]["GET"].Case().validate_response(response, checks=[response_schema_conformance])


def test_the_examples_are_valid_answers():
    from pydantic import BaseModel

    from gateway.api.errors import ErrorBody
    from gateway.api.schemas import figures, users

    models: list[type[BaseModel]] = [figures.DayCurve, figures.MonthView, figures.CustomerSeries, figures.SiteSeries,
                                     figures.MeterSeries, users.TokenPublic, ErrorBody]
    for model in models:
        examples = model.model_json_schema()["examples"]
        assert examples, model.__name__
        for example in examples:
            assert model.model_validate(example).model_dump(mode="json", by_alias=True) == example, model.__name__
