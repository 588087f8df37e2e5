"""The CRM bridge's exception root."""


class CrmError(Exception):
    """Root of crm_bridge errors: bad tariff or contract data, impossible workflow steps, unreachable peers."""


class TariffError(CrmError, ValueError):
    """A tariff document is invalid, or no tariff version covers the time asked for."""
