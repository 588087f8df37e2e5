"""Alert e-mail benchmark: from the reading that takes a demand window over its limit to the e-mail at the SMTP server.

A real gateway on embedded stores (pipeline with its outbox, migrated SQLite registry, the scheduler running the
gateway's own jobs from gateway/jobs.py, the notifier with an e-mail channel) and a real aiosmtpd server on loopback.
N customers (default 20), each with a meter, a contract of 2000 kW (warning at 0.9 x 1.05 x 2000 = 1890 kW) and an
account manager with an e-mail address. Each meter reports its energy register and power every second, on its
own phase, at 1000 kW (with history at 10 s from a minute before the running window, so the window has its start);
at a staggered moment each jumps to 6000 kW, early enough in the window for the projection to cross the limit.
That reading makes the `demand_projection` job (every DEMAND_PROJECTION_INTERVAL_S) open a `demand_projected`
alert, and the `notify_send` job (every notify.send_interval_s) mails the account manager.
Latency = the e-mail's arrival at the SMTP server minus the jump reading's source time (wall clock).

Baseline in the same run: the bare SMTP send (smtplib to the same server, one connection per message, as the
notifier does), N times. Also: a demand_projection run over the N accounts, timed (median of 5), and the two legs
(reading to alert opened, alert opened to e-mail). An account without mail is logged with its projection.

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/alert_email.py [--alerts 20] [--send-interval 5] [--spacing 2.1] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import smtplib
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.controller import Controller  # noqa: E402

from collectors.reading import ACTIVE_ENERGY_IMPORT_KWH, ACTIVE_POWER_KW, Quality, Reading  # noqa: E402

TZ = "Asia/Shanghai"
BASE_KW, HIGH_KW, CONTRACT_KW = 1000.0, 6000.0, 2000.0
# A jump to 6000 kW takes the window over 1890 kW while (1000 e + 6000 (15 - e)) / 15 min > 1890: e < 12.3 min.
LAST_JUMP_S = 11 * 60
HISTORY_STEP_S = 10


def log(msg: str) -> None:
    print(f"[alert_email] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler: the arrival time (ns, wall clock) of the first message to each recipient."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        now = time.time_ns()
        with self.lock:
            self.count += 1
            for rcpt in envelope.rcpt_tos:
                self.first.setdefault(rcpt, now)
        return "250 OK"


def config(folder: Path, n: int, smtp_port: int, send_interval: float) -> str:
    parts = [f'[gateway]\ndata_dir = "{folder / "state"}"\nenvironment = "development"\nrun_scheduler = true\n'
             f'collect = false\ntimezone = "{TZ}"\n',
             "[api]\nenabled = false\n",
             f'[notify]\nsend_interval_s = {send_interval}\nlanguage = "en"\n',
             f'[notify.channels.mail]\ntype = "email"\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
             'sender = "alerts@bench.example"\n']
    for i in range(1, n + 1):
        c = f"c{i:02d}"
        parts.append(f'[[customers]]\nid = "{c}"\nname = "Plant {i}"\ntimezone = "{TZ}"\nlanguage = "en"\n')
        parts.append(f'[[sites]]\nid = "{c}-site"\ncustomer = "{c}"\n')
        parts.append(f'[[meters]]\nid = "{c}-m1"\nsite = "{c}-site"\ndevice = "{c}-dev"\n')
        parts.append(f'[[devices]]\ntype = "modbus"\nname = "{c}-dev"\nhost = "127.0.0.1"\nport = 1\nunit = {i}\n'
                     'profile = "generic"\n')
    return "\n".join(parts)


def seed_registry(gw: Any, n: int) -> None:
    """A contract and an account manager with an e-mail address for every customer."""
    from sqlalchemy import select

    from crm_bridge.registry.models import AccountManager, Contract, Customer, ManagerAssignment

    with gw.db() as s:
        for i in range(1, n + 1):
            c = s.scalar(select(Customer).where(Customer.code == f"c{i:02d}"))
            m = AccountManager(code=f"am-c{i:02d}", name=f"Manager {i}", email=f"am-c{i:02d}@bench.example")
            s.add_all([m, ManagerAssignment(manager=m, customer=c),
                       Contract(customer=c, transformer_kva=3200.0, contract_demand_kw=CONTRACT_KW,
                                basic_charge_mode="contract", pf_standard=0.9, tariff_id="guangdong-1-10kv")])
        s.commit()


class Meters:
    """Each customer's meter: an energy register integrating its load, and the load as power."""

    def __init__(self, n: int) -> None:
        self.devices = [f"c{i:02d}-dev" for i in range(1, n + 1)]
        self.kwh = {d: 100_000.0 for d in self.devices}
        self.kw = {d: BASE_KW for d in self.devices}
        self.t = {d: 0 for d in self.devices}

    def read(self, device: str, ts: int) -> list[Reading]:
        """The readings at `ts` (ns): the register advanced by the load since the last reading, and the power."""
        if self.t[device]:
            self.kwh[device] += self.kw[device] * (ts - self.t[device]) / 3.6e12
        self.t[device] = ts
        return [Reading(device, ACTIVE_ENERGY_IMPORT_KWH, self.kwh[device], "kWh", Quality.GOOD, ts, time.time_ns()),
                Reading(device, ACTIVE_POWER_KW, self.kw[device], "kW", Quality.GOOD, ts, time.time_ns())]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"p50": round(statistics.median(values), 3), "p95": round(pct(values, 0.95), 3),
            "max": round(max(values), 3)}


def alert_times(gw: Any) -> dict[str, float]:
    """When each account's demand_projected alert was opened (Unix time)."""
    from sqlalchemy import select

    from crm_bridge.registry.models import Alert

    with gw.db() as s:
        rows = s.execute(select(Alert.customer_code, Alert.opened_at).where(Alert.type == "demand_projected"))
        return {code: at.timestamp() for code, at in rows}


def smtp_baseline(port: int, n: int) -> list[float]:
    """Seconds per bare smtplib send (connect, one message, quit) to the same server."""
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "alerts@bench.example", "baseline@bench.example", f"baseline {i}"
        msg.set_content("Demand in the 15-min window is heading over the limit.")
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.send_message(msg)
        out.append(time.perf_counter() - t0)
    return out


def wait_for_window(need_s: float) -> datetime:
    """Sleep until the running window has had 65 s and the jumps (`need_s`) end by LAST_JUMP_S; return its start."""
    from crm_bridge.alerts.projection import demand_window

    while True:
        now = datetime.now(UTC)
        start, end = demand_window(now, TZ)
        elapsed = (now - start).total_seconds()
        if 65 <= elapsed <= LAST_JUMP_S - need_s:
            return start
        wait = 65 - elapsed if elapsed < 65 else (end - now).total_seconds() + 65
        log(f"waiting {wait:.0f} s for a window with room for every jump")
        time.sleep(min(wait, 30))


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    from gateway.config import load_config
    from gateway.jobs import DEMAND_PROJECTION_INTERVAL_S, demand_projection_job, register_jobs
    from gateway.runtime import Gateway

    n = args.alerts
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    tmp = Path(tempfile.mkdtemp(prefix="alert-email-"))
    (tmp / "gateway.toml").write_text(config(tmp, n, smtp_port, args.send_interval))
    gw = Gateway.from_config(load_config(tmp / "gateway.toml"))
    seed_registry(gw, n)
    register_jobs(gw)
    meters = Meters(n)
    rng = random.Random(args.seed)
    need = 3 + (n + 1) * args.spacing + 5
    start = wait_for_window(need)
    # History from a minute before the window's start, at 10 s: the window's start register is known.
    t_hist = int((start - timedelta(seconds=60)).timestamp()) * 10**9
    now_ns = time.time_ns()
    history: list[Reading] = []
    while t_hist < now_ns - 10**9:
        for d in meters.devices:
            history += meters.read(d, t_hist)
        t_hist += HISTORY_STEP_S * 10**9
    gw.pipeline.start()
    gw.emit(history)
    gw.pipeline.flush(60)
    gw.scheduler.start()
    log(f"{n} accounts, window {start:%H:%M}, jobs: {', '.join(s.name for s in gw.scheduler.specs)}")
    t0 = time.time()
    jumps = {d: t0 + 3 + i * args.spacing + rng.uniform(0, args.spacing) for i, d in enumerate(meters.devices)}
    jumped: dict[str, int] = {}  # device -> source time (ns) of its first reading at HIGH_KW
    deadline = t0 + 3 + n * args.spacing + args.timeout
    # Each meter is polled every second on its own phase, so the jumps fall at every phase of the jobs' ticks.
    phase = {d: rng.uniform(0, 1) for d in meters.devices}
    next_poll = {d: t0 + phase[d] for d in meters.devices}
    try:
        while time.time() < deadline and len(inbox.first) < n:
            d = min(next_poll, key=lambda k: next_poll[k])
            time.sleep(max(0.0, next_poll[d] - time.time()))
            next_poll[d] += 1.0
            ts = time.time_ns()
            if d not in jumped and ts / 1e9 >= jumps[d]:
                meters.kw[d] = HIGH_KW
                jumped[d] = ts
            gw.emit(meters.read(d, ts))
        if len(inbox.first) < n:  # say why an account got no mail
            from crm_bridge.alerts.projection import evaluate_demand_projection
            from gateway.jobs import StoreReadings

            with gw.db() as s:
                for o in evaluate_demand_projection(s, StoreReadings(gw.store, gw.query.topology.meter_device),
                                                    datetime.now(UTC)):
                    log(f"{o.customer}: projected {o.projection.projected_kw} kW, {'; '.join(o.projection.problems)}")
        projection_runs = []
        for _ in range(5):
            t = time.perf_counter()
            demand_projection_job(gw)
            projection_runs.append(time.perf_counter() - t)
    finally:
        gw.scheduler.shutdown()
        gw.pipeline.stop(True, 30.0)
        gw.store.close()
        gw.outbox.close()
    opened = alert_times(gw)
    latencies, to_alert, to_mail = [], [], []
    for i, d in enumerate(meters.devices, start=1):
        got = inbox.first.get(f"am-c{i:02d}@bench.example")
        if got is not None and d in jumped:
            latencies.append((got - jumped[d]) / 1e9)
            if f"c{i:02d}" in opened:
                to_alert.append(opened[f"c{i:02d}"] - jumped[d] / 1e9)
                to_mail.append(got / 1e9 - opened[f"c{i:02d}"])
    alert_mails = inbox.count
    baseline = smtp_baseline(smtp_port, n)
    controller.stop()
    result: dict[str, Any] = {
        "bench": "alert_email",
        "alerts": n,
        "delivered": len(latencies),
        "missing": n - len(latencies),
        "latency_s": summary(latencies),
        "target_p95_s": 10.0,
        "reading_to_alert_s": summary(to_alert),
        "alert_to_email_s": summary(to_mail),
        "baseline_smtp_send_s": {"p50": round(statistics.median(baseline), 4), "p95": round(pct(baseline, 0.95), 4),
                                 "max": round(max(baseline), 4)},
        "projection_job_s": {"median": round(statistics.median(projection_runs), 4), "accounts": n},
        "config": {"demand_projection_interval_s": DEMAND_PROJECTION_INTERVAL_S,
                   "notify_send_interval_s": args.send_interval, "outbox_commit_interval_s":
                   gw.config.outbox.commit_interval_s, "poll_s": 1.0, "spacing_s": args.spacing, "seed": args.seed,
                   "window_start": start.astimezone(ZoneInfo(TZ)).isoformat()},
        "alert_emails_received": alert_mails,
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=20, help="accounts, one alert each (default 20)")
    ap.add_argument("--send-interval", type=float, default=5.0, help="notify.send_interval_s (default 5, the config's)")
    ap.add_argument("--spacing", type=float, default=2.1, help="seconds between two accounts' jumps")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds after the last jump to wait for mail")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
