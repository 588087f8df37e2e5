"""Purchase view: next month's forecast energy by TOU band, priced by the tariff's own energy_cost."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from crm_bridge.services import ServiceError
from crm_bridge.services.purchase import purchase_view
from crm_bridge.tariffs import energy_cost, load_tariff

TZ = "Asia/Shanghai"
SICHUAN = load_tariff("sichuan-2023")


def shape(month: str = "2026-11", kwh: float = 100.0) -> pd.DataFrame:
    start = pd.Timestamp(f"{month}-01", tz=TZ)
    idx = pd.date_range(start, (start.tz_localize(None) + pd.offsets.MonthBegin(1)).tz_localize(TZ), freq="15min",
                        inclusive="left")
    hour = idx.hour.to_numpy()
    f = np.where((hour >= 8) & (hour < 20), kwh, kwh / 4)  # a day-shift plant
    return pd.DataFrame({"forecast": f, "lower80": f * 0.9, "upper80": f * 1.1, "lower95": f * 0.8,
                         "upper95": f * 1.2}, index=idx)


def test_bands_add_up_and_are_priced_by_the_tariff_code():
    s = shape()
    view = purchase_view(s, SICHUAN, "2026-11", TZ)
    reference = energy_cost(s["forecast"], SICHUAN, TZ)
    assert {b.band for b in view.bands} == set(reference.index) - {"total"}
    for b in view.bands:
        assert b.cost == Decimal(repr(float(reference.loc[b.band, "energy_cost"]))).quantize(Decimal("0.01"))
        assert b.kwh_low95 <= b.kwh_low80 <= b.kwh <= b.kwh_high80 <= b.kwh_high95
        assert b.cost_low95 <= b.cost_low80 <= b.cost <= b.cost_high80 <= b.cost_high95
    assert view.total.kwh == sum(b.kwh for b in view.bands)
    assert view.total.cost == sum(b.cost for b in view.bands)
    assert abs(float(view.total.kwh) - s["forecast"].sum()) < 0.1 * len(view.bands)
    assert abs(float(view.total.cost) - float(reference.loc["total", "energy_cost"])) <= 0.01 * len(view.bands)
    assert view.days == 30
    assert view.intervals == 30 * 96
    assert view.currency == SICHUAN.currency
    peak_like = max(view.bands, key=lambda b: b.cost / b.kwh if b.kwh else 0)
    cheap = min(view.bands, key=lambda b: b.cost / b.kwh if b.kwh else 10**9)
    assert peak_like.cost / peak_like.kwh > cheap.cost / cheap.kwh  # the bands really are priced differently


def test_bad_shapes_are_named():
    s = shape()
    with pytest.raises(ServiceError, match=r"column 'upper80': nan"):
        purchase_view(s.assign(upper80=s["upper80"].where(s.index != s.index[5])), SICHUAN, "2026-11", TZ)
    with pytest.raises(ServiceError, match="-1.0 is not a non-negative"):
        purchase_view(s.assign(lower95=-1.0), SICHUAN, "2026-11", TZ)
    with pytest.raises(ServiceError, match="outside month 2026-12"):
        purchase_view(s, SICHUAN, "2026-12", TZ)
    with pytest.raises(ServiceError, match="lacks column"):
        purchase_view(s.drop(columns="lower80"), SICHUAN, "2026-11", TZ)
