"""The performance page lists the month's production days with the uploaded shift counts and operating flags."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

from sqlalchemy import delete

from crm_bridge.registry.performance_models import ProductionDay
from tests.gateway.portal.test_languages import client_for


def test_the_production_table_shows_shifts_and_operating_when_given(portal, portal_world):
    last = date.fromisoformat(portal_world.today["beta"])
    first = last - timedelta(days=1) if last.day > 1 else last  # one day of the month: the first is the last
    try:
        with client_for(portal.url, "cust-beta") as c:
            html = c.get(f"/portal/c/beta/performance?to={last:%Y-%m}&lang=en").text
            token = html.split('name="csrf_token" value="')[1].split('"')[0]
            stopped = f"{first},40,t,0,no\n" if first != last else ""
            good = f"date,output,unit,shifts,operating\n{stopped}{last},55.5,t,2,yes\n".encode()
            r = c.post("/portal/c/beta/performance/production", data={"csrf_token": token, "kind": "actual"},
                       files={"file": ("shifts.csv", good)})
            assert r.status_code == 200, r.text[:500]
            html = c.get(f"/portal/c/beta/performance?to={last:%Y-%m}&lang=en").text
        table = html.split('id="perf-production"')[1].split("</table>")[0]
        assert '<th class="num">Shifts</th>' in table
        assert "<th>Operating</th>" in table
        row = table.split(f'data-day="{last}"')[1].split("</tr>")[0]
        assert re.search(r'class="num shifts">2<', row)
        assert unescape(re.search(r'class="operating">([^<]*)<', row).group(1)) == "yes"
        if first != last:
            row = table.split(f'data-day="{first}"')[1].split("</tr>")[0]
            assert re.search(r'class="operating">no<', row)
        assert "Optional columns shifts (0 to 3)" in html
    finally:
        with portal_world.gw.db() as s:
            s.execute(delete(ProductionDay).where(ProductionDay.customer_code == "beta",
                                                  ProductionDay.day.in_([first, last])))
            s.commit()
