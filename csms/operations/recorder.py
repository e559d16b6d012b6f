"""Keeps the state behind operator operations: reservations, charging profiles, configuration, availability,
firmware, diagnostics and log jobs, remote starts and local-list versions, for 1.6 (here) and 2.0.1
(effects_v201.py) stations alike, in the same rows (writes.py).

Two kinds of input here: a command about to be sent (`command_requested`: a remote start is on record before
the station can act on it) and a command that finished (`command_completed`). Both arrive on
whichever replica served the API request and only touch Postgres, so where they run does not matter. Station
messages that close the loop (a transaction that uses a reservation or answers a remote start, a job status) are
write-op builders in station_messages.py, composed into that message's one write.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from csms.operations import effects_v201, writes
from csms.operations.remote_start import remote_start_requested
from csms.operations.station_messages import REMOTE_START_PENDING, REMOTE_START_WINDOW_SECONDS
from csms.storage import Connection, Database

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

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
            "SendLocalList": self._send_local_list,
            "GetLocalListVersion": self._get_local_list_version,
        }
        self._effects = {"ocpp1.6": v16, "ocpp2.0.1": effects_v201.effects(db)}

    async def command_requested(self, record: Payload) -> None:
        """Before a command is sent: a remote start goes on record, so the transaction that may follow at once
        (the station may send it before its answer is recorded) finds it: 2.0.1 by remoteStartId, 1.6 by tag."""
        action, p = (record["protocol"], record["action"]), record["payload"]
        try:
            if action == ("ocpp1.6", "RemoteStartTransaction"):
                await self._db.execute(
                    "INSERT INTO remote_starts (station_id, connector_id, id_tag, command_id) VALUES ($1, $2, $3, $4)",
                    record["station_id"],
                    p.get("connectorId"),
                    p["idTag"],
                    record["id"],
                )
            elif action == ("ocpp2.0.1", "RequestStartTransaction"):

                async def op(conn: Connection) -> None:
                    await remote_start_requested(
                        conn, record["station_id"], p["remoteStartId"], p["idToken"], p.get("evseId"), record["id"]
                    )

                await self._db.transaction(op)
        except Exception:
            log.exception("recording a remote start failed", extra={"command_id": record["id"]})

    async def remote_start_pending(self, station_id: str, id_tag: str, connector_id: int) -> bool:
        """Whether a 1.6 StartTransaction with this tag may answer a remote start (then it takes the composed
        write that links them). Causal: the request is on record before the station is asked."""
        found = await self._db.fetchval(
            REMOTE_START_PENDING, station_id, id_tag, connector_id, REMOTE_START_WINDOW_SECONDS
        )
        return found is not None

    async def command_completed(self, record: Payload) -> None:
        """Apply what a finished command changed at the station (its effect only if the station answered)."""
        if (record["protocol"], record["action"]) == ("ocpp1.6", "RemoteStartTransaction"):
            await self._remote_start_finished(record)
            return
        effect = self._effects.get(record["protocol"], {}).get(record["action"])
        if effect is None or record["status"] != "completed":
            return
        try:
            await effect(record["station_id"], record["payload"], record["result"] or {}, record["id"])
        except Exception:
            # The command itself succeeded; a failed bookkeeping write must not turn it into an error.
            log.exception("recording a command's effect failed", extra={"command_id": record["id"]})

    async def _remote_start_finished(self, record: Payload) -> None:
        """A 1.6 remote start the station refused, failed or never got is no remote start: its record goes
        (unless a transaction already took it). A timed-out one stays: the station may still have acted."""
        refused = record["status"] == "completed" and (record["result"] or {}).get("status") != "Accepted"
        if not (refused or record["status"] in ("failed", "offline")):
            return
        try:
            await self._db.execute(
                "DELETE FROM remote_starts WHERE command_id = $1 AND transaction_id IS NULL", record["id"]
            )
        except Exception:
            log.exception("withdrawing a remote start failed", extra={"command_id": record["id"]})

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

    async def _send_local_list(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await writes.local_list_sent(self._db, station, p["listVersion"], p["updateType"])

    async def _get_local_list_version(self, station: str, p: Payload, r: Payload, command_id: int) -> None:
        await writes.local_list_reported(self._db, station, r.get("listVersion"))

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
