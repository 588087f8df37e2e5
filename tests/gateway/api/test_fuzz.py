"""Schemathesis over the whole OpenAPI spec, as an admin and as a customer: no request makes the gateway answer 5xx.

Every operation gets schema-valid (positive) and schema-breaking (negative) requests; every 4xx must carry the
standard error body, and every answer must match the response schema the spec documents for its status (the response
models for 2xx, ErrorBody for the documented errors).

The device tools are fuzzed too: POST /api/v1/devices/probe and GET /api/v1/devices/opcua/browse open connections to
whatever host the request names, so during this test every connection the gateway opens is redirected to 127.0.0.1
on a port that is bound but never listening (refused at once, no timeout to wait for), after the host and port were
checked as a real connection checks them (encoding, range) but without a look-up; and resolving any name but
loopback fails the test. A generated host is thus either refused by validation (422, no connection tried) or, when
it passes validation, answered from the closed loopback port (424): no traffic leaves the machine. The device tools
get more examples than the other routes: their inputs are free text.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance

from tests.gateway.api.world import token_for

DEVICE_TOOLS = re.compile(r"^/api/v1/devices/(probe|opcua/browse)$")
EXAMPLES, DEVICE_EXAMPLES = 10, 100
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class Loopback:
    """What the gateway tried to reach while the fuzz ran."""

    def __init__(self) -> None:
        self.connects: list[tuple[Any, Any]] = []  # (host, port) asked for; all went to the closed port
        self.resolved: list[Any] = []  # names other than loopback something tried to resolve


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    seen = Loopback()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
    closed_port = closed.getsockname()[1]
    create_connection = asyncio.base_events.BaseEventLoop.create_connection
    getaddrinfo = socket.getaddrinfo

    async def to_closed_port(self: asyncio.AbstractEventLoop, protocol_factory: Any, host: Any = None,
                             port: Any = None, **kwargs: Any) -> Any:
        seen.connects.append((host, port))
        if host is None and port is None:
            return await create_connection(self, protocol_factory, host, port, **kwargs)  # fails as it would
        try:
            # Host and port checked as the real connection would (encoding, range), but never looked up.
            getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            pass  # a name rather than an address: fine, it is not resolved
        return await create_connection(self, protocol_factory, "127.0.0.1", closed_port, **kwargs)

    def loopback_names_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK:
            seen.resolved.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r}: no name resolution in the fuzz test")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", to_closed_port)
    monkeypatch.setattr(socket, "getaddrinfo", loopback_names_only)
    try:
        yield seen
    finally:
        closed.close()


def test_no_5xx_over_the_whole_spec(client, loopback_only):
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    all_headers = [token_for(client, user) for user in ("admin", "cust-acme")]
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 30
    assert sum(bool(DEVICE_TOOLS.match(op.path)) for op in operations) == 2
    calls = 0
    for op in operations:
        examples = DEVICE_EXAMPLES if DEVICE_TOOLS.match(op.path) else EXAMPLES
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(mode))
            @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)
            def run(case: schemathesis.Case) -> None:
                nonlocal calls
                for headers in all_headers:
                    response = case.call(headers={**(case.headers or {}), **headers})
                    calls += 1
                    assert response.status_code < 500, (
                        f"{case.method} {case.formatted_path} {case.query} {case.body!r}: {response.status_code} "
                        f"{response.text[:300]}")
                    if response.status_code >= 400:
                        assert "error" in response.json(), f"{case.method} {case.formatted_path}: not the error body"
                    case.validate_response(response, checks=[response_schema_conformance])

            try:
                run()
            except Unsatisfiable:
                # An operation with nothing to break (no parameters, no body) has no negative requests.
                assert mode is GenerationMode.NEGATIVE, f"{op.method} {op.path}: no valid request can be generated"
    assert calls >= 4 * len(operations)
    assert not loopback_only.resolved, f"names resolved during the fuzz: {loopback_only.resolved[:5]}"
    # Some generated hosts pass validation: the path that opens a connection was fuzzed too, on loopback only.
    assert loopback_only.connects, "no generated host passed validation: raise DEVICE_EXAMPLES"
