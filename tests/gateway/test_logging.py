"""setup_logging: our loggers at log_level, chatty libraries at WARNING, overrides; real collectors under it."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from collectors.modbus import ModbusCollector
from collectors.opcua import OpcUaCollector
from collectors.reading import Quality
from collectors.sim.load import LoadModel
from collectors.sim.opcua_server import OpcUaPlantSimulator, SimOpcUaMeter
from gateway import logs
from gateway.config import ConfigError, parse_config
from gateway.logs import setup_logging
from tests.collectors.opcua.conftest import collect_until

PUBLISH_LINE = "Publish callback called with result"  # asyncua.common.subscription, INFO, once per Publish


@pytest.fixture(autouse=True)
def _restore_logging():
    """setup_logging changes process-wide state: put back the root logger and every level it set."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for name in logs._applied:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logs._applied.clear()
    root.handlers[:] = handlers
    root.setLevel(level)


def _levels(*names: str) -> dict[str, str]:
    return {n: logging.getLevelName(logging.getLogger(n).getEffectiveLevel()) for n in names}


def test_levels_ours_at_log_level_libraries_quieter_overrides_win():
    buf = io.StringIO()
    setup_logging(parse_config({"gateway": {"log_level": "DEBUG", "log_levels": {"apscheduler": "INFO",
                                                                               "asyncua.client": "DEBUG"}}}),
                  stream=buf)
    assert _levels("gateway.runtime", "collectors.modbus.bus", "crm_bridge", "asyncua.common.subscription",
                   "asyncua.client.ua_client", "pymodbus.logging", "uvicorn.access", "uvicorn.error",
                   "apscheduler.scheduler", "alembic.runtime.migration", "httpx", "") == {
        "gateway.runtime": "DEBUG", "collectors.modbus.bus": "DEBUG", "crm_bridge": "DEBUG",
        "asyncua.common.subscription": "WARNING", "asyncua.client.ua_client": "DEBUG", "pymodbus.logging": "WARNING",
        "uvicorn.access": "WARNING", "uvicorn.error": "WARNING", "apscheduler.scheduler": "INFO",
        "alembic.runtime.migration": "WARNING", "httpx": "INFO", "": "INFO"}
    logging.getLogger("gateway.test").debug("ours at %s", "debug")
    assert "DEBUG gateway.test: ours at debug" in buf.getvalue()

    setup_logging(parse_config({}), stream=buf)  # again: replaces the handler and the levels, adds nothing
    assert _levels("gateway", "apscheduler", "asyncua.client") == {"gateway": "INFO", "apscheduler": "WARNING",
                                                                   "asyncua.client": "WARNING"}
    assert sum(isinstance(h, logs._OurHandler) for h in logging.getLogger().handlers) == 1


def _opcua_config(url: str, node_id: str, overrides: dict[str, str]):
    return parse_config({"gateway": {"log_levels": overrides}, "devices": [{
        "type": "opcua", "name": "ua", "url": url, "mode": "subscribe", "interval_s": 0.2, "timeout_s": 4,
        "nodes": [{"point": "active_power_kw", "node_id": node_id}]}]})


async def test_opcua_publish_responses_are_not_logged_unless_asked_for(tmp_path):
    sim = OpcUaPlantSimulator([SimOpcUaMeter("m1", LoadModel(peak_kw=800.0, seed=7))])
    await sim.start()
    try:
        node = sim.node_ids("m1")["active_power_kw"]
        out: dict[str, str] = {}
        for label, overrides in (("default", {}), ("asked", {"asyncua": "INFO"})):
            cfg = _opcua_config(sim.url, node, overrides)
            buf = io.StringIO()
            setup_logging(cfg, stream=buf)
            collector = OpcUaCollector(list(cfg.devices), tmp_path / label)  # type: ignore[arg-type]
            got = await collect_until(collector, lambda rs: sum(r.quality is Quality.GOOD for r in rs) >= 3)
            assert sum(r.quality is Quality.GOOD for r in got) >= 3, label  # Publish responses did arrive
            out[label] = buf.getvalue()
    finally:
        await sim.stop()
    assert PUBLISH_LINE not in out["default"]
    assert "INFO asyncua" not in out["default"]
    assert out["asked"].count(PUBLISH_LINE) >= 3  # the same run with the override: one line per Publish


@pytest.fixture
def silent_modbus():
    """A Modbus server that accepts connections and never answers (a dead device behind a live gateway)."""
    proc = subprocess.Popen([sys.executable, "-m", "collectors.sim.modbus_server", "--meters", "1",
                             "--silent-server", "0"], stdout=subprocess.PIPE, text=True)
    try:
        yield json.loads(proc.stdout.readline())["ports"][0]
    finally:
        proc.terminate()
        proc.wait(10)


async def test_pymodbus_timeouts_do_not_dump_hex_frames(silent_modbus, capfd):
    def modbus(overrides: dict[str, str]):
        return parse_config({"gateway": {"log_levels": overrides}, "devices": [{
            "type": "modbus", "name": "dead", "host": "127.0.0.1", "port": silent_modbus, "unit": 1,
            "profile": "generic", "timeout_s": 0.3, "retries": 0}]})

    out: dict[str, str] = {}
    for label, overrides in (("default", {}), ("asked", {"pymodbus": "DEBUG"})):
        cfg = modbus(overrides)
        buf = io.StringIO()
        setup_logging(cfg, stream=buf)
        readings = await ModbusCollector(list(cfg.devices)).poll_once()  # type: ignore[arg-type]
        assert readings
        assert all(r.quality is Quality.COMM_LOST for r in readings)
        out[label] = buf.getvalue()
    assert "No response received" in out["default"]  # pymodbus's own error line stays: one line, no frames
    assert ">>>>>" not in out["default"]
    assert "0x" not in out["default"]
    assert "send: 0x" in out["asked"]  # the frames exist, and an override shows them
    std = capfd.readouterr()
    assert "0x" not in std.out
    assert "0x" not in std.err


def test_json_format_one_object_per_line_with_fields_request_id_and_traceback():
    buf = io.StringIO()
    setup_logging(parse_config({"gateway": {"log_format": "json"}}), stream=buf)
    log = logging.getLogger("gateway.test")
    log.warning("device %s offline", "m1", extra={"device": "m1", "customer": "acme"})
    token = logs.request_id.set("req-42")
    try:
        log.info("inside a request: 中文 stays readable")
    finally:
        logs.request_id.reset(token)
    try:
        raise ValueError("broken register map")
    except ValueError:
        log.exception("decoding failed")
    first, second, third = (json.loads(line) for line in buf.getvalue().splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "gateway.test"
    assert first["message"] == "device m1 offline"
    assert (first["device"], first["customer"]) == ("m1", "acme")
    assert first["ts"].endswith("+00:00")
    assert "request_id" not in first
    assert second["request_id"] == "req-42"
    assert second["message"] == "inside a request: 中文 stays readable"
    assert "中文" in buf.getvalue()  # not \u-escaped
    assert third["exc"].startswith("Traceback")
    assert "ValueError: broken register map" in third["exc"]


def test_text_format_appends_request_id_and_fields_before_the_traceback():
    buf = io.StringIO()
    setup_logging(parse_config({}), stream=buf)
    log = logging.getLogger("gateway.test")
    log.warning("plain line")
    token = logs.request_id.set("req-7")
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed for %s", "acme", extra={"customer": "acme"})
    finally:
        logs.request_id.reset(token)
    lines = buf.getvalue().splitlines()
    assert lines[0].endswith("WARNING gateway.test: plain line")
    assert lines[1].endswith("ERROR gateway.test: failed for acme request_id=req-7 customer=acme")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: boom"


def test_access_lines_are_off_unless_asked_for():
    setup_logging(parse_config({}), stream=io.StringIO())
    assert not logging.getLogger("gateway.access").isEnabledFor(logging.INFO)
    assert logging.getLogger("gateway.web").isEnabledFor(logging.INFO)
    setup_logging(parse_config({"gateway": {"log_levels": {"gateway.access": "INFO"}}}), stream=io.StringIO())
    assert logging.getLogger("gateway.access").isEnabledFor(logging.INFO)


def test_log_format_is_checked():
    with pytest.raises(ConfigError, match="log_format"):
        parse_config({"gateway": {"log_format": "xml"}})
