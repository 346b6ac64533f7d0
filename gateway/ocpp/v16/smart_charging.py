"""OCPP 1.6 Smart Charging and Reservation profiles of a charge point: SetChargingProfile,
ClearChargingProfile, GetCompositeSchedule (over `gateway.ocpp.smart_charging`), ReserveNow and
CancelReservation (over the site's reservations, `gateway.core.reservations`).

Answers (1.6 §6): SetChargingProfile Accepted, or Rejected for a profile that cannot apply here
(a TxProfile without its transaction, a connector the charger does not have, a malformed
schedule: each logged with its reason). ClearChargingProfile Accepted when something was
removed, else Unknown. GetCompositeSchedule Rejected for an unknown connector. ReserveNow per
the site's answer (connectorId 0 reserves the charger's one connector: the gateway supports
ReserveConnectorZero). CancelReservation Accepted or Rejected (no such reservation).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from gateway.core.site import CONNECTOR_ID
from gateway.ocpp import JsonObject
from gateway.ocpp.smart_charging import ProfileRefused, parse_rate_unit, timestamp
from gateway.smart_charging import ProfileError, Purpose
from gateway.smart_charging.profile import parse_time

if TYPE_CHECKING:
    from gateway.ocpp.v16.station import Station16

logger = logging.getLogger(__name__)

INBOUND_ACTIONS: Final = (
    "CancelReservation",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "ReserveNow",
    "SetChargingProfile",
)

Handler = Callable[[JsonObject], Awaitable[JsonObject]]


def handlers(station: Station16) -> dict[str, Handler]:
    """The handlers of these actions for one station."""
    log = {"charger_id": station.charger_id}
    smart = station.smart_charging
    site = smart.site

    async def set_charging_profile(payload: JsonObject) -> JsonObject:
        try:
            profile = await smart.install(
                payload["csChargingProfiles"], int(payload["connectorId"])
            )
        except (ProfileError, ProfileRefused) as error:
            logger.warning("SetChargingProfile rejected: %s", error, extra=log)
            return {"status": "Rejected"}
        logger.info("SetChargingProfile accepted", extra={**log, "profile_id": profile.id})
        return {"status": "Accepted"}

    async def clear_charging_profile(payload: JsonObject) -> JsonObject:
        purpose = payload.get("chargingProfilePurpose")
        removed = await smart.clear(
            profile_id=payload.get("id"),
            connector_id=payload.get("connectorId"),
            purpose=None if purpose is None else Purpose(purpose),
            stack_level=payload.get("stackLevel"),
        )
        return {"status": "Accepted" if removed else "Unknown"}

    async def get_composite_schedule(payload: JsonObject) -> JsonObject:
        connector_id = int(payload["connectorId"])
        if connector_id not in (0, CONNECTOR_ID):
            return {"status": "Rejected"}
        try:
            unit = parse_rate_unit(payload.get("chargingRateUnit"))
        except ProfileError:
            return {"status": "Rejected"}
        start, schedule = smart.composite_json(connector_id, int(payload["duration"]), unit)
        schedule["startSchedule"] = timestamp(start)
        return {
            "status": "Accepted",
            "connectorId": connector_id,
            "scheduleStart": timestamp(start),
            "chargingSchedule": schedule,
        }

    async def reserve_now(payload: JsonObject) -> JsonObject:
        try:
            expires_at = parse_time(payload["expiryDate"], "expiryDate")
        except ProfileError:
            return {"status": "Rejected"}
        status = await site.reserve(
            station.charger_id,
            int(payload["connectorId"]),
            int(payload["reservationId"]),
            str(payload["idTag"]),
            payload.get("parentIdTag"),
            expires_at,
            "ocpp",
        )
        logger.info("ReserveNow %s", status.value, extra={**log, "id": payload["reservationId"]})
        return {"status": status.value}

    async def cancel_reservation(payload: JsonObject) -> JsonObject:
        cancelled = await site.cancel_reservation(station.charger_id, int(payload["reservationId"]))
        return {"status": "Accepted" if cancelled else "Rejected"}

    return {
        "SetChargingProfile": set_charging_profile,
        "ClearChargingProfile": clear_charging_profile,
        "GetCompositeSchedule": get_composite_schedule,
        "ReserveNow": reserve_now,
        "CancelReservation": cancel_reservation,
    }
