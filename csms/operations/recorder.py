"""Keeps the state behind operator operations: reservations, charging profiles, configuration, availability,
firmware and diagnostics jobs, remote starts and local-list versions.

Three kinds of input: a command about to be sent (`command_requested`: a 2.0.1 remote start is on record before
the station can act on it), a command the station answered (`command_completed`), and station messages that close the
loop (a StartTransaction that consumes a reservation or answers a remote start, a firmware status). The
first arrives on whichever replica served the API request, the second on the station's owner; both only touch
Postgres, so where they run does not matter.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from csms.operations.remote_start import remote_start_answered, remote_start_requested, take_remote_start
from csms.storage import Connection, Database, Statement, WriteOp

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
REMOTE_START_WINDOW_SECONDS = 600  # a StartTransaction this long after RemoteStartTransaction still matches

Payload = dict[str, Any]


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# -- write-op builders for station messages that close the loop (parts of one message's unit of work) ---------


def transaction_started_op(
    station_id: str, *, connector_id: int, id_tag: str, reservation_id: int | None, transaction_id: int
) -> WriteOp[bool]:
    """Consume the reservation a StartTransaction names and match a pending remote start; True if remotely
    started."""

    async def op(conn: Connection) -> bool:
        if reservation_id is not None:
            await conn.execute(
                "UPDATE reservations SET status = 'Used', transaction_id = $3, updated_at = now()"
                " WHERE station_id = $1 AND reservation_id = $2 AND status = 'Active'",
                station_id,
                reservation_id,
                transaction_id,
            )
        matched = await conn.fetchval(
            """
            UPDATE remote_starts SET transaction_id = $4 WHERE id = (
                SELECT id FROM remote_starts WHERE station_id = $1 AND id_tag = $2 AND transaction_id IS NULL
                  AND (connector_id IS NULL OR connector_id = $3)
                  AND requested_at > now() - make_interval(secs => $5)
                ORDER BY id LIMIT 1)
            RETURNING id
            """,
            station_id,
            id_tag,
            connector_id,
            transaction_id,
            REMOTE_START_WINDOW_SECONDS,
        )
        return matched is not None

    return op


_JOB_STATUS = (
    "UPDATE station_jobs SET status = $3, updated_at = now() WHERE id = ("
    " SELECT id FROM station_jobs WHERE station_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1)"
)
_RESERVATION_STATUS = (
    "UPDATE reservations SET status = $3, updated_at = now()"
    " WHERE station_id = $1 AND reservation_id = $2 AND status = 'Active'"
)


def job_status(station_id: str, kind: str, status: str) -> list[Statement]:
    """Tie a firmware/diagnostics/log status notification to the station's latest job of that kind."""
    return [Statement(_JOB_STATUS, (station_id, kind, status))]


def reservation_status(station_id: str, reservation_id: int, status: str) -> list[Statement]:
    """OCPP 2.0.1 ReservationStatusUpdate: the station ended a reservation (Expired, Removed)."""
    return [Statement(_RESERVATION_STATUS, (station_id, reservation_id, status))]


def remote_start_linked_op(station_id: str, remote_start_id: int, station_tx_id: str) -> WriteOp[bool]:
    """A 2.0.1 TransactionEvent named a remoteStartId: link the request to the station's transaction
    (idempotent: a retried event links the same request). True if the CSMS had asked for it."""

    async def op(conn: Connection) -> bool:
        return await take_remote_start(conn, station_id, remote_start_id, station_tx_id) is not None

    return op


class OperationsRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db
        v16 = {
            "ReserveNow": self._reserve_now,
            "CancelReservation": self._cancel_reservation,
            "SetChargingProfile": self._set_charging_profile,
            "ClearChargingProfile": self._clear_charging_profile,
            "GetCompositeSchedule": self._composite_schedule,
            "GetConfiguration": self._get_configuration,
            "ChangeConfiguration": self._change_configuration,
            "ChangeAvailability": self._change_availability,
            "UpdateFirmware": self._update_firmware,
            "GetDiagnostics": self._get_diagnostics,
            "RemoteStartTransaction": self._remote_start,
            "SendLocalList": self._send_local_list,
            "GetLocalListVersion": self._get_local_list_version,
        }
        v201 = {"RequestStartTransaction": self._request_start_answered}
        self._effects = {"ocpp1.6": v16, "ocpp2.0.1": v201}

    async def command_requested(self, record: Payload) -> None:
        """Before a command is sent: a 2.0.1 remote start goes on record, so the TransactionEvent that may
        follow at once can be linked to it."""
        if (record["protocol"], record["action"]) != ("ocpp2.0.1", "RequestStartTransaction"):
            return
        p = record["payload"]

        async def op(conn: Connection) -> None:
            await remote_start_requested(
                conn, record["station_id"], p["remoteStartId"], p["idToken"], p.get("evseId"), record["id"]
            )

        try:
            await self._db.transaction(op)
        except Exception:
            log.exception("recording a remote start failed", extra={"command_id": record["id"]})

    async def command_completed(self, record: Payload) -> None:
        """Apply what a completed command changed at the station (only answered commands get here)."""
        effect = self._effects.get(record["protocol"], {}).get(record["action"])
        if effect is None or record["status"] != "completed":
            return
        try:
            await effect(record["station_id"], record["payload"], record["result"] or {}, record["id"])
        except Exception:
            # The command itself succeeded; a failed bookkeeping write must not turn it into an error.
            log.exception("recording a command's effect failed", extra={"command_id": record["id"]})

    # -- effects of answered commands -------------------------------------------------------------------------

    async def _reserve_now(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        status = "Active" if r.get("status") == "Accepted" else r.get("status", "Rejected")
        await self._db.execute(
            """
            INSERT INTO reservations (station_id, reservation_id, connector_id, id_tag, parent_id_tag, expiry_date,
                status, command_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (station_id, reservation_id) DO UPDATE SET connector_id = EXCLUDED.connector_id,
                id_tag = EXCLUDED.id_tag, parent_id_tag = EXCLUDED.parent_id_tag,
                expiry_date = EXCLUDED.expiry_date, status = EXCLUDED.status, command_id = EXCLUDED.command_id,
                transaction_id = NULL, updated_at = now()
            """,
            station,
            p["reservationId"],
            p["connectorId"],
            p["idTag"],
            p.get("parentIdTag"),
            _ts(p["expiryDate"]),
            status,
            command_id,
        )

    async def _cancel_reservation(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await self._db.execute(
                "UPDATE reservations SET status = 'Cancelled', updated_at = now()"
                " WHERE station_id = $1 AND reservation_id = $2 AND status = 'Active'",
                station,
                p["reservationId"],
            )

    async def _set_charging_profile(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") != "Accepted":
            return
        profile = p["csChargingProfiles"]

        async def replace(conn: Connection) -> None:
            # OCPP 1.6 3.13.2: a new profile replaces one with the same id, or the same stack level and purpose
            # on the same connector.
            await conn.execute(
                "DELETE FROM charging_profiles WHERE station_id = $1 AND (charging_profile_id = $2"
                " OR (connector_id = $3 AND stack_level = $4 AND purpose = $5))",
                station,
                profile["chargingProfileId"],
                p["connectorId"],
                profile["stackLevel"],
                profile["chargingProfilePurpose"],
            )
            await conn.execute(
                "INSERT INTO charging_profiles (station_id, charging_profile_id, connector_id, stack_level, purpose,"
                " kind, transaction_id, profile, command_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
                station,
                profile["chargingProfileId"],
                p["connectorId"],
                profile["stackLevel"],
                profile["chargingProfilePurpose"],
                profile["chargingProfileKind"],
                profile.get("transactionId"),
                orjson.dumps(profile).decode(),
                command_id,
            )

        await self._db.transaction(replace)

    async def _clear_charging_profile(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") != "Accepted":
            return
        await self._db.execute(
            """
            DELETE FROM charging_profiles WHERE station_id = $1
              AND ($2::integer IS NULL OR charging_profile_id = $2)
              AND ($3::integer IS NULL OR connector_id = $3)
              AND ($4::text IS NULL OR purpose = $4)
              AND ($5::integer IS NULL OR stack_level = $5)
            """,
            station,
            p.get("id"),
            p.get("connectorId"),
            p.get("chargingProfilePurpose"),
            p.get("stackLevel"),
        )

    async def _composite_schedule(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        await self._db.execute(
            "INSERT INTO composite_schedules (station_id, connector_id, duration, result, command_id)"
            " VALUES ($1, $2, $3, $4::jsonb, $5)",
            station,
            p["connectorId"],
            p["duration"],
            orjson.dumps(r).decode(),
            command_id,
        )

    async def _get_configuration(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        rows = [(station, k["key"], k.get("value"), k.get("readonly"), True) for k in r.get("configurationKey", [])]
        rows += [(station, key, None, None, False) for key in r.get("unknownKey", [])]
        if rows:
            await self._upsert_configuration(rows)

    async def _change_configuration(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") in ("Accepted", "RebootRequired"):
            await self._upsert_configuration([(station, p["key"], p["value"], False, True)])

    async def _upsert_configuration(self, rows: list[tuple[Any, ...]]) -> None:
        async def upsert(conn: Connection) -> None:
            await conn.executemany(
                """
                INSERT INTO station_configuration (station_id, key, value, readonly, known)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (station_id, key) DO UPDATE SET value = EXCLUDED.value,
                    readonly = coalesce(EXCLUDED.readonly, station_configuration.readonly),
                    known = EXCLUDED.known, reported_at = now()
                """,
                rows,
            )

        await self._db.transaction(upsert)

    async def _change_availability(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        await self._db.execute(
            """
            INSERT INTO connector_availability (station_id, connector_id, availability, answer) VALUES ($1, $2, $3, $4)
            ON CONFLICT (station_id, connector_id) DO UPDATE SET availability = EXCLUDED.availability,
                answer = EXCLUDED.answer, requested_at = now()
            """,
            station,
            p["connectorId"],
            p["type"],
            r.get("status", ""),
        )

    async def _update_firmware(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        await self._db.execute(
            "INSERT INTO station_jobs (station_id, kind, location, status, command_id)"
            " VALUES ($1, 'firmware', $2, 'Requested', $3)",
            station,
            p["location"],
            command_id,
        )

    async def _get_diagnostics(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        # No fileName in the answer means the station has no diagnostics to upload.
        status = "Requested" if r.get("fileName") else "NothingToUpload"
        await self._db.execute(
            "INSERT INTO station_jobs (station_id, kind, location, file_name, status, command_id)"
            " VALUES ($1, 'diagnostics', $2, $3, $4, $5)",
            station,
            p["location"],
            r.get("fileName"),
            status,
            command_id,
        )

    async def _remote_start(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await self._db.execute(
                "INSERT INTO remote_starts (station_id, connector_id, id_tag, command_id) VALUES ($1, $2, $3, $4)",
                station,
                p.get("connectorId"),
                p["idTag"],
                command_id,
            )

    async def _request_start_answered(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        async def op(conn: Connection) -> None:
            await remote_start_answered(conn, command_id, r)

        await self._db.transaction(op)

    async def _send_local_list(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await self._db.execute(
                """
                INSERT INTO local_list_versions (station_id, sent_version, update_type, synced_at)
                VALUES ($1, $2, $3, now())
                ON CONFLICT (station_id) DO UPDATE SET sent_version = EXCLUDED.sent_version,
                    update_type = EXCLUDED.update_type, synced_at = now()
                """,
                station,
                p["listVersion"],
                p["updateType"],
            )

    async def _get_local_list_version(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        await self._db.execute(
            """
            INSERT INTO local_list_versions (station_id, reported_version, reported_at) VALUES ($1, $2, now())
            ON CONFLICT (station_id) DO UPDATE SET reported_version = EXCLUDED.reported_version, reported_at = now()
            """,
            station,
            r.get("listVersion"),
        )

    async def number_of_connectors(self, station_id: str) -> int | None:
        """The station's NumberOfConnectors configuration key, if a GetConfiguration reported a number."""
        value = await self._db.fetchval(
            "SELECT value FROM station_configuration WHERE station_id = $1 AND key = 'NumberOfConnectors' AND known",
            station_id,
        )
        if value is None or not (value.isascii() and value.strip().isdigit()):
            return None
        return int(value)

    async def expire_reservations(self) -> int:
        """Leader job."""
        result = await self._db.execute(
            "UPDATE reservations SET status = 'Expired', updated_at = now()"
            " WHERE status = 'Active' AND expiry_date < now()"
        )
        return int(result.rsplit(" ", 1)[-1])
