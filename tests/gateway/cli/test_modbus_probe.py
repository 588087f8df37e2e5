"""`energy-gateway modbus probe` against a real pymodbus server on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from collectors.modbus.datatypes import DataType, WordOrder, encode
from collectors.sim.load import LoadModel
from collectors.sim.modbus_server import Faults, ModbusPlantSimulator, SimModbusMeter
from gateway.cli.modbus import app
from gateway.device_input import InvalidInput, parse_target
from tests.gateway.cli.checks import assert_one_line_failure

FLOAT_CDAB = encode(1234.5, DataType.FLOAT32, WordOrder.CDAB)  # word-swapped, as many meters send it
UINT64_DCBA = encode(12345678901234567, DataType.UINT64, WordOrder.DCBA)


class _SimThread:
    """The simulator on its own event loop in a thread: the CLI under test runs its own asyncio.run()."""

    def __init__(self, meters: list[SimModbusMeter]) -> None:
        self.sim = ModbusPlantSimulator(meters)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ModbusPlantSimulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        return self.sim

    @staticmethod
    async def _cancel_leftovers() -> None:
        # A request to the silent unit sleeps in the server until cancelled.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self._cancel_leftovers(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[ModbusPlantSimulator]:
    fixed = {10 + i: r for i, r in enumerate(FLOAT_CDAB)}
    fixed.update({20 + i: r for i, r in enumerate(UINT64_DCBA)})
    fixed.update({30 + i: r for i, r in enumerate(encode("SDM630", DataType.STRING, length=3))})
    meters = [SimModbusMeter(1, "generic", LoadModel(), Faults(fixed=fixed, illegal_ranges=[(900, 910)],
                                                               fixed_by_kind={("coil", 3): 1, ("discrete", 0): 1})),
              SimModbusMeter(2, "generic", LoadModel(), Faults(silent=True))]
    with _SimThread(meters) as s:
        yield s


def _probe(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["probe", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_lists_every_type_in_every_order_and_finds_the_word_swapped_float(sim):
    code, out, err = _probe(f"127.0.0.1:{sim.port}", "--unit", "1", "--address", "10", "--count", "2", "--json")
    assert code == 0, err
    rows = json.loads(out.strip().splitlines()[-1])
    assert all(set(r) >= {"type", "order", "value"} for r in rows)
    by_key = {(r["type"], r["order"]): r["value"] for r in rows}
    assert by_key[("float32", "CDAB")] == pytest.approx(1234.5)
    # The ABCD reading of word-swapped float registers is a different number: the probe shows both.
    assert by_key.get(("float32", "ABCD")) != pytest.approx(1234.5)
    for dtype in ("int32", "uint32"):
        assert {o for (t, o) in by_key if t == dtype} == {"ABCD", "DCBA", "BADC", "CDAB"}
    # Two registers cannot hold a 64-bit value: none is offered.
    assert not any(t in ("int64", "uint64", "float64") for t, _ in by_key)
    assert ("uint16", "ABCD") in by_key
    assert ("int16", "BADC") in by_key


def test_json_decodes_64_bit_in_every_order(sim):
    code, out, err = _probe(f"127.0.0.1:{sim.port}", "-u", "1", "-a", "20", "-n", "4", "--json")
    assert code == 0, err
    rows = json.loads(out.strip().splitlines()[-1])
    by_key = {(r["type"], r["order"]): r["value"] for r in rows}
    assert by_key[("uint64", "DCBA")] == 12345678901234567
    assert by_key[("uint64", "ABCD")] != 12345678901234567
    assert {o for (t, o) in by_key if t == "uint64"} == {"ABCD", "DCBA", "BADC", "CDAB"}


def test_human_output_is_a_table_with_raw_registers_and_the_string(sim):
    code, out, err = _probe(f"127.0.0.1:{sim.port}", "--unit", "1", "--address", "30", "--count", "3")
    assert code == 0, err
    assert "SDM630" in out
    assert "float32" in out
    assert "CDAB" in out
    raw = " ".join(f"{r:04X}" for r in encode("SDM630", DataType.STRING, length=3))
    assert raw in out.replace("\n", "")


def test_input_registers_with_function_4(sim):
    # The generic profile keeps its values in registers the model computes; function 4 must reach them.
    code, out, err = _probe(f"127.0.0.1:{sim.port}", "-u", "1", "-a", "0", "-n", "2", "-f", "4", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize(("function", "bits"), [("1", [0, 0, 0, 1]), ("2", [1, 0, 0, 0])])
def test_coils_and_discrete_inputs_are_bits(sim, function, bits):
    code, out, err = _probe(f"127.0.0.1:{sim.port}", "-u", "1", "-a", "0", "-n", "4", "-f", function, "--json")
    assert code == 0, err
    assert json.loads(out) == [{"type": "bit", "order": "", "value": b, "registers": 1} for b in bits]
    code, out, err = _probe(f"127.0.0.1:{sim.port}", "-u", "1", "-a", "0", "-n", "4", "-f", function)
    assert code == 0, err
    assert "".join(map(str, bits)) in out


def test_a_serial_port_that_is_not_there_is_exit_1_naming_it(tmp_path):
    port = str(tmp_path / "ttyUSB9")
    code, out, err = _probe("--transport", "rtu", "--serial-port", port, "--baudrate", "19200", "--parity", "E",
                            "--timeout", "0.3")
    assert_one_line_failure((code, out, err), code=1, tool="modbus probe",
                            expected=f"cannot connect to {port} (rtu) unit 1")


def test_exception_answer_is_a_clear_error(sim):
    code, out, err = _probe(f"127.0.0.1:{sim.port}", "-u", "1", "-a", "905", "-n", "2")
    assert code == 1
    assert "exception 2" in err
    assert "illegal data address" in err
    assert "address 905" in err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1, err


def test_silent_unit_times_out_with_a_clear_error(sim):
    code, out, err = _probe(f"127.0.0.1:{sim.port}", "-u", "2", "-a", "0", "-n", "2", "--timeout", "0.3")
    assert code == 1
    assert "no answer" in err
    assert "unit 2" in err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1, err


def test_unreachable_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        code, out, err = _probe(f"127.0.0.1:{port}", "-a", "0", "--timeout", "0.5")
    assert code == 1
    assert err.startswith(f"modbus probe: cannot connect to 127.0.0.1:{port}")
    assert len(err.strip().splitlines()) == 1, err
    assert out == ""


@pytest.mark.parametrize(("target", "expected"), [
    ("10.0.0.5", ("10.0.0.5", 502)), ("meter.local:1502", ("meter.local", 1502)), ("[::1]:5020", ("::1", 5020)),
    ("::1", ("::1", 502)), ("Zähler.local", ("xn--zhler-gra.local", 502)),
])
def test_parse_target(target, expected):
    assert parse_target(target, 502) == expected


@pytest.mark.parametrize("target", ["host:0", "host:70000", "host:abc", ":502", "[::1", "host:"])
def test_parse_target_rejects_bad_ports_and_hosts(target):
    with pytest.raises(InvalidInput):
        parse_target(target, 502)


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Every connection the probe tries, refused at once: bad input must not get this far."""
    tried: list[tuple[Any, Any]] = []

    async def refuse(self: Any, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        tried.append((host, port))
        raise ConnectionRefusedError(111, "refused by the test")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", refuse)
    return tried


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(["a" * 253], "at most 63", id="253-char-host"),
    pytest.param(["a" * 254], "at most 253", id="254-char-host"),
    pytest.param(["\x80"], "internationalised", id="non-ascii-control"),
    pytest.param(["é" * 64], "internationalised", id="non-ascii-label-too-long"),
    pytest.param(["a..b"], "empty label", id="empty-label"),
    pytest.param(["1.2.3"], "IPv4", id="short-ipv4"),
    pytest.param(["a b"], "letters, digits", id="space"),
    pytest.param(["[::1"], "without its ']'", id="open-bracket"),
    pytest.param(["host:0"], "port 0 is not in 1..65535", id="port-0"),
    pytest.param(["host:70000"], "port 70000 is not in 1..65535", id="port-70000"),
    pytest.param(["host:abc"], "not a number", id="port-text"),
    pytest.param([":502"], "no host", id="no-host"),
    pytest.param(["127.0.0.1", "--address", "-1"], "--address", id="address-negative"),
    pytest.param(["127.0.0.1", "--address", "65536"], "--address", id="address-65536"),
    pytest.param(["127.0.0.1", "-a", "65530", "-n", "10"], "run past the last register", id="past-last-register"),
    pytest.param(["127.0.0.1", "--unit", "256"], "--unit", id="unit-256"),
    pytest.param(["127.0.0.1", "--unit", "abc"], "'--unit'", id="unit-text"),
    pytest.param(["127.0.0.1", "--count", "0"], "--count", id="count-0"),
    pytest.param(["127.0.0.1", "--count", "126"], "--count", id="count-126"),
    pytest.param(["127.0.0.1", "--timeout", "0"], "--timeout", id="timeout-0"),
    pytest.param(["127.0.0.1", "--timeout", "nan"], "--timeout", id="timeout-nan"),
    pytest.param(["127.0.0.1", "--colour", "red"], "--colour", id="unknown-option"),
    pytest.param([], "HOST[:PORT]", id="no-target"),
    pytest.param(["127.0.0.1", "--function", "0"], "--function", id="function-0"),
    pytest.param(["127.0.0.1", "--transport", "udp"], "--transport", id="unknown-transport"),
    pytest.param(["--transport", "rtu"], "--serial-port", id="rtu-without-serial-port"),
    pytest.param(["127.0.0.1", "--transport", "rtu", "--serial-port", "/dev/ttyUSB0"], "not used with --transport rtu",
                 id="rtu-with-host"),
    pytest.param(["--transport", "rtu", "--serial-port", "/dev/ttyUSB0", "--parity", "X"], "--parity",
                 id="bad-parity"),
])
def test_bad_input_is_one_line_and_exit_2_without_connecting(connects, args, expected):
    assert_one_line_failure(_probe(*args), code=2, tool="modbus probe", expected=expected)
    assert connects == []


def test_a_valid_non_ascii_name_is_probed_in_its_ascii_form(connects):
    code, _, err = _probe("Zähler.local:1502", "--timeout", "0.5")
    assert code == 1
    assert connects == [("xn--zhler-gra.local", 1502)]
    assert err.strip() == ("modbus probe: cannot connect to xn--zhler-gra.local:1502 unit 1 (unknown host, refused, "
                           "unreachable or timed out after 0.5 s)")


def test_bad_option_is_a_usage_error_not_a_crash():
    code, _, err = _probe("127.0.0.1", "--function", "6")
    assert code == 2
    assert err.strip() == "modbus probe: --function: Input should be less than or equal to 4"


def test_help_shows_the_target_forms():
    result = CliRunner().invoke(app, ["probe", "--help"])
    assert result.exit_code == 0, result.output
    assert "[IPv6]:PORT" in result.output
