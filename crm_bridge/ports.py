"""What the CRM bridge needs from the outside world, as protocols the gateway implements.

crm_bridge may not import gateway (the composition root), so the gateway's query layer is handed in as an
object that satisfies `IntervalSource`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import pandas as pd


class IntervalSource(Protocol):
    """15-minute interval data per meter or per customer.

    Every frame is indexed by interval start (tz-aware, in the customer's time zone), on a complete 15-min grid
    over [start, end), with float columns `kwh`, `kvarh`, `kw` (= kwh x 4, the 15-min demand) and `pf`, and a
    bool column `missing`. A missing interval has NaN values and missing=True: it is never filled.
    """

    def meter_intervals(self, meter: str, start: datetime, end: datetime) -> pd.DataFrame: ...

    def customer_intervals(self, customer: str, start: datetime, end: datetime) -> pd.DataFrame: ...

    def meter_last_seen(self, meter: str) -> datetime | None:
        """Source time of the newest good reading of the meter, or None if it never reported."""
        ...
