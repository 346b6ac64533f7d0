"""OCPP 2.0.1 Smart Charging (block K) and Reservation (block H) of a charging station:
SetChargingProfile, GetChargingProfiles + ReportChargingProfiles, ClearChargingProfile,
GetCompositeSchedule, NotifyChargingLimit/ClearedChargingLimit (over
`gateway.ocpp.smart_charging`), ReserveNow, CancelReservation and ReservationStatusUpdate (over
the site's reservations, `gateway.core.reservations`).

Answers: SetChargingProfile Accepted, or Rejected with a statusInfo naming the reason
(reasonCode InvalidProfile for a malformed profile, InvalidValue for one that cannot apply
here, e.g. a TxProfile without its transaction). GetChargingProfiles Accepted (then one
ReportChargingProfiles with every match, chargingLimitSource CSO) or NoProfiles.
ClearChargingProfile Accepted or Unknown. GetCompositeSchedule Rejected for an unknown EVSE.
ReserveNow per the site's answer (no evseId: the charger's one EVSE). CancelReservation
Accepted or Rejected. ReservationStatusUpdate Expired when a reservation runs out, Removed when
the connector faults; none when it is used (the transaction carries its id) or cancelled by
the CSMS.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from gateway.core.events import ReservationEnded
from gateway.core.reservations import ReservationEndReason
from gateway.ocpp import JsonObject
from gateway.ocpp.connection import after_answer
from gateway.ocpp.rpc import CallFailed
from gateway.ocpp.smart_charging import ProfileRefused, parse_rate_unit, timestamp
from gateway.smart_charging import ProfileError
from gateway.smart_charging.profile import PURPOSE_201, parse_time

if TYPE_CHECKING:
    from gateway.ocpp.v201.station import Station201

logger = logging.getLogger(__name__)

EVSE_ID: Final = 1
INBOUND_ACTIONS: Final = (
    "CancelReservation",
    "ClearChargingProfile",
    "GetChargingProfiles",
    "GetCompositeSchedule",
    "ReserveNow",
    "SetChargingProfile",
)
OUTBOUND_ACTIONS: Final = (
    "ClearedChargingLimit",
    "NotifyChargingLimit",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
)
_PURPOSE_FROM_201: Final = {name: purpose for purpose, name in PURPOSE_201.items()}
_UPDATE_STATUS: Final = {
    ReservationEndReason.EXPIRED: "Expired",
    ReservationEndReason.REMOVED: "Removed",
}

Handler = Callable[[JsonObject], Awaitable[JsonObject]]


def _rejected(reason: str, info: str) -> JsonObject:
    return {
        "status": "Rejected",
        "statusInfo": {"reasonCode": reason, "additionalInfo": info[:512]},
    }


def handlers(station: Station201) -> dict[str, Handler]:
    """The handlers of these actions for one station; also wires the station's EMS reports."""
    log = {"charger_id": station.charger_id}
    smart = station.smart_charging
    site = smart.site

    async def send(action: str, payload: JsonObject) -> None:
        try:
            await station.connection.call(action, payload)
        except CallFailed as error:
            logger.warning("%s failed: %s", action, error, extra=log)

    async def set_charging_profile(payload: JsonObject) -> JsonObject:
        try:
            profile = await smart.install(payload["chargingProfile"], int(payload["evseId"]))
        except ProfileError as error:
            logger.warning("SetChargingProfile rejected: %s", error, extra=log)
            return _rejected("InvalidProfile", str(error))
        except ProfileRefused as error:
            logger.warning("SetChargingProfile rejected: %s", error, extra=log)
            return _rejected("InvalidValue", str(error))
        logger.info("SetChargingProfile accepted", extra={**log, "profile_id": profile.id})
        return {"status": "Accepted"}

    async def get_charging_profiles(payload: JsonObject) -> JsonObject:
        criteria: dict[str, Any] = payload.get("chargingProfile") or {}
        evse_id = payload.get("evseId")
        ids = criteria.get("chargingProfileId")
        purpose = criteria.get("chargingProfilePurpose")
        stack_level = criteria.get("stackLevel")
        sources = criteria.get("chargingLimitSource")
        matches = [
            entry
            for entry in smart.profiles
            if (evse_id is None or entry.connector_id == evse_id)
            and (not ids or entry.profile.id in ids)
            and (purpose is None or entry.profile.purpose is _PURPOSE_FROM_201.get(purpose))
            and (stack_level is None or entry.profile.stack_level == stack_level)
            and (not sources or "CSO" in sources)  # every profile here came from the CSMS
        ]
        if not matches:
            return {"status": "NoProfiles"}
        request_id = int(payload["requestId"])
        by_evse: dict[int, list[JsonObject]] = {}
        for entry in matches:
            by_evse.setdefault(entry.connector_id, []).append(smart.report_json(entry))
        reports = sorted(by_evse.items())

        async def report() -> None:
            for index, (evse, profiles) in enumerate(reports):
                message: JsonObject = {
                    "requestId": request_id,
                    "chargingLimitSource": "CSO",
                    "evseId": evse,
                    "chargingProfile": profiles,
                }
                if index < len(reports) - 1:
                    message["tbc"] = True
                await send("ReportChargingProfiles", message)

        after_answer(report)
        return {"status": "Accepted"}

    async def clear_charging_profile(payload: JsonObject) -> JsonObject:
        criteria: dict[str, Any] = payload.get("chargingProfileCriteria") or {}
        purpose = criteria.get("chargingProfilePurpose")
        if purpose is not None and purpose not in _PURPOSE_FROM_201:
            return {"status": "Unknown"}  # e.g. ChargingStationExternalConstraints: none here
        removed = await smart.clear(
            profile_id=payload.get("chargingProfileId"),
            connector_id=criteria.get("evseId"),
            purpose=None if purpose is None else _PURPOSE_FROM_201[purpose],
            stack_level=criteria.get("stackLevel"),
        )
        return {"status": "Accepted" if removed else "Unknown"}

    async def get_composite_schedule(payload: JsonObject) -> JsonObject:
        evse_id = int(payload["evseId"])
        if evse_id not in (0, EVSE_ID):
            return _rejected("UnknownEvse", f"no EVSE {evse_id}")
        try:
            unit = parse_rate_unit(payload.get("chargingRateUnit"))
        except ProfileError as error:
            return _rejected("InvalidValue", str(error))
        start, schedule = smart.composite_json(evse_id, int(payload["duration"]), unit)
        schedule["evseId"] = evse_id
        schedule["scheduleStart"] = timestamp(start)
        return {"status": "Accepted", "schedule": schedule}

    async def reserve_now(payload: JsonObject) -> JsonObject:
        try:
            expires_at = parse_time(payload["expiryDateTime"], "expiryDateTime")
        except ProfileError as error:
            return _rejected("InvalidValue", str(error))
        group = payload.get("groupIdToken")
        status = await site.reserve(
            station.charger_id,
            int(payload.get("evseId") or 0),
            int(payload["id"]),
            str(payload["idToken"]["idToken"]),
            str(group["idToken"]) if isinstance(group, dict) else None,
            expires_at,
            "ocpp",
        )
        logger.info("ReserveNow %s", status.value, extra={**log, "id": payload["id"]})
        return {"status": status.value}

    async def cancel_reservation(payload: JsonObject) -> JsonObject:
        cancelled = await site.cancel_reservation(station.charger_id, int(payload["reservationId"]))
        return {"status": "Accepted" if cancelled else "Rejected"}

    async def ems_limit(allocated_a: float | None) -> None:
        if allocated_a is None:
            payload: JsonObject = {"chargingLimitSource": "EMS", "evseId": EVSE_ID}
            after_answer(lambda: send("ClearedChargingLimit", payload))
            return
        notify: JsonObject = {
            "chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": False},
            "evseId": EVSE_ID,
            "chargingSchedule": [
                {
                    "id": 0,
                    "startSchedule": timestamp(smart.now()),
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(allocated_a, 1)}],
                }
            ],
        }
        logger.info("EMS limits below the CSMS profile", extra={**log, "limit_a": allocated_a})
        after_answer(lambda: send("NotifyChargingLimit", notify))

    smart.ems_listener = ems_limit
    return {
        "SetChargingProfile": set_charging_profile,
        "GetChargingProfiles": get_charging_profiles,
        "ClearChargingProfile": clear_charging_profile,
        "GetCompositeSchedule": get_composite_schedule,
        "ReserveNow": reserve_now,
        "CancelReservation": cancel_reservation,
    }


def reservation_ended(station: Station201, event: ReservationEnded) -> None:
    """Tell the CSMS about a reservation that ended on its own (Expired, Removed)."""
    status = _UPDATE_STATUS.get(event.reason)
    if status is None:
        return
    payload: JsonObject = {
        "reservationId": event.reservation.reservation_id,
        "reservationUpdateStatus": status,
    }

    async def send() -> None:
        try:
            await station.connection.call("ReservationStatusUpdate", payload)
        except CallFailed as error:
            logger.warning(
                "ReservationStatusUpdate failed: %s",
                error,
                extra={"charger_id": station.charger_id},
            )

    after_answer(send)
