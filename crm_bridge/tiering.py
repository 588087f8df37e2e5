"""ABC / pyramid tiering: score accounts by kWh, revenue and peak kW; keep manual overrides; record every change."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.ports import IntervalSource
from crm_bridge.registry.models import Customer, TierChange, TierRecord
from crm_bridge.registry.repo import customer_by_code

log = logging.getLogger(__name__)
TIERS = ("A", "B", "C")
WEIGHTS = {"kwh": 0.5, "revenue": 0.3, "peak_kw": 0.2}
# Why a tier changed: a message key (in the portal's and the reports' catalogues) -> its English wording. The
# registry keeps the English text (TierChange.reason); `reason_message` reads it back to the key and its values, so
# each reader sees the reason in their own language.
REASONS: dict[str, str] = {
    "acct_reason_initial": "initial classification",
    "acct_reason_recomputed": "recomputed (score {score})",
    "acct_reason_override": "override: {reason}",
}


def reason_text(key: str, **params: str) -> str:
    """The English reason recorded for `key` (one of REASONS) and its values."""
    return REASONS[key].format(**params)


def reason_message(reason: str) -> tuple[str | None, dict[str, str]]:
    """A recorded reason as its message key and values; (None, {}) for a text this module did not write."""
    for key, wording in REASONS.items():
        head, brace, rest = wording.partition("{")
        if not brace:
            if reason == wording:
                return key, {}
            continue
        name, _, tail = rest.partition("}")
        if reason.startswith(head) and reason.endswith(tail) and len(reason) >= len(head) + len(tail):
            return key, {name: reason[len(head):len(reason) - len(tail)]}
    return None, {}


@dataclass(frozen=True)
class AccountMetrics:
    """Annual figures of one account."""

    annual_kwh: float
    revenue: float
    peak_kw: float


def compute_metrics(session: Session, source: IntervalSource, now: datetime,
                    revenue: Callable[[str], float | None] | None = None) -> dict[str, AccountMetrics]:
    """Last 365 days' kWh and peak kW from the interval source; revenue from `revenue`.

    `revenue(code)` is the account's billed money over the last year (the caller sums its month bills: this package
    does not bill); where it gives None, or without it, the revenue recorded on the customer is used.
    """
    out: dict[str, AccountMetrics] = {}
    for c in session.scalars(select(Customer)):
        frame = source.customer_intervals(c.code, now - timedelta(days=365), now)
        kwh = float(frame["kwh"].sum()) if not frame.empty else 0.0
        peak = float(frame["kw"].max()) if not frame.empty and frame["kw"].notna().any() else 0.0
        billed = revenue(c.code) if revenue is not None else None
        out[c.code] = AccountMetrics(kwh, float(billed if billed is not None else c.annual_revenue or 0.0), peak)
    return out


def _scores(metrics: dict[str, AccountMetrics]) -> dict[str, float]:
    totals = {
        "kwh": sum(m.annual_kwh for m in metrics.values()),
        "revenue": sum(m.revenue for m in metrics.values()),
        "peak_kw": sum(m.peak_kw for m in metrics.values()),
    }
    scores = {}
    for code, m in metrics.items():
        vals = {"kwh": m.annual_kwh, "revenue": m.revenue, "peak_kw": m.peak_kw}
        scores[code] = sum(WEIGHTS[k] * (vals[k] / totals[k] if totals[k] > 0 else 0.0) for k in WEIGHTS)
    return scores


def abc_classes(scores: dict[str, float], a_share: float = 0.8, b_share: float = 0.95) -> dict[str, str]:
    """Pareto classes: accounts (by score, descending) until `a_share` of the total are A, until `b_share` B."""
    total = sum(scores.values())
    out: dict[str, str] = {}
    cum = 0.0
    for code, s in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
        before = cum / total if total > 0 else 1.0
        out[code] = "A" if before < a_share else "B" if before < b_share else "C"
        cum += s
    return out


def _record(session: Session, customer_id: int, old: str | None, new: str, now: datetime, key: str,
            **params: str) -> None:
    if old != new:
        session.add(TierChange(customer_id=customer_id, old_tier=old, new_tier=new, reason=reason_text(key, **params),
                               at=now))


def classify_accounts(
    session: Session, metrics: dict[str, AccountMetrics], now: datetime, a_share: float = 0.8, b_share: float = 0.95
) -> dict[str, str]:
    """The tiering job: recompute scores and tiers, keep overrides, log each effective change; returns tiers."""
    scores = _scores(metrics)
    classes = abc_classes(scores, a_share, b_share)
    effective: dict[str, str] = {}
    for code, tier in classes.items():
        customer = customer_by_code(session, code)
        rec = session.get(TierRecord, customer.id)
        if rec is None:
            rec = TierRecord(customer_id=customer.id, score=scores[code], computed=tier, updated_at=now)
            session.add(rec)
            _record(session, customer.id, None, rec.effective, now, "acct_reason_initial")
        else:
            old = rec.effective
            rec.score, rec.computed, rec.updated_at = scores[code], tier, now
            _record(session, customer.id, old, rec.effective, now, "acct_reason_recomputed",
                    score=f"{scores[code]:.3f}")
        effective[code] = rec.effective
    session.commit()
    log.info("tiering: %d accounts classified", len(effective))
    return effective


def set_override(session: Session, code: str, tier: str | None, reason: str, now: datetime) -> TierRecord:
    """Set (or clear with None) a manual tier override; a reason is mandatory."""
    if tier is not None and tier not in TIERS:
        raise ValueError(f"tier override {tier!r} for {code!r} is not one of {', '.join(TIERS)}")
    if not reason.strip():
        raise ValueError(f"tier override for {code!r} needs a reason")
    customer = customer_by_code(session, code)
    rec = session.get(TierRecord, customer.id)
    if rec is None:
        rec = TierRecord(customer_id=customer.id, score=0.0, computed="C", updated_at=now)
        session.add(rec)
        session.flush()
    old = rec.effective
    rec.override, rec.override_reason, rec.updated_at = tier, reason if tier else None, now
    _record(session, customer.id, old, rec.effective, now, "acct_reason_override", reason=reason)
    session.commit()
    return rec


def tier_history(session: Session, code: str) -> list[TierChange]:
    """Every tier change of customer `code`, oldest first."""
    customer = customer_by_code(session, code)
    return list(session.scalars(select(TierChange).where(TierChange.customer_id == customer.id)
                                .order_by(TierChange.id)))
