"""Helpers for the deploy/ checks: the folder, the tools that validate it, the metric names the gateway exports."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
_METRIC = re.compile(r"\b(?:gateway|process|python)_[a-z0-9_]+\b|\bup\b")


def tool(name: str, package: str) -> str:
    """The path of a validation tool; a missing one fails the test (with the package to install), never skips it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y {package} (bash deploy/dev.sh test does)")
    return path


def exported_series() -> set[str]:
    """Every series name a gateway's /metrics can hold: each family with its type's suffixes, plus Prometheus' `up`."""
    import prometheus_client

    import gateway.pipeline
    import gateway.scheduler
    import gateway.web  # noqa: F401 - importing registers the metrics

    names = {"up"}
    for family in prometheus_client.REGISTRY.collect():
        base = family.name
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                    "summary": ("_sum", "_count", "_created")}.get(family.type, ("",))
        names.update(base + s for s in suffixes)
    return names


def metric_names(promql: str) -> set[str]:
    """The metric names a PromQL expression reads (label values and `$__` variables removed first)."""
    without_strings = re.sub(r'"[^"]*"', '""', promql)
    return set(_METRIC.findall(without_strings))
