"""OPC UA collector (asyncua): polling in OperationLimits-sized chunks or subscriptions, secure channels."""

from collectors.opcua.collector import OpcUaCollector, quality_of
from collectors.opcua.config import OpcUaDeviceConfig, OpcUaNodeConfig
from collectors.opcua.security import TrustError

__all__ = ["OpcUaCollector", "OpcUaDeviceConfig", "OpcUaNodeConfig", "TrustError", "quality_of"]
