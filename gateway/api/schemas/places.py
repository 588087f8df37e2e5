"""Sites and meters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
    role: Literal["billing", "sub"] = Field(description="billing: counts in its site's and customer's energy and "
                                                        "bill; sub: a line behind a billing meter, summed only "
                                                        "for a site without one")
