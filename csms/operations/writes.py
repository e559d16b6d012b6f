"""The row writes both protocols' command effects share: one reservation, profile, availability, job and
local-list model, whichever version's payload it came from (recorder.py maps 1.6, effects_v201.py 2.0.1).

A target is (evse_id, connector_id) with 0 meaning "not at this level": 1.6 (0, connector), 2.0.1 (evse, 0)
or, for availability, (evse, connector); (0, 0) is the whole station in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from csms.storage import Connection, Database

Payload = dict[str, Any]


@dataclass(frozen=True)
class Reservation:
    reservation_id: int
    evse_id: int
    connector_id: int
    id_tag: str
    parent_id_tag: str | None
    expiry_date: datetime
    answer: str  # the station's ReserveNow status
    protocol: str = "ocpp1.6"
    id_token_type: str | None = None
    connector_type: str | None = None


async def upsert_reservation(db: Database, station: str, r: Reservation, command_id: int) -> None:
    """A ReserveNow the station answered; a reservationId sent again replaces the earlier one."""
    status = "Active" if r.answer == "Accepted" else r.answer
    await db.execute(
        """
        INSERT INTO reservations (station_id, reservation_id, evse_id, connector_id, id_tag, parent_id_tag,
            expiry_date, status, command_id, protocol, id_token_type, connector_type)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (station_id, reservation_id) DO UPDATE SET evse_id = EXCLUDED.evse_id,
            connector_id = EXCLUDED.connector_id, id_tag = EXCLUDED.id_tag, parent_id_tag = EXCLUDED.parent_id_tag,
            expiry_date = EXCLUDED.expiry_date, status = EXCLUDED.status, command_id = EXCLUDED.command_id,
            protocol = EXCLUDED.protocol, id_token_type = EXCLUDED.id_token_type,
            connector_type = EXCLUDED.connector_type, transaction_id = NULL, updated_at = now()
        """,
        station,
        r.reservation_id,
        r.evse_id,
        r.connector_id,
        r.id_tag,
        r.parent_id_tag,
        r.expiry_date,
        status,
        command_id,
        r.protocol,
        r.id_token_type,
        r.connector_type,
    )


async def cancel_reservation(db: Database, station: str, reservation_id: int) -> None:
    await db.execute(
        "UPDATE reservations SET status = 'Cancelled', updated_at = now()"
        " WHERE station_id = $1 AND reservation_id = $2 AND status = 'Active'",
        station,
        reservation_id,
    )


@dataclass(frozen=True)
class StoredProfile:
    profile_id: int
    evse_id: int
    connector_id: int
    stack_level: int
    purpose: str
    kind: str
    profile: Payload
    protocol: str = "ocpp1.6"
    transaction_id: int | None = None  # 1.6: the CSMS's integer id
    station_tx_id: str | None = None  # 2.0.1: the station's transactionId


async def store_profile(db: Database, station: str, p: StoredProfile, command_id: int) -> None:
    """An accepted SetChargingProfile replaces the profile with the same id, or the same stack level and purpose on
    the same target (OCPP 1.6 3.13.2; 2.0.1 K01.FR.05/06)."""

    async def replace(conn: Connection) -> None:
        await conn.execute(
            "DELETE FROM charging_profiles WHERE station_id = $1 AND (charging_profile_id = $2"
            " OR (evse_id = $3 AND connector_id = $4 AND stack_level = $5 AND purpose = $6))",
            station,
            p.profile_id,
            p.evse_id,
            p.connector_id,
            p.stack_level,
            p.purpose,
        )
        await conn.execute(
            "INSERT INTO charging_profiles (station_id, charging_profile_id, evse_id, connector_id, stack_level,"
            " purpose, kind, transaction_id, station_tx_id, protocol, profile, command_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)",
            station,
            p.profile_id,
            p.evse_id,
            p.connector_id,
            p.stack_level,
            p.purpose,
            p.kind,
            p.transaction_id,
            p.station_tx_id,
            p.protocol,
            orjson.dumps(p.profile).decode(),
            command_id,
        )

    await db.write(replace)  # group-committed: a site round's profiles (tens at once) share commits


async def clear_profiles(
    db: Database,
    station: str,
    *,
    profile_id: int | None,
    evse_id: int | None,
    connector_id: int | None,
    purpose: str | None,
    stack_level: int | None,
) -> None:
    """An accepted ClearChargingProfile: every criterion given must match (None: any)."""
    await db.execute(
        """
        DELETE FROM charging_profiles WHERE station_id = $1
          AND ($2::integer IS NULL OR charging_profile_id = $2)
          AND ($3::integer IS NULL OR evse_id = $3)
          AND ($4::integer IS NULL OR connector_id = $4)
          AND ($5::text IS NULL OR purpose = $5)
          AND ($6::integer IS NULL OR stack_level = $6)
        """,
        station,
        profile_id,
        evse_id,
        connector_id,
        purpose,
        stack_level,
    )


async def add_composite_schedule(
    db: Database, station: str, evse_id: int, connector_id: int, duration: int, answer: Payload, command_id: int
) -> None:
    await db.execute(
        "INSERT INTO composite_schedules (station_id, evse_id, connector_id, duration, result, command_id)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
        station,
        evse_id,
        connector_id,
        duration,
        orjson.dumps(answer).decode(),
        command_id,
    )


async def set_connector_availability(
    db: Database, station: str, connector_id: int, availability: str, answer: str
) -> None:
    """A 1.6 ChangeAvailability answer (connector 0: the station)."""
    await db.execute(
        """
        INSERT INTO connector_availability (station_id, connector_id, availability, answer) VALUES ($1, $2, $3, $4)
        ON CONFLICT (station_id, connector_id) DO UPDATE SET availability = EXCLUDED.availability,
            answer = EXCLUDED.answer, requested_at = now()
        """,
        station,
        connector_id,
        availability,
        answer,
    )


async def set_evse_availability(
    db: Database, station: str, evse_id: int, connector_id: int, availability: str, answer: str
) -> None:
    """A 2.0.1 ChangeAvailability answer: the station (0, 0), an EVSE (n, 0) or one of its connectors."""
    await db.execute(
        """
        INSERT INTO evse_availability (station_id, evse_id, connector_id, availability, answer)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (station_id, evse_id, connector_id) DO UPDATE SET availability = EXCLUDED.availability,
            answer = EXCLUDED.answer, requested_at = now()
        """,
        station,
        evse_id,
        connector_id,
        availability,
        answer,
    )


@dataclass(frozen=True)
class Job:
    kind: str  # firmware, diagnostics (1.6) or log (2.0.1)
    location: str
    status: str
    file_name: str | None = None
    protocol: str = "ocpp1.6"
    request_id: int | None = None  # 2.0.1: repeated by the station's status notifications


async def add_job(db: Database, station: str, job: Job, command_id: int) -> None:
    await db.execute(
        "INSERT INTO station_jobs (station_id, kind, location, file_name, status, command_id, protocol, request_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        station,
        job.kind,
        job.location,
        job.file_name,
        job.status,
        command_id,
        job.protocol,
        job.request_id,
    )


async def local_list_sent(db: Database, station: str, version: int, update_type: str) -> None:
    await db.execute(
        """
        INSERT INTO local_list_versions (station_id, sent_version, update_type, synced_at)
        VALUES ($1, $2, $3, now())
        ON CONFLICT (station_id) DO UPDATE SET sent_version = EXCLUDED.sent_version,
            update_type = EXCLUDED.update_type, synced_at = now()
        """,
        station,
        version,
        update_type,
    )


async def local_list_reported(db: Database, station: str, version: int | None) -> None:
    await db.execute(
        """
        INSERT INTO local_list_versions (station_id, reported_version, reported_at) VALUES ($1, $2, now())
        ON CONFLICT (station_id) DO UPDATE SET reported_version = EXCLUDED.reported_version, reported_at = now()
        """,
        station,
        version,
    )
