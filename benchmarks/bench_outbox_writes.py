"""The outbox's cost in the group-commit writer alone: a MeterValues write with no events, with its events as
one ``executemany`` per statement (the outbox before bulk statements), and as bulk statements (now).

    python benchmarks/bench_outbox_writes.py [--stations 200] [--seconds 5] [--rounds 3]

A private durable Postgres; ``--stations`` trio tasks each submit ``write_statements`` with 4 meter-value rows
plus the events the 1.6 MeterValues path builds (``meter_values.recorded`` and ``transaction.updated``), modes
interleaved per round, each on a fresh database. Reports msg/s and Postgres CPU ms per message, median (range).
No replica, no network, no exporter: the write path only (bench_export.py measures end to end).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio

from benchmarks import harness
from csms.app import MIGRATIONS
from csms.outbox import derived_events, event_statement
from csms.outbox.catalogue import full_type
from csms.storage import Database, Statement
from csms.transactions import outbox_events
from csms.transactions.samples import SampledValue, sample_statements, samples_event

MODES = ("none", "executemany", "bulk")
_COLUMNS = "aggregatetype, aggregateid, type, station_id, payload, dedup_key"
# The outbox's statements before bulk statements (one execution per event, merged as executemany).
_PER_EVENT = f"""
INSERT INTO outbox ({_COLUMNS})
SELECT $1, $2, $3, $4, $5::jsonb, $6::text
WHERE $6::text IS NULL OR NOT EXISTS (SELECT 1 FROM outbox WHERE station_id = $4 AND dedup_key = $6::text)
"""
_PER_EVENT_UPDATED = f"""
INSERT INTO outbox ({_COLUMNS})
SELECT e.* FROM (
    SELECT 'transaction', t.id::text, 'csms.transaction.updated.v1', t.station_id,
           jsonb_build_object('transaction_id', t.id, 'station_id', t.station_id, 'meter_wh', $3::bigint,
                              'energy_so_far_wh', $3::bigint - t.meter_start, 'at', $4::text), $5::text
    FROM transactions t
    WHERE t.id = $1 AND t.station_id = $2 AND t.stop_received_at IS NULL AND $3::bigint >= t.meter_start
) AS e ({_COLUMNS})
WHERE e.dedup_key IS NULL
   OR NOT EXISTS (SELECT 1 FROM outbox o WHERE o.station_id = e.station_id AND o.dedup_key = e.dedup_key)
"""


def _statements(mode: str, station: str, tx: int, n: int) -> list[Statement]:
    now = datetime.now(UTC)
    measurands = ("Power.Active.Import", "Current.Import", "Voltage")
    samples = [SampledValue(timestamp=now, value=str(1000 + n))]
    samples += [SampledValue(timestamp=now, value="7", measurand=m) for m in measurands]
    out = sample_statements(station, 1, tx, now, "MeterValues", samples)
    event, key = samples_event(station, 1, tx, samples), f"tu:{tx}:{now.isoformat()}"
    if mode == "executemany":
        row = (event.aggregate_type, event.aggregate_id, full_type(event.name), station, event.data, event.dedup_key)
        out += [
            Statement(_PER_EVENT, row),
            Statement(_PER_EVENT_UPDATED, (tx, station, 1000 + n, now.isoformat(), key)),
        ]
    elif mode == "bulk":
        out += [
            event_statement(event),
            derived_events(outbox_events.UPDATED, tx, station, 1000 + n, now.isoformat(), key),
        ]
    return out


async def _prepare(url: str, stations: int) -> list[int]:
    async with Database.open(url, pool_size=2) as db:
        await db.migrate(MIGRATIONS)
        sql = (
            "INSERT INTO transactions (station_id, connector_id, id_tag, id_tag_status, meter_start, start_timestamp,"
            " start_received_at) VALUES ($1, 1, 'T', 'Accepted', 0, now(), now()) RETURNING id"
        )
        return [await db.fetchval(sql, f"W-{i}") for i in range(stations)]


async def _run(url: str, mode: str, txs: list[int], seconds: float, postgres_pid: int) -> tuple[float, float]:
    done = 0
    async with Database.open(url, pool_size=2) as db:
        meter = harness.CpuMeter({}, trees={"postgres": postgres_pid})
        deadline = trio.current_time() + seconds

        async def station(i: int) -> None:
            nonlocal done
            n = 0
            while trio.current_time() < deadline:
                n += 1
                await db.write_statements(_statements(mode, f"W-{i}", txs[i], n))
                done += 1

        meter.start()
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for i in range(len(txs)):
                nursery.start_soon(station, i)
        elapsed = trio.current_time() - started
        cpu_percent = meter.stop()["postgres"]
    return done / elapsed, cpu_percent * elapsed * 10 / max(done, 1)


def _spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    with harness.postgres() as pg:
        assert pg.pid is not None
        for round_no in range(args.rounds):
            for mode in MODES if round_no % 2 == 0 else MODES[::-1]:
                url = pg.create_database(f"outbox_writes_{mode}_{round_no}")
                txs = trio.run(_prepare, url, args.stations)
                rate, cpu = trio.run(_run, url, mode, txs, args.seconds, pg.pid)
                results[mode].append((rate, cpu))
                print(f"{mode:12s} round {round_no}: {rate:,.0f} msg/s, Postgres {cpu:.3f} ms CPU/msg", flush=True)
    rows: list[list[Any]] = [
        [mode, _spread([r for r, _ in runs], 0), _spread([c for _, c in runs], 3)] for mode, runs in results.items()
    ]
    print(harness.table(["events", "msg/s median (range)", "Postgres ms CPU/msg median (range)"], rows))


if __name__ == "__main__":
    main()
