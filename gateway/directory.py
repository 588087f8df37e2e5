"""One directory of customers, sites, meters and devices, built once from the config when the gateway starts.

The tagger (which customer, site and meter a device's readings belong to), the query layer (its Topology), the
API's scope checks and the use cases all read it, so "who owns what" is answered in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo

from gateway.config import CustomerConfig, DeviceConfig, GatewayConfig, MeterConfig, SiteConfig
from gateway.query import Topology


class UnknownId(LookupError):
    """An id the directory does not hold; the message names its kind."""


@dataclass(frozen=True)
class Directory:
    """Customers, sites, meters and devices by id (devices by name), and who owns each."""

    customers: Mapping[str, CustomerConfig]
    sites: Mapping[str, SiteConfig]
    meters: Mapping[str, MeterConfig]
    devices: Mapping[str, DeviceConfig]
    _meter_of_device: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> Directory:
        return cls(customers={c.id: c for c in cfg.customers}, sites={s.id: s for s in cfg.sites},
                   meters={m.id: m for m in cfg.meters}, devices={d.name: d for d in cfg.devices},
                   _meter_of_device={m.device: m.id for m in cfg.meters})

    def customer(self, customer_id: str) -> CustomerConfig:
        found = self.customers.get(customer_id)
        if found is None:
            raise UnknownId(f"customer {customer_id!r} not found")
        return found

    def zone(self, customer_id: str) -> ZoneInfo:
        """The customer's clock: every day, month and price of that customer is on it."""
        return ZoneInfo(self.customer(customer_id).timezone)

    def owner_of_site(self, site_id: str) -> str | None:
        site = self.sites.get(site_id)
        return None if site is None else site.customer

    def owner_of_meter(self, meter_id: str) -> str | None:
        meter = self.meters.get(meter_id)
        return None if meter is None else self.owner_of_site(meter.site)

    def owner_of_device(self, device: str) -> str | None:
        """The customer whose meter the device measures (None: no meter, or an unknown device)."""
        meter = self._meter_of_device.get(device)
        return None if meter is None else self.owner_of_meter(meter)

    def sites_of(self, customer_id: str) -> list[str]:
        return [s.id for s in self.sites.values() if s.customer == customer_id]

    @cached_property
    def tags(self) -> dict[str, tuple[str, str, str]]:
        """Device -> (customer, site, meter): the tags its readings are stored with."""
        return {m.device: (self.owner_of_site(m.site) or "", m.site, m.id) for m in self.meters.values()}

    @cached_property
    def topology(self) -> Topology:
        """The query layer's view: who owns what, each customer's zone, each meter's boundary tolerance and role."""
        return Topology(
            customer_tz={c.id: c.timezone for c in self.customers.values()},
            site_customer={s.id: s.customer for s in self.sites.values()},
            meter_site={m.id: m.site for m in self.meters.values()},
            meter_device={m.id: m.device for m in self.meters.values()},
            device_interval_s={d.name: d.interval_s for d in self.devices.values()},
            meter_tolerance_s={m.id: m.boundary_tolerance_s for m in self.meters.values()
                               if m.boundary_tolerance_s is not None},
            meter_role={m.id: m.role for m in self.meters.values()},
        )
