"""Meter profiles: every data file loads, is self-consistent, and reads back the load model through a real server."""

from __future__ import annotations

import math
import time

import pytest

from collectors.base import CollectorConfigError
from collectors.modbus import ModbusCollector, ModbusDeviceConfig
from collectors.modbus.config import load_profile
from collectors.modbus.datatypes import DataType
from collectors.modbus.plan import point_size
from collectors.modbus.profiles import available_profiles, profile_document
from collectors.reading import ACTIVE_ENERGY_IMPORT_KWH, ACTIVE_POWER_KW, Quality
from collectors.sim.load import LoadModel
from collectors.sim.modbus_server import ModbusPlantSimulator, SimModbusMeter

REQUIRED = {"generic", "sdm630", "pm5300", "umg604", "adl400"}
UNITS = {"active_power_kw": "kW", "reactive_power_kvar": "kvar", "active_energy_import_kwh": "kWh",
         "reactive_energy_import_kvarh": "kvarh", "frequency_hz": "Hz"}


def test_the_required_meter_models_are_shipped():
    assert REQUIRED <= set(available_profiles())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_profile_is_consistent(name):
    doc = profile_document(name)
    for key in ("model", "manufacturer", "source"):
        assert doc.get(key), f"{name}: '{key}' says where the map comes from"
    points = load_profile(name)
    names = [p.name for p in points]
    assert len(names) == len(set(names))
    # Canonical names, so the query layer finds power and energy whatever the meter.
    assert ACTIVE_POWER_KW in names
    assert ACTIVE_ENERGY_IMPORT_KWH in names
    for p in points:
        if p.name in UNITS:
            assert p.unit == UNITS[p.name], f"{name}.{p.name}"
        if p.name.startswith(("active_energy", "reactive_energy")):
            assert p.counter, f"{name}.{p.name} is an energy register: it must be a counter"
    # No two points of one register kind share a register.
    used: dict[tuple[str, int], str] = {}
    for p in points:
        for a in range(p.address, p.address + point_size(p)):
            assert (p.kind.value, a) not in used, f"{name}: {p.name} overlaps {used[(p.kind.value, a)]} at {a}"
            used[(p.kind.value, a)] = p.name


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(CollectorConfigError, match="unknown meter profile 'sdm999'.*sdm630"):
        load_profile("sdm999")


def _instants(model: LoadModel, t0_ns: int, t1_ns: int) -> list[dict[str, float]]:
    """The model at every whole second the simulator may have computed its registers at."""
    return [model.instant(s * 10**9) for s in range(t0_ns // 10**9 - 1, t1_ns // 10**9 + 1)]


def _matches(value: float, candidates: list[float], rel: float, abs_: float) -> bool:
    return any(math.isclose(value, c, rel_tol=rel, abs_tol=abs_) for c in candidates)


@pytest.mark.parametrize("name", sorted(REQUIRED))
async def test_profile_reads_the_load_model_back_through_a_real_server(name):
    model = LoadModel(peak_kw=1500, seed=7, shutdown_prob=0.0)
    async with ModbusPlantSimulator([SimModbusMeter(3, name, model)]) as sim:
        device = ModbusDeviceConfig(type="modbus", name=f"m-{name}", host="127.0.0.1", port=sim.port, unit=3,
                                    profile=name, timeout_s=1.0, retries=0)
        t0 = time.time_ns()
        readings = {r.point: r for r in await ModbusCollector([device]).poll_once()}
        t1 = time.time_ns()
    points = {p.name: p for p in load_profile(name)}
    assert set(readings) == set(points)
    instants = _instants(model, t0, t1)
    for point in (ACTIVE_POWER_KW, ACTIVE_ENERGY_IMPORT_KWH, "reactive_power_kvar", "frequency_hz"):
        if point not in points:
            continue
        r = readings[point]
        assert r.quality is Quality.GOOD, f"{name}.{point}"
        assert r.value is not None
        assert t0 <= r.source_ts <= t1
        p = points[point]
        # float32 keeps ~7 digits; integer registers round to their scale step.
        rel = 1e-6 if p.type in (DataType.FLOAT32, DataType.FLOAT64) else 0.0
        slack = max(rel * abs(r.value), abs(p.scale))
        if p.counter:
            # The simulator fills its registers at some instant inside the poll's window (cached per second).
            lo = model.instant((t0 // 10**9 - 1) * 10**9)[point]
            hi = model.instant(t1)[point]
            assert lo - slack <= r.value <= hi + slack, f"{name}.{point}: read {r.value}, model {lo}..{hi}"
        else:
            # Instantaneous values change once a second (the model's jitter is per whole second).
            assert _matches(r.value, [i[point] for i in instants], rel, abs(p.scale)), (
                f"{name}.{point}: read {r.value}, model {[i[point] for i in instants]}")
