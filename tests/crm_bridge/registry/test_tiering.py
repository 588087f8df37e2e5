"""Tiering job: Pareto classes, overrides kept, every change in the history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from crm_bridge.registry.models import Customer
from crm_bridge.tiering import AccountMetrics, abc_classes, classify_accounts, set_override, tier_history

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_abc_classes_pareto() -> None:
    # 2 of 10 accounts carry 80 % of the score -> A; next to 95 % -> B.
    scores = {"a": 50.0, "b": 30.0, "c": 8.0, "d": 7.0, **{f"z{i}": 5 / 6 for i in range(6)}}
    got = abc_classes(scores)
    assert [k for k, v in got.items() if v == "A"] == ["a", "b"]
    assert sorted(k for k, v in got.items() if v == "B") == ["c", "d"]
    assert sum(v == "C" for v in got.values()) == 6


def test_job_keeps_override_and_records_history(session: Session) -> None:
    session.add_all([Customer(code=c, name=c) for c in ("BIG", "MID", "SMALL")])
    session.commit()
    m = {
        "BIG": AccountMetrics(8e6, 8e5, 2000), "MID": AccountMetrics(1.5e6, 1.5e5, 400),
        "SMALL": AccountMetrics(5e5, 5e4, 100),
    }
    assert classify_accounts(session, m, T0) == {"BIG": "A", "MID": "B", "SMALL": "C"}
    set_override(session, "SMALL", "A", "strategic: new plant next year", T0)
    # SMALL grows to the top; BIG shrinks: recomputed, the override stays in force.
    m2 = {"BIG": AccountMetrics(2e5, 2e4, 50), "MID": AccountMetrics(1.5e6, 1.5e5, 400),
          "SMALL": AccountMetrics(1.2e7, 1.2e6, 3000)}
    assert classify_accounts(session, m2, T0.replace(month=2)) == {"BIG": "C", "MID": "B", "SMALL": "A"}
    assert [(h.old_tier, h.new_tier) for h in tier_history(session, "SMALL")] == [(None, "C"), ("C", "A")]
    assert [(h.old_tier, h.new_tier) for h in tier_history(session, "BIG")] == [(None, "A"), ("A", "C")]
    assert [(h.old_tier, h.new_tier) for h in tier_history(session, "MID")] == [(None, "B")]  # unchanged: no row
    with pytest.raises(ValueError, match="reason"):
        set_override(session, "MID", "A", "  ", T0)
    with pytest.raises(ValueError, match="'Z'"):
        set_override(session, "MID", "Z", "x", T0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the reasons' texts do not depend on the database
def test_a_tier_change_reason_reads_in_the_readers_language(session: Session) -> None:
    from crm_bridge.tiering import reason_message, reason_text
    from gateway.portal import i18n
    from gateway.usecases.accounts import TierChangeRow
    from reports.model import TierChangeRow as ReportRow

    session.add(Customer(code="X", name="X"))
    session.commit()
    classify_accounts(session, {"X": AccountMetrics(1e6, 1e5, 100)}, T0)
    set_override(session, "X", "C", "plant <closing>", T0)
    rows = tier_history(session, "X")
    assert [r.reason for r in rows] == ["initial classification", "override: plant <closing>"]
    for lang, expected in (("en", ["first classification", "set by hand: plant <closing>"]),
                           ("zh", ["首次分级", "人工设定：plant <closing>"])):
        portal = []
        for r in rows:
            key, values = TierChangeRow.of(r).why
            assert key is not None
            portal.append(i18n.text(key, lang, **values))
        assert portal == expected
        assert [ReportRow("X", r.old_tier, r.new_tier, r.reason, r.at).reason_in(lang) for r in rows] == expected
    recomputed = reason_text("acct_reason_recomputed", score="0.512")
    assert reason_message(recomputed) == ("acct_reason_recomputed", {"score": "0.512"})
    assert ReportRow("X", "A", "B", recomputed, T0).reason_in("zh") == "重新计算（得分 0.512）"
    assert reason_message("moved by the CRM import") == (None, {}), "a text tiering did not write is shown as is"
