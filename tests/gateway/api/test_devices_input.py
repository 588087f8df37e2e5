"""Bad input to the device tools (Modbus probe, OPC UA browse) is a 4xx with the error body, never a 500.

Invalid input is 422 naming the field and opens no connection (every connection attempt is recorded and refused
here, so nothing leaves the machine); a valid request whose device cannot be reached is 424.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.device_input import InvalidInput, check_host, parse_opcua_url, parse_target
from tests.gateway.api.world import token_for

PROBE = "/api/v1/devices/probe"
BROWSE = "/api/v1/devices/opcua/browse"


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Every connection the gateway tries, refused at once without touching the network."""
    tried: list[tuple[Any, Any]] = []

    async def refuse(self: Any, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        tried.append((host, port))
        raise ConnectionRefusedError(111, f"Connect call failed ({host!r}, {port!r})")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", refuse)
    return tried


@pytest.fixture(scope="module")
def eng(client) -> dict[str, str]:
    return token_for(client, "eng")


def _error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert {"code", "message", "detail"} <= set(body["error"])
    return body["error"]


LONG_HOST = "a" * 253
BAD_PROBES = [
    pytest.param({"host": LONG_HOST}, "body.host", "63", id="253-char-host"),
    pytest.param({"host": "a" * 254}, "body.host", "253", id="254-char-host"),
    pytest.param({"host": ".".join(["a" * 63] * 4)}, "body.host", "253", id="255-char-name"),
    pytest.param({"host": "\x80"}, "body.host", "internationalised", id="non-ascii-control"),
    pytest.param({"host": "é" * 64}, "body.host", "internationalised", id="non-ascii-label-too-long"),
    pytest.param({"host": "\x00"}, "body.host", "letters, digits", id="nul"),
    pytest.param({"host": ""}, "body.host", "", id="empty"),
    pytest.param({"host": "a..b"}, "body.host", "empty label", id="empty-label"),
    pytest.param({"host": "-meter"}, "body.host", "'-'", id="leading-hyphen"),
    pytest.param({"host": "a b"}, "body.host", "letters, digits", id="space"),
    pytest.param({"host": "1.2.3"}, "body.host", "IPv4", id="short-ipv4"),
    pytest.param({"host": "999.1.1.1"}, "body.host", "IPv4", id="bad-ipv4"),
    pytest.param({"host": "10.0.0.5:502"}, "body.host", "port goes in its own field", id="port-in-host"),
    pytest.param({"host": "fe80::1%a b"}, "body.host", "zone", id="bad-ipv6-zone"),
    pytest.param({"host": "1:2:3:4:5:6:7:8:9"}, "body.host", "IPv6", id="bad-ipv6"),
    pytest.param({"host": 502}, "body.host", "string", id="host-not-text"),
    pytest.param({"host": "127.0.0.1", "port": 0}, "body.port", "", id="port-0"),
    pytest.param({"host": "127.0.0.1", "port": 70000}, "body.port", "", id="port-70000"),
    pytest.param({"host": "127.0.0.1", "port": -1}, "body.port", "", id="port-negative"),
    pytest.param({"host": "127.0.0.1", "port": "x"}, "body.port", "", id="port-text"),
    pytest.param({"host": "127.0.0.1", "unit": 256}, "body.unit", "", id="unit-256"),
    pytest.param({"host": "127.0.0.1", "unit": -1}, "body.unit", "", id="unit-negative"),
    pytest.param({"host": "127.0.0.1", "address": -1}, "body.address", "", id="address-negative"),
    pytest.param({"host": "127.0.0.1", "address": 65536}, "body.address", "", id="address-65536"),
    pytest.param({"host": "127.0.0.1", "count": 0}, "body.count", "", id="count-0"),
    pytest.param({"host": "127.0.0.1", "count": 126}, "body.count", "", id="count-126"),
    pytest.param({"host": "127.0.0.1", "address": 65530, "count": 10}, "body.count", "65535", id="past-last-register"),
    pytest.param({"host": "127.0.0.1", "function": 6}, "body.function", "", id="function-6"),
    pytest.param({"host": "127.0.0.1", "timeout_s": 0}, "body.timeout_s", "", id="timeout-0"),
    pytest.param({"host": "127.0.0.1", "timeout_s": 11}, "body.timeout_s", "", id="timeout-11"),
    pytest.param({"host": "127.0.0.1", "colour": "red"}, "body.colour", "", id="unknown-option"),
    pytest.param({"port": 502}, "body.host", "", id="no-host"),
]


@pytest.mark.parametrize(("body", "where", "reason"), BAD_PROBES)
def test_bad_probe_input_is_422_naming_the_field_and_connects_nowhere(client, eng, connects, body, where, reason):
    err = _error(client.post(PROBE, headers=eng, json=body), 422)
    assert err["code"] == "invalid_request"
    assert err["message"].startswith(f"{where}: "), err["message"]
    assert reason in err["message"]
    assert len(err["message"]) < 400, "long input is cut in the message"
    assert err["detail"][0]["where"] == where
    assert connects == []


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"127.0.0.1"', b"{", b'{"host": "127.0.0.1", "timeout_s": NaN}'])
def test_a_body_that_is_no_probe_object_is_a_4xx(client, eng, connects, raw):
    r = client.post(PROBE, headers={**eng, "Content-Type": "application/json"}, content=raw)
    assert 400 <= r.status_code < 500, r.text
    assert "error" in r.json()
    assert connects == []


def test_unreachable_device_is_424_device_unreachable(client, eng, connects):
    err = _error(client.post(PROBE, headers=eng, json={"host": "127.0.0.1", "port": 1502, "timeout_s": 0.5}), 424)
    assert err["code"] == "device_unreachable"
    assert "cannot connect to 127.0.0.1:1502 unit 1" in err["message"]
    assert err["detail"] == {"host": "127.0.0.1", "port": 1502, "unit": 1}
    assert connects == [("127.0.0.1", 1502)]


def test_valid_names_reach_the_connection_in_their_ascii_form(client, eng, connects):
    for host, ascii_host in [("Bücher.example", "xn--bcher-kva.example"), ("meter-01.plant.local.", None),
                             ("::1", None), ("[::1]", "::1"), ("fe80::1%eth0", None), ("plc_7", None)]:
        r = client.post(PROBE, headers=eng, json={"host": host, "port": 502, "timeout_s": 0.5})
        assert _error(r, 424)["code"] == "device_unreachable"
        assert connects[-1] == (ascii_host or host, 502)


BAD_URLS = [
    pytest.param("opc.tcp://", "names no host", id="no-host"),
    pytest.param("opc.tcp://:4840", "no host given", id="port-only"),
    pytest.param("opc.tcp:///plant", "names no host", id="path-only"),
    pytest.param("opc.tcp://127.0.0.1:0/", "port 0", id="port-0"),
    pytest.param("opc.tcp://127.0.0.1:70000/", "port 70000", id="port-70000"),
    pytest.param("opc.tcp://127.0.0.1:99999999999999999999/", "1..65535", id="port-huge"),
    pytest.param("opc.tcp://127.0.0.1:abc/", "not a number", id="port-text"),
    pytest.param("opc.tcp://127.0.0.1:/", "no port", id="port-empty"),
    pytest.param(f"opc.tcp://{LONG_HOST}:4840/", "63", id="253-char-host"),
    pytest.param("opc.tcp://\x80:4840/", "internationalised", id="non-ascii-host"),
    pytest.param("opc.tcp://a..b:4840/", "empty label", id="empty-label"),
    pytest.param("opc.tcp://[::1/", "without its ']'", id="open-bracket"),
    pytest.param("opc.tcp://[meter]:4840/", "IPv6", id="bracketed-name"),
    pytest.param("opc.tcp://user:pw@plc:4840/", "password", id="credentials"),
    pytest.param("opc.tcp://plc:4840/a b", "' '", id="space-in-path"),
    pytest.param("opc.tcp://plc:4840/?x=1", "'?'", id="query"),
    pytest.param("opc.tcp://" + "p" * 291, "at most 300", id="too-long"),
]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS)
def test_bad_browse_url_is_422_naming_the_url_and_connects_nowhere(client, eng, connects, url, reason):
    err = _error(client.get(BROWSE, headers=eng, params={"url": url}), 422)
    assert err["message"].startswith("query.url: "), err["message"]
    assert reason in err["message"]
    assert err["detail"][0]["where"] == "query.url"
    assert connects == []


@pytest.mark.parametrize("params", [{"url": "http://plc:4840/"}, {"url": "opc.tcp://plc:4840/", "depth": 0},
                                    {"url": "opc.tcp://plc:4840/", "depth": 7}, {"depth": 2},
                                    {"url": "opc.tcp://plc:4840/", "depth": "deep"}])
def test_bad_browse_parameters_are_422(client, eng, connects, params):
    err = _error(client.get(BROWSE, headers=eng, params=params), 422)
    assert err["message"].startswith("query.")
    assert connects == []


def test_unreachable_opcua_server_is_424_device_unreachable(client, eng, connects):
    err = _error(client.get(BROWSE, headers=eng, params={"url": "opc.tcp://127.0.0.1:4841/plant"}), 424)
    assert err["code"] == "device_unreachable"
    assert "cannot connect to opc.tcp://127.0.0.1:4841/plant" in err["message"]
    assert connects == [("127.0.0.1", 4841)]
    # No port: the OPC UA default, 4840.
    _error(client.get(BROWSE, headers=eng, params={"url": "opc.tcp://Bücher.example/plant"}), 424)
    assert connects[-1] == ("xn--bcher-kva.example", 4840)


def test_customers_may_not_probe_even_with_bad_input(client, connects):
    cust = token_for(client, "cust-acme")
    assert _error(client.post(PROBE, headers=cust, json={"host": LONG_HOST}), 403)
    assert _error(client.get(BROWSE, headers=cust, params={"url": "opc.tcp://"}), 403)
    assert connects == []


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.5", ("10.0.0.5", 502)), ("meter.local:1502", ("meter.local", 1502)), ("[::1]:5020", ("::1", 5020)),
    ("::1", ("::1", 502)), ("[fe80::1%eth0]", ("fe80::1%eth0", 502)),
    ("zähler.example:502", ("xn--zhler-gra.example", 502)),
])
def test_parse_target(text, expected):
    assert parse_target(text, 502) == expected


def test_checks_are_shared_and_name_the_field():
    with pytest.raises(InvalidInput, match="at most 63") as exc:
        check_host(LONG_HOST)
    assert exc.value.where == "host"
    with pytest.raises(InvalidInput, match="port 70000") as exc:
        parse_target("plc:70000", 502)
    assert exc.value.where == "port"
    with pytest.raises(InvalidInput) as exc:
        parse_opcua_url("opc.tcp://")
    assert exc.value.where == "url"
    url = parse_opcua_url("opc.tcp://[::1]/plant/")
    assert (url.host, url.port, url.path, url.url) == ("::1", 4840, "/plant/", "opc.tcp://[::1]:4840/plant/")
