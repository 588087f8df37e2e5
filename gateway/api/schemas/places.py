"""Sites and meters."""

from __future__ import annotations

from pydantic import BaseModel


class SitePublic(BaseModel):
    id: str
    customer: str
    name: str
    meters: list[str]


class MeterPublic(BaseModel):
    id: str
    name: str
    site: str
    customer: str | None
    device: str
