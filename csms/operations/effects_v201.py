"""What an answered OCPP 2.0.1 command changed at the station, mapped onto the model 1.6 uses (writes.py).

2.0.1 targets EVSEs rather than connectors, names tokens with a type, and ties firmware and log jobs to a
requestId; those are kept beside the shared fields. RequestStartTransaction has its own table (remote_start.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from csms.operations import writes
from csms.operations.remote_start import remote_start_answered
from csms.storage import Connection, Database

Payload = dict[str, Any]
# (station_id, request payload, the station's answer, command id)
Effect = Callable[[str, Payload, Payload, int], Awaitable[None]]

PROTOCOL = "ocpp2.0.1"
_ACCEPTED = ("Accepted", "AcceptedCanceled")  # AcceptedCanceled: accepted, an earlier job was cancelled


def effects(db: Database) -> dict[str, Effect]:
    async def reserve_now(station: str, p: Payload, r: Payload, command_id: int) -> None:
        group = p.get("groupIdToken")
        reservation = writes.Reservation(
            reservation_id=p["id"],
            evse_id=p.get("evseId", 0),  # none: any EVSE of the station
            connector_id=0,
            id_tag=p["idToken"]["idToken"],
            parent_id_tag=group["idToken"] if group else None,
            expiry_date=datetime.fromisoformat(p["expiryDateTime"]),
            answer=r.get("status", "Rejected"),
            protocol=PROTOCOL,
            id_token_type=p["idToken"]["type"],
            connector_type=p.get("connectorType"),
        )
        await writes.upsert_reservation(db, station, reservation, command_id)

    async def cancel_reservation(station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await writes.cancel_reservation(db, station, p["reservationId"])

    async def set_charging_profile(station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") != "Accepted":
            return
        profile = p["chargingProfile"]
        stored = writes.StoredProfile(
            profile_id=profile["id"],
            evse_id=p["evseId"],
            connector_id=0,
            stack_level=profile["stackLevel"],
            purpose=profile["chargingProfilePurpose"],
            kind=profile["chargingProfileKind"],
            profile=profile,
            protocol=PROTOCOL,
            station_tx_id=profile.get("transactionId"),
        )
        await writes.store_profile(db, station, stored, command_id)

    async def clear_charging_profile(station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") != "Accepted":
            return
        criteria = p.get("chargingProfileCriteria", {})
        await writes.clear_profiles(
            db,
            station,
            profile_id=p.get("chargingProfileId"),
            evse_id=criteria.get("evseId"),
            connector_id=None,
            purpose=criteria.get("chargingProfilePurpose"),
            stack_level=criteria.get("stackLevel"),
        )

    async def composite_schedule(station: str, p: Payload, r: Payload, command_id: int) -> None:
        await writes.add_composite_schedule(db, station, p["evseId"], 0, p["duration"], r, command_id)

    async def change_availability(station: str, p: Payload, r: Payload, command_id: int) -> None:
        evse = p.get("evse", {})  # none: the whole station
        status = r.get("status", "")
        await writes.set_evse_availability(
            db, station, evse.get("id", 0), evse.get("connectorId", 0), p["operationalStatus"], status
        )

    async def update_firmware(station: str, p: Payload, r: Payload, command_id: int) -> None:
        status = r.get("status", "Rejected")
        job = writes.Job(
            kind="firmware",
            location=p["firmware"]["location"],
            status="Requested" if status in _ACCEPTED else status,
            protocol=PROTOCOL,
            request_id=p["requestId"],
        )
        await writes.add_job(db, station, job, command_id)

    async def get_log(station: str, p: Payload, r: Payload, command_id: int) -> None:
        status = r.get("status", "Rejected")
        job = writes.Job(
            kind="log",
            location=p["log"]["remoteLocation"],
            status="Requested" if status in _ACCEPTED else status,
            file_name=r.get("filename"),
            protocol=PROTOCOL,
            request_id=p["requestId"],
        )
        await writes.add_job(db, station, job, command_id)

    async def send_local_list(station: str, p: Payload, r: Payload, command_id: int) -> None:
        if r.get("status") == "Accepted":
            await writes.local_list_sent(db, station, p["versionNumber"], p["updateType"])

    async def get_local_list_version(station: str, p: Payload, r: Payload, command_id: int) -> None:
        await writes.local_list_reported(db, station, r.get("versionNumber"))

    async def request_start_answered(station: str, p: Payload, r: Payload, command_id: int) -> None:
        async def op(conn: Connection) -> None:
            await remote_start_answered(conn, command_id, r)

        await db.transaction(op)

    return {
        "ReserveNow": reserve_now,
        "CancelReservation": cancel_reservation,
        "SetChargingProfile": set_charging_profile,
        "ClearChargingProfile": clear_charging_profile,
        "GetCompositeSchedule": composite_schedule,
        "ChangeAvailability": change_availability,
        "UpdateFirmware": update_firmware,
        "GetLog": get_log,
        "SendLocalList": send_local_list,
        "GetLocalListVersion": get_local_list_version,
        "RequestStartTransaction": request_start_answered,
    }
