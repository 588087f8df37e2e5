"""The gateway API (FastAPI, /api/v1) and the customer portal, with authentication and one data-scope rule."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from ipaddress import ip_network

from fastapi import FastAPI

from gateway.api.errors import ERRORS, install_error_handlers
from gateway.api.metrics import install_metrics
from gateway.auth import AuthService
from gateway.runtime import Gateway
from gateway.usecases import UseCases

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"


def secret_key(gw: Gateway) -> str:
    """The signing key from the environment; development falls back to a per-process key (sessions end at restart)."""
    key = os.environ.get(gw.config.api.secret_key_env, "")
    if len(key) >= 16:
        return key
    if gw.config.gateway.environment == "production":
        raise RuntimeError(f"{gw.config.api.secret_key_env} is not set or shorter than 16 characters")
    log.warning("%s not set: using a random key, logins end when the gateway restarts", gw.config.api.secret_key_env)
    return secrets.token_urlsafe(32)


def auth_for(gw: Gateway) -> AuthService:
    """The gateway's AuthService (one per gateway), its tables created in the registry database."""
    auth = gw.extra.get("auth")
    if auth is None:
        AuthService.create_tables(gw.db.kw["bind"])
        api = gw.config.api
        auth = AuthService(gw.db, secret_key(gw), session_idle_s=api.session_idle_timeout_s,
                           session_absolute_s=api.session_absolute_timeout_s)
        gw.extra["auth"] = auth
    assert isinstance(auth, AuthService)  # noqa: S101 - gw.extra is typed Any
    return auth


def create_app_for_gateway(gw: Gateway) -> FastAPI:
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

    app = FastAPI(title="energy-gateway", version=API_VERSION, responses=ERRORS,
                  description="Gateway API: engineers (devices, data), account managers (their accounts), "
                              "customers (their own company). Bearer tokens from POST /api/v1/auth/token.")
    app.state.gateway = gw
    app.state.auth = auth_for(gw)
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
    from gateway.portal import mount_portal

    mount_portal(app, gw)
    return app
