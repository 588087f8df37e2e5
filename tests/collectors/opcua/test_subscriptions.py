"""OPC UA subscriptions at scale: nodes spread over several subscriptions, and every sample of a steady value."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from asyncua import ua

from collectors.opcua import OpcUaCollector
from collectors.sim.load import LoadModel
from collectors.sim.opcua_server import POINT_UNITS, OpcUaPlantSimulator, SimOpcUaMeter
from tests.collectors.opcua.conftest import collect_until, device

pytestmark = pytest.mark.timeout(60)


async def test_nodes_spread_over_subscriptions_all_arrive_and_steady_values_arrive_every_sample(tmp_path):
    sim = OpcUaPlantSimulator([SimOpcUaMeter("m1", LoadModel(peak_kw=800.0, seed=7))], period_s=3600)
    await sim.start()
    await asyncio.sleep(0.5)  # the simulator's one pass; from here on only the test writes

    async def steady() -> None:  # the power factor stays at 0.9, a new sample every 0.2 s
        while True:
            await sim.set_quality("m1", "power_factor", ua.StatusCode(ua.StatusCodes.Good), 0.9)
            await asyncio.sleep(0.2)

    writer = asyncio.create_task(steady())
    try:
        ids = sim.node_ids("m1")
        every = device(sim.url, [{"point": p, "node_id": ids[p]} for p in POINT_UNITS], mode="subscribe",
                       name="every", max_items_per_subscription=3, data_change_trigger="status_value_timestamp")
        changes = device(sim.url, [{"point": "power_factor", "node_id": ids["power_factor"]}], mode="subscribe",
                         name="changes")
        col = OpcUaCollector([every, changes], tmp_path)

        def steady_of(rs, name):
            return [r for r in rs if r.device == name and r.point == "power_factor" and r.value == 0.9]

        got = await collect_until(col, lambda rs: len(steady_of(rs, "every")) >= 4 and steady_of(rs, "changes"))
        assert col.devices[0].subscriptions == 3, "8 nodes at most 3 a subscription"
        assert col.devices[1].subscriptions == 1
        assert {r.point for r in got if r.device == "every"} == set(POINT_UNITS), "every node of every subscription"
        samples = steady_of(got, "every")
        assert len(samples) >= 4
        assert len({r.source_ts for r in samples}) == len(samples), "each a new sample of the same value"
        assert len(steady_of(got, "changes")) == 1, "by default an unchanged value is not reported again"
        assert all(h.online for h in col.health())
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await sim.stop()
