"""Devices with their health, points and live values; the results of the Modbus probe and the OPC UA browse."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HealthPublic(BaseModel):
    online: bool
    consecutive_failures: int
    last_success: str | None = Field(description="ISO 8601 UTC; null before the first success")
    last_latency_s: float | None
    overruns: int
    last_error: str


class CollectorHealth(HealthPublic):
    device: str
    protocol: str
    polls: int


class DevicePublic(BaseModel):
    name: str
    protocol: str
    address: str
    interval_s: float | None
    customer: str | None
    site: str | None
    meter: str | None
    health: HealthPublic | None


class LiveValue(BaseModel):
    point: str
    value: float | int | str | bool | None
    unit: str
    quality: str
    source_time: str
    age_s: float
    stale: bool = Field(description="Older than three poll intervals and 5 s")


class MeterLive(BaseModel):
    meter: str
    device: str
    points: list[LiveValue]


class Decoding(BaseModel):
    type: str
    order: str
    value: float | int | str
    registers: int


class ProbeResult(BaseModel):
    registers: list[int]
    decodings: list[Decoding] = Field(description="Every plausible decoding (type x byte/word order)")


class BrowseNode(BaseModel):
    """One node of the address space; only variables carry `value` and `status`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    node_id: str
    browse_path: str = Field(description="Usable as a point's `browse_path`")
    browse_name: str
    node_class: str = Field(alias="class", description="Object, Variable, Method ...")
    depth: int
    value: float | int | str | bool | None = Field(None, description="null when bad or not JSON (NaN: see value_text)")
    value_text: str | None = Field(None, description="The text of a value JSON cannot hold (NaN, infinity)")
    status: str | None = Field(None, description="The value's status name: Good, Uncertain..., Bad...")
