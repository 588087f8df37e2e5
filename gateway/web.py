"""The web application of a running gateway: the API and portal, their auth service, health and Prometheus metrics."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from ipaddress import ip_network
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from gateway.api.errors import ERRORS, install_error_handlers
from gateway.api.metrics import install_metrics
from gateway.api.routers import (
    accounts,
    alerts,
    auth,
    customers,
    devices,
    meters,
    portfolio,
    sites,
    tariffs,
    tickets,
    users,
)
from gateway.auth import AuthService
from gateway.portal import mount_portal
from gateway.usecases import UseCases

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"

DEVICE_ONLINE = Gauge("gateway_device_online", "1 when the device answered its last poll", ["device", "protocol"])
DEVICE_FAILURES = Gauge("gateway_device_consecutive_failures", "Failed polls in a row", ["device", "protocol"])
DEVICE_LATENCY = Gauge("gateway_device_poll_latency_seconds", "Duration of the last poll", ["device", "protocol"])
DEVICE_OVERRUNS = Gauge("gateway_device_cycle_overruns", "Poll cycles missed because a poll ran late",
                        ["device", "protocol"])
DEVICE_AGE = Gauge("gateway_device_last_success_age_seconds", "Seconds since the last good poll",
                   ["device", "protocol"])


def secret_key(gw: Gateway) -> str:
    """The signing key from the environment; development falls back to a per-process key (sessions end at restart)."""
    key = os.environ.get(gw.config.api.secret_key_env, "")
    if len(key) >= 16:
        return key
    if gw.config.gateway.environment == "production":
        raise RuntimeError(f"{gw.config.api.secret_key_env} is not set or shorter than 16 characters")
    log.warning("%s not set: using a random key, logins end when the gateway restarts", gw.config.api.secret_key_env)
    return secrets.token_urlsafe(32)


def auth_service(gw: Gateway) -> AuthService:
    """The gateway's AuthService (`gw.auth`), made on first use with its tables created in the registry database."""
    if gw.auth is None:
        AuthService.create_tables(gw.db.kw["bind"])
        api = gw.config.api
        gw.auth = AuthService(gw.db, secret_key(gw), session_idle_s=api.session_idle_timeout_s,
                              session_absolute_s=api.session_absolute_timeout_s)
    return gw.auth


def refresh_device_metrics(gw: Gateway) -> None:
    """Set the per-device gauges from the collectors' health, just before /metrics is scraped."""
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


def create_app(gw: Gateway) -> FastAPI:
    """The API (/api/v1) and portal of `gw`, with /healthz and /metrics; warms the day-curve cache in a thread."""
    app = FastAPI(title="energy-gateway", version=API_VERSION, responses=ERRORS,
                  description="Gateway API: engineers (devices, data), account managers (their accounts), "
                              "customers (their own company). Bearer tokens from POST /api/v1/auth/token.")
    app.state.gateway = gw
    app.state.auth = auth_service(gw)
    app.state.trusted_proxies = tuple(ip_network(n, strict=False) for n in gw.config.api.trusted_proxies)
    app.state.usecases = views = UseCases(gw)
    if gw.config.api.warm_days:

        def warm() -> None:
            try:
                views.warm(gw.config.api.warm_days)
            except Exception:  # noqa: BLE001 - warming is an optimisation; a failure must not stop the API
                log.exception("warming the day-curve cache failed")

        threading.Thread(target=warm, name="warm-views", daemon=True).start()
    install_error_handlers(app)
    install_metrics(app)
    for module in (auth, customers, accounts, sites, meters, alerts, tickets, portfolio, tariffs, devices, users):
        app.include_router(module.router)
    mount_portal(app)

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
