"""Fixtures: one real gateway for the API tests (module-shared: building it fills a store and a registry)."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from tests.gateway.api.world import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    return build_world(tmp_path_factory.mktemp("apiworld"))


@pytest.fixture(scope="session")
def client(world: World) -> TestClient:
    from gateway.web import create_app

    return TestClient(create_app(world.gw))


@pytest.fixture(autouse=True)
def _fresh_login_windows(request: pytest.FixtureRequest):
    """Each test leaves the login windows empty: the fuzz and the limit tests fill the shared users' and client's."""
    yield
    if "world" in request.fixturenames:
        from sqlalchemy import delete

        from gateway.auth.models import LoginCounter

        world = request.getfixturevalue("world")
        with world.gw.db() as s:
            s.execute(delete(LoginCounter))
            s.commit()
