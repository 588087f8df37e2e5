"""The durable outbox: order, bounds, counted drops, dead letters, survival across reopen."""

from __future__ import annotations

import time

from collectors.reading import Quality, Reading
from gateway.outbox import DropPolicy, Outbox


def _r(i: int, ts: int | None = None) -> Reading:
    return Reading("dev", "p", float(i), "kW", Quality.GOOD, source_ts=ts or 1_000 + i, gateway_ts=ts or time.time_ns())


def test_fifo_peek_ack_and_reopen(tmp_path):
    ob = Outbox(tmp_path / "ob.db")
    for i in range(0, 10, 2):  # five hand-overs of two readings
        ob.put([_r(i), _r(i + 1)])
    batch = ob.peek(4)
    assert [r.value for r in batch.readings] == [0.0, 1.0, 2.0, 3.0]
    # Nothing leaves before ack: a second peek sees the same readings.
    assert [r.value for r in ob.peek(4).readings] == [0.0, 1.0, 2.0, 3.0]
    ob.ack(batch.last_id)
    assert ob.depth == 6
    ob.close()
    again = Outbox(tmp_path / "ob.db")
    assert again.depth == 6
    assert [r.value for r in again.peek(100).readings] == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]


def test_readings_round_trip_every_field(tmp_path):
    ob = Outbox(tmp_path / "ob.db")
    r = Reading("电表 1", "active_power_kw", None, "kW", Quality.COMM_LOST, 123, 456, "客户", "site,1", "m=1")
    ob.put([r])
    assert ob.peek(1).readings == [r]


def test_peek_returns_whole_batches_and_at_least_one(tmp_path):
    ob = Outbox(tmp_path / "ob.db")
    ob.put([_r(i) for i in range(10)])
    ob.put([_r(i) for i in range(10, 13)])
    assert len(ob.peek(4).readings) == 10  # never splits a stored batch
    assert len(ob.peek(13).readings) == 13
    big = Outbox(tmp_path / "big.db")
    big.put([_r(i) for i in range(2500)], chunk=1000)
    assert [len(big.peek(1000).readings), big.depth] == [1000, 2500]


def test_drop_oldest_counts_every_drop(tmp_path):
    ob = Outbox(tmp_path / "ob.db", max_rows=5, policy=DropPolicy.DROP_OLDEST)
    ob.put([_r(i) for i in range(3)])
    ob.put([_r(i) for i in range(3, 8)])
    assert ob.depth == 5
    assert [r.value for r in ob.peek(10).readings] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert ob.drops == {"full_drop_oldest": 3}
    ob.close()
    assert Outbox(tmp_path / "ob.db").drops == {"full_drop_oldest": 3}  # counters survive a restart


def test_drop_newest_refuses_and_counts(tmp_path):
    ob = Outbox(tmp_path / "ob.db", max_rows=5, policy=DropPolicy.DROP_NEWEST)
    assert ob.put([_r(i) for i in range(4)]) == 4
    assert ob.put([_r(i) for i in range(4, 8)]) == 1
    assert [r.value for r in ob.peek(10).readings] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ob.drops == {"full_drop_newest": 3}


def test_age_bound_expires_and_counts(tmp_path):
    ob = Outbox(tmp_path / "ob.db", max_age_s=60)
    now = time.time_ns()
    ob.put([_r(1, ts=now - 120 * 10**9), _r(2, ts=now - 10 * 10**9)])
    assert ob.expire(now) == 1
    assert [r.value for r in ob.peek(10).readings] == [2.0]
    assert ob.drops == {"expired": 1}
    assert 9 < ob.oldest_age_s(now) < 11


def test_dead_letter_keeps_reading_and_reason(tmp_path):
    ob = Outbox(tmp_path / "ob.db")
    ob.dead_letter([_r(7)], "field type conflict")
    (reading, why), = ob.dead_letters()
    assert reading.value == 7.0
    assert why == "field type conflict"
    assert ob.drops == {"rejected": 1}


def test_requeue_dead_letters_puts_them_back_in_line(tmp_path):
    ob = Outbox(tmp_path / "ob.db")
    ob.put([_r(1)])
    ob.dead_letter([_r(7), _r(8)], "rejected")
    assert ob.requeue_dead_letters() == 2
    assert ob.dead_letters() == []
    assert [r.value for r in ob.peek(10).readings] == [1.0, 7.0, 8.0]
    assert ob.requeue_dead_letters() == 0


def test_outbox_cli_status_dead_letters_and_requeue(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from gateway.cli import app

    (tmp_path / "gateway.toml").write_text('[gateway]\ndata_dir = "state"\nenvironment = "development"\n')
    runner = CliRunner()
    r = runner.invoke(app, ["outbox", "status", "-c", str(tmp_path / "gateway.toml")])
    assert r.exit_code == 1
    assert "no outbox yet" in r.stderr
    ob = Outbox(tmp_path / "state" / "outbox.db")
    ob.put([_r(1), _r(2)])
    ob.dead_letter([_r(9)], "partial write: field type conflict")
    ob.close()
    r = runner.invoke(app, ["outbox", "status", "-c", str(tmp_path / "gateway.toml")])
    assert r.exit_code == 0, r.output
    status = json.loads(r.stdout)
    assert (status["waiting"], status["dead_letters"], status["dropped_by_reason"]) == (2, 1, {"rejected": 1})
    r = runner.invoke(app, ["outbox", "dead-letters", "-c", str(tmp_path / "gateway.toml")])
    assert json.loads(r.stdout)["reason"] == "partial write: field type conflict"
    r = runner.invoke(app, ["outbox", "requeue", "-c", str(tmp_path / "gateway.toml")])
    assert "1 readings moved back" in r.stdout
    assert Outbox(tmp_path / "state" / "outbox.db").depth == 3


_EXACT = [2**63 - 1, -(2**63), 2**53 + 1, 2**64 - 1, 0, -1]
_FLOATS = [3.0, 0.0, float(2**53), -7.5]


def _typed(values):
    return [(v, type(v).__name__) for v in values]


def test_values_keep_their_type_and_every_digit(tmp_path):
    """An int64/uint64 register stays an int digit for digit, a float (even 3.0) a float: put, reopen, peek."""
    values = [*_EXACT, *_FLOATS]
    ob = Outbox(tmp_path / "ob.db")
    ob.put([Reading("dev", "p", v, "kWh", Quality.GOOD, source_ts=i + 1, gateway_ts=time.time_ns())
            for i, v in enumerate(values)])
    ob.close()
    again = Outbox(tmp_path / "ob.db")
    assert _typed([r.value for r in again.peek(100).readings]) == _typed(values)
    # the paths that unpack and pack a stored batch again keep them too: trimming when full, dead letters, requeue
    small = Outbox(tmp_path / "small.db", max_rows=len(values) - 1)
    small.put([Reading("dev", "p", v, "kWh", Quality.GOOD, source_ts=i + 1) for i, v in enumerate(values)])
    small.put([Reading("dev", "p", 2**64 - 2, "kWh", Quality.GOOD, source_ts=99)])
    assert _typed([r.value for r in small.peek(100).readings]) == _typed([*values[2:], 2**64 - 2])
    again.dead_letter(again.peek(100).readings, "test")
    assert _typed([r.value for r, _ in again.dead_letters()]) == _typed(values)
    again.ack(again.peek(100).last_id)
    assert again.requeue_dead_letters() == len(values)
    assert _typed([r.value for r in again.peek(100).readings]) == _typed(values)


def test_an_integer_wider_than_64_bits_does_not_jam_the_queue(tmp_path):
    """msgpack has no such integer: it travels as an extension and comes back whole (the store then refuses it)."""
    ob = Outbox(tmp_path / "ob.db")
    wide = [2**64, -(2**63) - 1, 10**30]
    ob.put([Reading("dev", "p", v, "kWh", Quality.GOOD, source_ts=i + 1) for i, v in enumerate(wide)])
    assert _typed([r.value for r in ob.peek(10).readings]) == _typed(wide)


def test_rows_of_the_earlier_per_reading_format_are_still_read(tmp_path):
    """An outbox written before columnar rows (one msgpack tuple per reading) drains after an upgrade."""
    import sqlite3

    import msgpack

    ob = Outbox(tmp_path / "ob.db")
    ob.put([Reading("d", "p", 1.0, "kW", Quality.GOOD, source_ts=10, gateway_ts=10)])
    ob.close()
    old = [("d", "p", 2**63 + 1, "", "uncertain", 11, 11, "c", "s", "m"),
           ("e", "q", None, "V", "comm_lost", 12, 12, "", "", "")]
    with sqlite3.connect(tmp_path / "ob.db") as db:
        db.execute("INSERT INTO outbox_batches (n, first_source_ts, newest_gateway_ts, body) VALUES (2, 11, 12, ?)",
                   (msgpack.packb(old, use_bin_type=True),))
    again = Outbox(tmp_path / "ob.db")
    got = again.peek(100).readings
    assert got == [Reading("d", "p", 1.0, "kW", Quality.GOOD, 10, 10),
                   Reading("d", "p", 2**63 + 1, "", Quality.UNCERTAIN, 11, 11, "c", "s", "m"),
                   Reading("e", "q", None, "V", Quality.COMM_LOST, 12, 12)]
    assert [type(r.quality) for r in got] == [Quality] * 3


def test_columnar_rows_keep_every_field_of_mixed_devices(tmp_path):
    ob = Outbox(tmp_path / "ob.db")
    sent = [Reading(f"d{i % 3}", f"p{i % 2}", float(i) if i % 4 else i, "kW" if i < 5 else "V",
                    Quality.GOOD if i % 5 else Quality.BAD, 100 + i, 200 + i, "c", f"s{i % 2}", f"m{i % 3}")
            for i in range(10)]
    ob.put(sent[:1])  # a row of one reading: a column of one value is not mistaken for a repeated one
    ob.put(sent[1:])
    got = ob.peek(100).readings
    assert got == sent
    assert [type(r.value) for r in got] == [type(r.value) for r in sent]
