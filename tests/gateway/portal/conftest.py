"""Fixtures: a real gateway served by uvicorn on loopback, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.gateway.api.world import RunningApi, World, build_world

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="session")
def portal_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    return build_world(tmp_path_factory.mktemp("portalworld"))


@pytest.fixture(scope="session")
def portal(portal_world: World) -> Iterator[RunningApi]:
    with RunningApi(portal_world.gw) as api:
        yield api


# Package scope: Playwright's sync API keeps an event loop running in the main thread while it is open, so it must
# be closed before the asyncio tests that pytest runs after this package.
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="en-US")
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()


def clear_cost_setup(world: World, customer: str) -> None:
    """Forget a customer's cost centres, rules, budgets and production rows: the portal world is shared by the
    session, and a module that sets up a customer's allocation must leave it as it found it."""
    from sqlalchemy import delete, select

    from crm_bridge.registry.allocation_models import AllocationRule, CostCentre, VirtualMeter
    from crm_bridge.registry.models import Customer
    from crm_bridge.registry.performance_models import EnergyBudget, ProductionDay

    with world.gw.db() as s:
        cid = s.scalar(select(Customer.id).where(Customer.code == customer))
        centres = select(CostCentre.id).where(CostCentre.customer_id == cid)
        s.execute(delete(VirtualMeter).where(VirtualMeter.cost_centre_id.in_(centres)))
        s.execute(delete(CostCentre).where(CostCentre.customer_id == cid))
        s.execute(delete(AllocationRule).where(AllocationRule.customer_id == cid))
        s.execute(delete(EnergyBudget).where(EnergyBudget.customer_code == customer))
        s.execute(delete(ProductionDay).where(ProductionDay.customer_code == customer))
        s.commit()
