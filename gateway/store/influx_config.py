"""The `[store]` entry with `type = "influxdb"`: no pandas, numpy or httpx, so config checks start fast."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class InfluxStoreConfig(BaseModel):
    """`[store]` with `type = "influxdb"`. Secrets are named by environment variable, never written in the TOML.

    API v1 (InfluxDB 1.x)::

        [store]
        type = "influxdb"
        url = "http://influxdb:8086"
        api = "v1"
        database = "energy"
        retention_policy = ""          # the database's default policy
        username = "gateway"
        password_env = "INFLUX_PASSWORD"
        create_database = true

    API v2 (InfluxDB 2.x, 3.x, Cloud; reads need the bucket's DBRP mapping for InfluxQL)::

        [store]
        type = "influxdb"
        url = "http://influxdb:8086"
        api = "v2"
        org = "utility"
        bucket = "energy"
        token_env = "INFLUX_TOKEN"
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["influxdb"] = "influxdb"
    url: str = Field(description="base URL, e.g. http://influxdb:8086")
    api: Literal["v1", "v2"] = "v1"
    # API v1 (InfluxDB 1.x)
    database: str = ""
    retention_policy: str = ""
    username: str = ""
    password_env: str = ""
    create_database: bool = False
    # API v2 (InfluxDB 2.x, 3.x, Cloud, 1.8+)
    org: str = ""
    bucket: str = ""
    token_env: str = ""
    # both
    batch_size: int = Field(5000, ge=1, le=1_000_000)
    gzip: bool = True
    timeout_s: float = Field(10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http:// or https:// URL with a host, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _check_api_fields(self) -> InfluxStoreConfig:
        if self.api == "v1":
            if not self.database:
                raise ValueError("api = 'v1' needs 'database'")
            stray = [k for k in ("org", "bucket", "token_env") if getattr(self, k)]
            if stray:
                raise ValueError(f"{', '.join(stray)} belong to api = 'v2'; with api = 'v1' use database/username")
            if self.password_env and not self.username:
                raise ValueError("password_env is set but username is empty")
        else:
            missing = [k for k in ("org", "bucket", "token_env") if not getattr(self, k)]
            if missing:
                raise ValueError(f"api = 'v2' needs {', '.join(missing)}")
            stray = [k for k in ("database", "retention_policy", "username", "password_env") if getattr(self, k)]
            if self.create_database:
                stray.append("create_database")
            if stray:
                raise ValueError(f"{', '.join(stray)} belong to api = 'v1'; with api = 'v2' use org/bucket/token_env")
        return self
