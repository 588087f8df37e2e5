"""Meter profiles: one data file per meter model with its register map, taken from the public manuals."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from collectors.base import CollectorConfigError


@cache
def available_profiles() -> tuple[str, ...]:
    return tuple(sorted(p.name.removesuffix(".toml") for p in resources.files(__package__).iterdir()
                        if p.name.endswith(".toml")))


@cache
def profile_document(name: str) -> dict[str, Any]:
    if name not in available_profiles():
        raise CollectorConfigError(f"unknown meter profile {name!r}; known: {', '.join(available_profiles())}")
    text = resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def profile_points(name: str) -> list[dict[str, Any]]:
    """The profile's point entries with its `defaults` applied, as `[[devices.points]]` would spell them."""
    doc = profile_document(name)
    defaults = dict(doc.get("defaults", {}))
    return [{**defaults, **raw} for raw in doc.get("points", [])]
