"""Keeps the state behind operator operations: reservations, charging profiles, configuration, availability,
firmware, diagnostics and log jobs, remote starts and local-list versions, for 1.6 (here) and 2.0.1
(effects_v201.py) stations alike, in the same rows (writes.py).

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

from csms.operations import effects_v201, writes
from csms.operations.remote_start import remote_start_requested, take_remote_start
from csms.storage import Connection, Database, Fence

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
REMOTE_START_WINDOW_SECONDS = 600  # a StartTransaction this long after RemoteStartTransaction still matches

Payload = dict[str, Any]


class OperationsRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db
        v16: dict[str, effects_v201.Effect] = {
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
        self._effects = {"ocpp1.6": v16, "ocpp2.0.1": effects_v201.effects(db)}

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
        reservation = writes.Reservation(
            reservation_id=p["reservationId"],
            evse_id=0,
            connector_id=p["connectorId"],
            id_tag=p["idTag"],
            parent_id_tag=p.get("parentIdTag"),
            expiry_date=datetime.fromisoformat(p["expiryDate"]),
            answer=r.get("status", "Rejected"),
        )
        await writes.upsert_reservation(self._db, station, reservation, command_id)

    async def _cancel_reservation(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await writes.cancel_reservation(self._db, station, p["reservationId"])

    async def _set_charging_profile(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") != "Accepted":
            return
        profile = p["csChargingProfiles"]
        stored = writes.StoredProfile(
            profile_id=profile["chargingProfileId"],
            evse_id=0,
            connector_id=p["connectorId"],
            stack_level=profile["stackLevel"],
            purpose=profile["chargingProfilePurpose"],
            kind=profile["chargingProfileKind"],
            profile=profile,
            transaction_id=profile.get("transactionId"),
        )
        await writes.store_profile(self._db, station, stored, command_id)

    async def _clear_charging_profile(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") != "Accepted":
            return
        await writes.clear_profiles(
            self._db,
            station,
            profile_id=p.get("id"),
            evse_id=None,
            connector_id=p.get("connectorId"),
            purpose=p.get("chargingProfilePurpose"),
            stack_level=p.get("stackLevel"),
        )

    async def _composite_schedule(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        await writes.add_composite_schedule(self._db, station, 0, p["connectorId"], p["duration"], r, command_id)

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
        await writes.set_connector_availability(self._db, station, p["connectorId"], p["type"], r.get("status", ""))

    async def _update_firmware(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        await writes.add_job(self._db, station, writes.Job("firmware", p["location"], "Requested"), command_id)

    async def _get_diagnostics(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        # No fileName in the answer means the station has no diagnostics to upload.
        status = "Requested" if r.get("fileName") else "NothingToUpload"
        job = writes.Job("diagnostics", p["location"], status, file_name=r.get("fileName"))
        await writes.add_job(self._db, station, job, command_id)

    async def _remote_start(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await self._db.execute(
                "INSERT INTO remote_starts (station_id, connector_id, id_tag, command_id) VALUES ($1, $2, $3, $4)",
                station,
                p.get("connectorId"),
                p["idTag"],
                command_id,
            )

    async def _send_local_list(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await writes.local_list_sent(self._db, station, p["listVersion"], p["updateType"])

    async def _get_local_list_version(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        await writes.local_list_reported(self._db, station, r.get("listVersion"))

    # -- station messages that close the loop -----------------------------------------------------------------

    async def transaction_started(
        self, fence: Fence, *, connector_id: int, id_tag: str, reservation_id: int | None, transaction_id: int
    ) -> bool:
        """Consume the reservation it names and match a pending remote start; True if remotely started."""

        async def op(conn: Connection) -> bool:
            if reservation_id is not None:
                await writes.use_reservation(conn, fence.station_id, reservation_id, transaction_id)
            matched = await conn.fetchval(
                """
                UPDATE remote_starts SET transaction_id = $4 WHERE id = (
                    SELECT id FROM remote_starts WHERE station_id = $1 AND id_tag = $2 AND transaction_id IS NULL
                      AND (connector_id IS NULL OR connector_id = $3)
                      AND requested_at > now() - make_interval(secs => $5)
                    ORDER BY id LIMIT 1)
                RETURNING id
                """,
                fence.station_id,
                id_tag,
                connector_id,
                transaction_id,
                REMOTE_START_WINDOW_SECONDS,
            )
            return matched is not None

        return await self._db.write(op, fence=fence)

    async def remote_start_linked(self, fence: Fence, remote_start_id: int, station_tx_id: str) -> bool:
        """A 2.0.1 TransactionEvent named a remoteStartId: link the request to the station's transaction
        (idempotent: a retried event links the same request). True if the CSMS had asked for it."""

        async def op(conn: Connection) -> bool:
            return await take_remote_start(conn, fence.station_id, remote_start_id, station_tx_id) is not None

        return await self._db.write(op, fence=fence)

    async def job_status(self, fence: Fence, kind: str, status: str, request_id: int | None = None) -> None:
        """Tie a Firmware/Diagnostics/LogStatusNotification to its job: the one with the station's requestId
        (2.0.1), else the station's latest job of that kind (1.6, and 2.0.1 notifications without one)."""

        async def op(conn: Connection) -> None:
            await conn.execute(
                "UPDATE station_jobs SET status = $3, updated_at = now() WHERE id = ("
                " SELECT id FROM station_jobs WHERE station_id = $1 AND kind = $2"
                " AND ($4::integer IS NULL OR request_id = $4) ORDER BY id DESC LIMIT 1)",
                fence.station_id,
                kind,
                status,
                request_id,
            )

        await self._db.write(op, fence=fence)

    async def reservation_used(self, fence: Fence, reservation_id: int, transaction_id: int) -> None:
        """A 2.0.1 TransactionEvent named the reservation it charges on (a retried event changes nothing)."""

        async def op(conn: Connection) -> None:
            await writes.use_reservation(conn, fence.station_id, reservation_id, transaction_id)

        await self._db.write(op, fence=fence)

    async def reservation_status(self, fence: Fence, reservation_id: int, status: str) -> None:
        """OCPP 2.0.1 ReservationStatusUpdate: the station ended a reservation (Expired, Removed)."""

        async def op(conn: Connection) -> None:
            await conn.execute(
                "UPDATE reservations SET status = $3, updated_at = now()"
                " WHERE station_id = $1 AND reservation_id = $2 AND status = 'Active'",
                fence.station_id,
                reservation_id,
                status,
            )

        await self._db.write(op, fence=fence)

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
