"""Server certificates made once per session, and a helper to run the collector for a while."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from collectors.opcua import OpcUaCollector, OpcUaDeviceConfig
from collectors.reading import Reading


async def make_cert(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.der", folder / f"{name}.pem"
    await setup_self_signed_certificate(key, cert, f"urn:energy-gateway:sim:{name}", socket.gethostname(),
                                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                                        {"commonName": name})
    return cert, key


@pytest.fixture(scope="session")
def server_certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("opcua-pki")

    async def both() -> dict[str, tuple[Path, Path]]:
        return {"a": await make_cert(folder, "server-a"), "b": await make_cert(folder, "server-b")}

    return asyncio.run(both())


def device(url: str, nodes: list[dict[str, object]], **kw: object) -> OpcUaDeviceConfig:
    return OpcUaDeviceConfig.model_validate({"type": "opcua", "name": "dev", "url": url, "nodes": nodes,
                                             "interval_s": 0.5, "timeout_s": 2, "backoff_max_s": 1, **kw})


async def collect_until(collector: OpcUaCollector, done: Callable[[list[Reading]], bool],
                        within_s: float = 20) -> list[Reading]:
    """Run the collector until `done(readings)` holds (or time runs out), then stop it cleanly."""
    got: list[Reading] = []
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(got.extend, stop))
    deadline = time.monotonic() + within_s
    try:
        while not done(got) and time.monotonic() < deadline and not task.done():  # noqa: ASYNC110 - polls a list
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    return got
