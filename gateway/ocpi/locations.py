"""OCPI Locations (we are Sender; mod_locations, ocpi.md §4): the site as one Location, each
configured charger as one EVSE with one connector, live status from the core.

- **Ids.** `Location.id` is `[ocpi.location] id`; `EVSE.uid` is the charger's configured id
  (the identity it has upstream, chosen by the operator, never a hardware serial), or a
  stable digest of it when it is longer than the 36 characters `uid` allows; both never
  change. `evse_id` is the configured eMI3 id, if any. The connector id is "1" (the core's
  chargers have one connector).
- **Status.** The core's connector status (OCPP 1.6 vocabulary, `gateway.core.status`)
  mapped after one CPO's published mapping (GreenFlux, ocpi.md §4): Available/Preparing →
  AVAILABLE; Charging/SuspendedEV/SuspendedEVSE/Finishing → CHARGING; Faulted → OUTOFORDER;
  Unavailable → INOPERATIVE when taken out of service on purpose, OUTOFORDER otherwise
  (unreachable); Reserved → RESERVED (a 2.2.1 status; GreenFlux's BLOCKED predates it).
- **last_updated** goes up the tree: a connector's change bumps its EVSE, an EVSE's bumps the
  Location. Static content (from the configuration) is kept in `ocpi_evses`, so a changed
  setting bumps `last_updated` once, at the start that noticed it.
- **Never deleted.** A charger removed from the configuration stays as an EVSE with status
  REMOVED. A Location with `publish = false` is not served at all.
- **Pushes.** A status change is PATCHed (`{status, last_updated}`) to every partner with a
  locations RECEIVER endpoint within the site's event dispatch (well under a second); a new
  or changed EVSE is PUT at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from gateway.config import ChargerSection
from gateway.core.events import StatusChanged
from gateway.core.status import ConnectorStatus
from gateway.ocpi import transport
from gateway.ocpi.config import OcpiSection
from gateway.ocpi.partners import InterfaceRole
from gateway.ocpi.server import Module, OcpiContext, OcpiRequest, Route
from gateway.ocpi.transport import (
    OcpiError,
    OcpiStatus,
    Page,
    format_datetime,
    not_found,
    parse_datetime,
)

logger = logging.getLogger("gateway.ocpi.locations")

CONNECTOR_ID: Final = "1"
MAX_UID_LENGTH: Final = 36
"""CiString(36): Location.id and EVSE.uid (mod_locations)."""
NOMINAL_VOLTAGE_3P: Final = 400
"""Line-to-line voltage of a European three-phase supply; OCPI's max_voltage for
AC_3_PHASE is line-to-line (mod_locations, Connector.max_voltage)."""
NOMINAL_VOLTAGE_1P: Final = 230
"""Line-to-neutral voltage of a European single-phase supply."""
STARTUP_WAIT_S: Final = 10.0
"""How long a request waits for the locations to be loaded at start before a 503."""
LOCATION_ROW: Final = "#location"
"""The `ocpi_evses.uid` of the row that keeps the Location's own static content."""

GATEWAY_CAPABILITIES: Final = frozenset({"REMOTE_START_STOP_CAPABLE", "RESERVABLE"})
"""What the gateway itself provides for every charger: remote start/stop and reservations
(the commands module, through the core's sessions and reservations). The hardware's own
capabilities (RFID reader, payment terminal, ...) come from `[ocpi.chargers.<id>]`."""

_STATUS: Final = {
    ConnectorStatus.AVAILABLE: "AVAILABLE",
    ConnectorStatus.PREPARING: "AVAILABLE",
    ConnectorStatus.CHARGING: "CHARGING",
    ConnectorStatus.SUSPENDED_EV: "CHARGING",
    ConnectorStatus.SUSPENDED_EVSE: "CHARGING",
    ConnectorStatus.FINISHING: "CHARGING",
    ConnectorStatus.FAULTED: "OUTOFORDER",
    ConnectorStatus.UNAVAILABLE: "OUTOFORDER",
    ConnectorStatus.RESERVED: "RESERVED",
}


def evse_uid(charger_id: str) -> str:
    """The EVSE.uid standing for a charger (stable, never a hardware id)."""
    if len(charger_id) <= MAX_UID_LENGTH and charger_id.isprintable():
        return charger_id
    return "evse-" + hashlib.sha256(charger_id.encode()).hexdigest()[:31]


def ocpi_status(status: ConnectorStatus | None, *, operative: bool = True) -> str:
    if status is None:
        return "UNKNOWN"
    if status is ConnectorStatus.UNAVAILABLE and not operative:
        return "INOPERATIVE"
    return _STATUS.get(status, "UNKNOWN")


class SitePlaces:
    """Where a charger is in OCPI: the Location and the EVSE that stand for it (the
    `EvsePlaces` protocol of `gateway.ocpi.tokens`)."""

    def __init__(self, section: OcpiSection) -> None:
        self._location_id = section.location.id

    @property
    def location_id(self) -> str:
        return self._location_id

    def evse_uid(self, charger_id: str) -> str:
        return evse_uid(charger_id)


def connector_json(
    section: OcpiSection, charger: ChargerSection, last_updated: datetime
) -> dict[str, Any]:
    settings = section.charger(charger.id)
    three_phase = charger.phases == 3
    connector: dict[str, Any] = {
        "id": CONNECTOR_ID,
        "standard": settings.standard,
        "format": settings.format,
        "power_type": "AC_3_PHASE" if three_phase else "AC_1_PHASE",
        "max_voltage": settings.max_voltage
        or (NOMINAL_VOLTAGE_3P if three_phase else NOMINAL_VOLTAGE_1P),
        "max_amperage": int(charger.max_current_a),
        "last_updated": format_datetime(last_updated),
    }
    if settings.tariff_ids:
        connector["tariff_ids"] = list(settings.tariff_ids)
    return connector


def evse_static_json(section: OcpiSection, charger: ChargerSection) -> dict[str, Any]:
    """The EVSE without status and timestamps: what the configuration decides."""
    settings = section.charger(charger.id)
    evse: dict[str, Any] = {
        "uid": evse_uid(charger.id),
        "capabilities": sorted(set(settings.capabilities) | GATEWAY_CAPABILITIES),
        "connectors": [connector_json(section, charger, datetime.min)],
    }
    for key in ("evse_id", "physical_reference", "floor_level"):
        value = getattr(settings, key)
        if value is not None:
            evse[key] = value
    for connector in evse["connectors"]:
        del connector["last_updated"]
    return evse


def location_static_json(section: OcpiSection) -> dict[str, Any]:
    location = section.location
    body: dict[str, Any] = {
        "country_code": section.country_code,
        "party_id": section.party_id,
        "id": location.id,
        "publish": location.publish,
        "address": location.address,
        "city": location.city,
        "country": location.country,
        # GeoLocation: decimal strings, up to 6 decimals (mod_locations).
        "coordinates": {
            "latitude": f"{location.latitude:.6f}",
            "longitude": f"{location.longitude:.6f}",
        },
        "time_zone": location.time_zone,
        "operator": {"name": section.business_name},
    }
    if location.name is not None:
        body["name"] = location.name
    if location.postal_code is not None:
        body["postal_code"] = location.postal_code
    return body


@dataclass(slots=True)
class _Evse:
    charger_id: str
    static: dict[str, Any]
    """As `evse_static_json`, or the last published body for a removed charger."""
    static_updated: datetime
    status: str
    status_updated: datetime
    removed: bool = False

    @property
    def uid(self) -> str:
        return str(self.static["uid"])

    @property
    def last_updated(self) -> datetime:
        return max(self.static_updated, self.status_updated)

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(json.dumps(self.static))
        stamp = format_datetime(self.static_updated)
        for connector in body.get("connectors", []):
            connector["last_updated"] = stamp
        body["status"] = self.status
        body["last_updated"] = format_datetime(self.last_updated)
        return body


class LocationBook:
    """The published Location and its EVSEs, live. Built by `open()` from the configuration
    and the store (which it updates), fed with the site's status events by `observe()`."""

    def __init__(
        self,
        section: OcpiSection,
        location_static: dict[str, Any],
        location_updated: datetime,
        evses: Sequence[_Evse],
    ) -> None:
        self.section = section
        self._location_static = location_static
        self._location_updated = location_updated
        self._evses = {evse.charger_id: evse for evse in evses}
        self.changed_at_open: list[str] = []
        """uids of EVSEs that are new or changed since the last start (pushed with PUT)."""
        self.location_changed_at_open = False
        """The Location's own content is new or changed since the last start: the whole
        Location is pushed with PUT (which carries every EVSE)."""

    @classmethod
    async def open(cls, context: OcpiContext) -> LocationBook:
        section = context.ocpi
        now = transport.now()
        stored = await context.store.read(
            lambda db: {
                str(row["uid"]): (
                    str(row["charger_id"]),
                    json.loads(row["body"]),
                    row["last_updated"],
                )
                for row in db.execute("SELECT * FROM ocpi_evses")
            }
        )
        writes: list[tuple[str, str, str, str]] = []
        location_static = location_static_json(section)
        location_updated = now
        previous = stored.pop(LOCATION_ROW, None)
        location_changed = previous is None or previous[1] != location_static
        if previous is not None and not location_changed:
            location_updated = parse_datetime(previous[2])
        else:
            writes.append((LOCATION_ROW, "", json.dumps(location_static), format_datetime(now)))
        evses: list[_Evse] = []
        changed: list[str] = []
        for charger in context.config.chargers:
            static = evse_static_json(section, charger)
            uid = static["uid"]
            connector = context.site.connector(charger.id)
            status = ocpi_status(connector.status, operative=connector.operative)
            old = stored.pop(uid, None)
            if old is not None and old[1] == static:
                static_updated = parse_datetime(old[2])
            else:
                static_updated = now
                changed.append(uid)
                writes.append((uid, charger.id, json.dumps(static), format_datetime(now)))
            evses.append(_Evse(charger.id, static, static_updated, status, static_updated))
        for uid, (charger_id, body, stamp) in stored.items():
            # A charger no longer configured: published as REMOVED, never deleted.
            removed_at = parse_datetime(stamp)
            if not body.get("removed"):
                removed_at = now
                body = {**body, "removed": True}
                changed.append(uid)
                writes.append((uid, charger_id, json.dumps(body), format_datetime(now)))
            static = {k: v for k, v in body.items() if k != "removed"}
            evses.append(_Evse(charger_id, static, removed_at, "REMOVED", removed_at, removed=True))

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO ocpi_evses (uid, charger_id, body, last_updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (uid) DO UPDATE SET charger_id = excluded.charger_id,"
                " body = excluded.body, last_updated = excluded.last_updated",
                writes,
            )

        if writes:
            await context.store.write(write)
        book = cls(section, location_static, location_updated, evses)
        book.changed_at_open = changed
        book.location_changed_at_open = location_changed
        return book

    # --- queries ---------------------------------------------------------------------------

    @property
    def published(self) -> bool:
        return self.section.location.publish

    @property
    def location_id(self) -> str:
        return self.section.location.id

    def last_updated(self) -> datetime:
        return max([self._location_updated, *(e.last_updated for e in self._evses.values())])

    def location_json(self) -> dict[str, Any]:
        body = dict(self._location_static)
        body["evses"] = [evse.json() for evse in self._evses.values()]
        body["last_updated"] = format_datetime(self.last_updated())
        return body

    def evse(self, uid: str) -> _Evse | None:
        return next((e for e in self._evses.values() if e.uid == uid), None)

    def evse_json(self, charger_id: str) -> dict[str, Any]:
        """The EVSE of a charger (e.g. for a CDR's cdr_location)."""
        return self._evses[charger_id].json()

    # --- changes ---------------------------------------------------------------------------

    def observe(self, event: StatusChanged, *, operative: bool = True) -> dict[str, Any] | None:
        """Apply a status change; the PATCH body to push when the OCPI status changed."""
        evse = self._evses.get(event.charger_id)
        if evse is None or evse.removed:
            return None
        status = ocpi_status(event.status, operative=operative)
        if status == evse.status:
            return None
        evse.status = status
        # Never backwards: an event stamped before a config change keeps the later time.
        evse.status_updated = max(event.at, evse.static_updated)
        return {"status": status, "last_updated": format_datetime(evse.last_updated)}


# --- schemas ---------------------------------------------------------------------------------

_DATETIME: Final = {"type": "string", "format": "date-time"}
CONNECTOR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": [
        "id",
        "standard",
        "format",
        "power_type",
        "max_voltage",
        "max_amperage",
        "last_updated",
    ],
    "properties": {
        "id": {"type": "string", "maxLength": 36},
        "standard": {"type": "string"},
        "format": {"enum": ["SOCKET", "CABLE"]},
        "power_type": {
            "enum": ["AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"]
        },
        "max_voltage": {"type": "integer"},
        "max_amperage": {"type": "integer"},
        "tariff_ids": {"type": "array", "items": {"type": "string"}},
        "last_updated": _DATETIME,
    },
}
EVSE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["uid", "status", "connectors", "last_updated"],
    "properties": {
        "uid": {"type": "string", "maxLength": 36},
        "evse_id": {"type": "string", "maxLength": 48},
        "status": {
            "enum": [
                "AVAILABLE",
                "BLOCKED",
                "CHARGING",
                "INOPERATIVE",
                "OUTOFORDER",
                "PLANNED",
                "REMOVED",
                "RESERVED",
                "UNKNOWN",
            ]
        },
        "capabilities": {"type": "array", "items": {"type": "string"}},
        "connectors": {"type": "array", "minItems": 1, "items": CONNECTOR_SCHEMA},
        "last_updated": _DATETIME,
    },
}
LOCATION_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": [
        "country_code",
        "party_id",
        "id",
        "publish",
        "address",
        "city",
        "country",
        "coordinates",
        "time_zone",
        "last_updated",
    ],
    "properties": {
        "country_code": {"type": "string", "minLength": 2, "maxLength": 2},
        "party_id": {"type": "string", "minLength": 3, "maxLength": 3},
        "id": {"type": "string", "maxLength": 36},
        "publish": {"type": "boolean"},
        "address": {"type": "string"},
        "city": {"type": "string"},
        "country": {"type": "string", "minLength": 3, "maxLength": 3},
        "coordinates": {
            "type": "object",
            "required": ["latitude", "longitude"],
            "properties": {"latitude": {"type": "string"}, "longitude": {"type": "string"}},
        },
        "time_zone": {"type": "string"},
        "evses": {"type": "array", "items": EVSE_SCHEMA},
        "last_updated": _DATETIME,
    },
}
_ID: Final[dict[str, Any]] = {"type": "string", "minLength": 1, "maxLength": 36}


def locations_module(context: OcpiContext) -> Module:
    book: LocationBook | None = None
    ready = asyncio.Event()

    async def current() -> LocationBook:
        try:
            async with asyncio.timeout(STARTUP_WAIT_S):
                await ready.wait()
        except TimeoutError:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR, "locations not ready yet", http_status=503
            ) from None
        assert book is not None
        return book

    async def location(request: OcpiRequest) -> LocationBook:
        locations = await current()
        if not locations.published or request.match["location_id"] != locations.location_id:
            raise not_found("unknown location", OcpiStatus.UNKNOWN_LOCATION)
        return locations

    async def list_locations(request: OcpiRequest) -> Page:
        assert request.page is not None
        locations = await current()
        published = [locations] if locations.published else []
        return transport.paginate(
            published,
            request.page,
            lambda item: item.last_updated(),
            lambda item: item.location_json(),
        )

    async def get_location(request: OcpiRequest) -> dict[str, Any]:
        return (await location(request)).location_json()

    async def get_evse(request: OcpiRequest) -> dict[str, Any]:
        evse = (await location(request)).evse(request.match["evse_uid"])
        if evse is None:
            raise not_found("unknown EVSE", OcpiStatus.UNKNOWN_LOCATION)
        return evse.json()

    async def get_connector(request: OcpiRequest) -> dict[str, Any]:
        evse = (await location(request)).evse(request.match["evse_uid"])
        if evse is None:
            raise not_found("unknown EVSE", OcpiStatus.UNKNOWN_LOCATION)
        connector = next(
            (c for c in evse.json()["connectors"] if c["id"] == request.match["connector_id"]),
            None,
        )
        if connector is None:
            raise not_found("unknown connector", OcpiStatus.UNKNOWN_LOCATION)
        return dict(connector)

    async def run() -> None:
        nonlocal book
        events = context.site.subscribe()
        try:
            book = await LocationBook.open(context)
            ready.set()
            section = context.ocpi
            prefix = f"/{section.country_code}/{section.party_id}/{book.location_id}"
            if book.published and book.location_changed_at_open:
                context.pushes.push(
                    "locations", "PUT", prefix, book.location_json(), key="location"
                )
            elif book.published:
                for uid in book.changed_at_open:
                    evse = book.evse(uid)
                    if evse is not None:
                        context.pushes.push(
                            "locations", "PUT", f"{prefix}/{uid}", evse.json(), key=f"evse:{uid}"
                        )
            while True:
                event = await events.get()
                if not isinstance(event, StatusChanged):
                    continue
                try:
                    operative = context.site.connector(event.charger_id).operative
                except LookupError:
                    continue
                patch = book.observe(event, operative=operative)
                if patch is None or not book.published:
                    continue
                uid = evse_uid(event.charger_id)
                logger.debug(
                    "EVSE status pushed", extra={"evse_uid": uid, "status": patch["status"]}
                )
                context.pushes.push(
                    "locations", "PATCH", f"{prefix}/{uid}", patch, key=f"evse-status:{uid}"
                )
        finally:
            context.site.unsubscribe(events)

    location_param = {"location_id": _ID}
    return Module(
        identifier="locations",
        roles=(InterfaceRole.SENDER,),
        run=run,
        routes=(
            Route(
                "GET",
                "",
                list_locations,
                summary="Locations, paginated on last_updated",
                response_schema=LOCATION_SCHEMA,
                paginated=True,
            ),
            Route(
                "GET",
                "/{location_id}",
                get_location,
                summary="One Location",
                response_schema=LOCATION_SCHEMA,
                path_params=location_param,
            ),
            Route(
                "GET",
                "/{location_id}/{evse_uid}",
                get_evse,
                summary="One EVSE",
                response_schema=EVSE_SCHEMA,
                path_params={**location_param, "evse_uid": _ID},
            ),
            Route(
                "GET",
                "/{location_id}/{evse_uid}/{connector_id}",
                get_connector,
                summary="One connector",
                response_schema=CONNECTOR_SCHEMA,
                path_params={**location_param, "evse_uid": _ID, "connector_id": _ID},
            ),
        ),
    )
