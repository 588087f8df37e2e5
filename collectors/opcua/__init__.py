"""OPC UA collector (asyncua): polling in OperationLimits-sized chunks or subscriptions, secure channels."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from collectors.base import Collector, CollectorContext, Plugin
from collectors.opcua.config import OpcUaDeviceConfig, OpcUaNodeConfig

if TYPE_CHECKING:
    from collectors.opcua.collector import OpcUaCollector, quality_of
    from collectors.opcua.security import TrustError

__all__ = ["PLUGIN", "OpcUaCollector", "OpcUaDeviceConfig", "OpcUaNodeConfig", "TrustError", "quality_of"]
_LAZY = {"OpcUaCollector": "collectors.opcua.collector", "quality_of": "collectors.opcua.collector",
         "TrustError": "collectors.opcua.security"}


def create(devices: Sequence[OpcUaDeviceConfig], context: CollectorContext) -> Collector:
    """One collector for every OPC UA device, each with its own client."""
    from collectors.opcua.collector import OpcUaCollector

    return OpcUaCollector(devices, context.state_dir, context.environ)


PLUGIN = Plugin(OpcUaDeviceConfig, create)


def __getattr__(name: str) -> Any:  # the collector imports asyncua: only when asked for
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
