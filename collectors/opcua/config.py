"""OPC UA device entries: endpoint, mode, security, login, trust, and the nodes to read as canonical points."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NODE_ID = re.compile(r"^(ns=\d+|nsu=[^;]+);(i=\d+|s=.+|g=[0-9A-Fa-f-]{36}|b=[A-Za-z0-9+/=]+)$|^i=\d+$")
_BROWSE_STEP = re.compile(r"^\d+:[^/]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpcUaNodeConfig(_Strict):
    """One point: a node id in any standard form, or a browse path from the Root folder."""

    point: str = Field(min_length=1)
    node_id: str | None = Field(None, description="ns=2;i=5, ns=2;s=Meter.P, ns=2;g=<uuid>, ns=2;b=<base64>, "
                                                  "nsu=<namespace uri>;s=...")
    browse_path: str | None = Field(None, description="0:Objects/2:Plant/2:Meter1/2:active_power_kw")
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    deadband: float = Field(0.0, ge=0, description="absolute deadband for subscriptions (0: every change)")

    @model_validator(mode="after")
    def _one_address(self) -> OpcUaNodeConfig:
        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError(f"point {self.point!r}: give exactly one of 'node_id' and 'browse_path'")
        if self.node_id is not None and not _NODE_ID.match(self.node_id):
            raise ValueError(f"point {self.point!r}: node_id {self.node_id!r} is not ns=<n>;i=|s=|g=|b=<id> "
                             "or nsu=<uri>;...")
        if self.browse_path is not None:
            steps = self.browse_path.strip("/").split("/")
            bad = [s for s in steps if not _BROWSE_STEP.match(s)]
            if bad:
                raise ValueError(f"point {self.point!r}: browse path step {bad[0]!r} is not <ns index>:<name>")
        return self


class OpcUaEndpointConfig(_Strict):
    """How to reach and log in to a server: what a collector's device and a one-off browse share."""

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^opc\.tcp://\S+$")
    timeout_s: float = Field(4.0, gt=0, le=120)
    security_policy: Literal["None", "Basic256Sha256"] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")
    user_certificate: Path | None = Field(None, description="log in with this X.509 certificate (and key)")
    user_private_key: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_cert: Path | None = Field(None, description="trust exactly this server certificate; else trust on "
                                                        "first use and pin it in the state directory")

    @model_validator(mode="after")
    def _check_security(self) -> Self:
        secure = self.security_policy != "None"
        if secure and self.security_mode == "None":
            raise ValueError(f"security_policy {self.security_policy} needs security_mode Sign or SignAndEncrypt")
        if not secure and self.security_mode != "None":
            raise ValueError(f"security_mode {self.security_mode} needs security_policy Basic256Sha256")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("give both client_cert and client_key, or neither (one is generated)")
        if self.username is not None and not self.password_env:
            raise ValueError("a username needs password_env (the variable holding its password)")
        if self.password_env and self.username is None:
            raise ValueError("password_env without username")
        if (self.user_certificate is None) != (self.user_private_key is None):
            raise ValueError("a certificate login needs both user_certificate and user_private_key")
        if self.user_certificate is not None and self.username is not None:
            raise ValueError("log in with a username or a user certificate, not both")
        return self

    @property
    def who(self) -> str:
        """Who logs in, for messages."""
        if self.username is not None:
            return f"user {self.username!r}"
        return f"certificate {self.user_certificate}" if self.user_certificate is not None else "anonymous"


class OpcUaDeviceConfig(OpcUaEndpointConfig):
    type: Literal["opcua"]
    url: str = Field(pattern=r"^opc\.tcp://[^/:]+(:\d+)?(/.*)?$")
    mode: Literal["poll", "subscribe"] = "subscribe"
    interval_s: float = Field(1.0, gt=0, le=86400, description="poll period, or the subscription's publishing")
    backoff_max_s: float = Field(60.0, gt=0)
    sampling_interval_ms: float = Field(0.0, ge=0, le=3_600_000, description="0: interval_s")
    publishing_interval_ms: float = Field(0.0, ge=0, le=3_600_000, description="0: interval_s")
    max_items_per_subscription: int = Field(0, ge=0, description="0: as the server's ServerCapabilities say "
                                                                 "(one subscription when they state no limit)")
    queue_size: int = Field(1, ge=1, le=10_000)
    data_change_trigger: Literal["status_value", "status_value_timestamp"] = Field(
        "status_value", description="status_value_timestamp: every new sample, also when its value has not changed")
    max_nodes_per_read: int = Field(0, ge=0, description="0: as the server's OperationLimits say")
    nodes: list[OpcUaNodeConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> OpcUaDeviceConfig:
        names = [n.point for n in self.nodes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate points {dup}")
        return self

    @property
    def connection_key(self) -> str:
        return f"opcua:{self.url}"

    # -- collectors.base.Device ----------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return self.url

    def resolved_points(self) -> list[OpcUaNodeConfig]:
        """The nodes read, each as a canonical point."""
        return list(self.nodes)

    def secret_envs(self) -> list[tuple[str, str]]:
        return [("password_env", self.password_env)] if self.password_env else []

    def identity(self) -> None:
        return None  # one server may serve many meters: entries may share an endpoint

    def entry_problems(self) -> list[tuple[str, str]]:
        return []
