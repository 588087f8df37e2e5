"""The web application of a running gateway: the API and portal, health and Prometheus metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

if TYPE_CHECKING:
    from gateway.runtime import Gateway

DEVICE_ONLINE = Gauge("gateway_device_online", "1 when the device answered its last poll", ["device", "protocol"])
DEVICE_FAILURES = Gauge("gateway_device_consecutive_failures", "Failed polls in a row", ["device", "protocol"])
DEVICE_LATENCY = Gauge("gateway_device_poll_latency_seconds", "Duration of the last poll", ["device", "protocol"])
DEVICE_OVERRUNS = Gauge("gateway_device_cycle_overruns", "Poll cycles missed because a poll ran late",
                        ["device", "protocol"])
DEVICE_AGE = Gauge("gateway_device_last_success_age_seconds", "Seconds since the last good poll",
                   ["device", "protocol"])


def refresh_device_metrics(gw: Gateway) -> None:
    now = time.time_ns()
    for h in gw.health():
        labels = {"device": h.device, "protocol": h.protocol}
        DEVICE_ONLINE.labels(**labels).set(1 if h.online else 0)
        DEVICE_FAILURES.labels(**labels).set(h.consecutive_failures)
        DEVICE_OVERRUNS.labels(**labels).set(h.overruns)
        if h.last_latency_s is not None:
            DEVICE_LATENCY.labels(**labels).set(h.last_latency_s)
        if h.last_success_ns is not None:
            DEVICE_AGE.labels(**labels).set((now - h.last_success_ns) / 1e9)


def build_app(gw: Gateway) -> FastAPI:
    """The API and portal (gateway.api), with /healthz and /metrics."""
    from gateway.api import create_app_for_gateway

    app = create_app_for_gateway(gw)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        stats = gw.pipeline.stats()
        return {"status": "ok", "outbox_depth": stats["outbox_depth"], "store_down_s": stats["store_down_s"],
                "devices_online": sum(1 for h in gw.health() if h.online), "devices": len(gw.health())}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        refresh_device_metrics(gw)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
