"""OCPI 2.2.1 CDRs (we are Sender): one Charge Detail Record per ended session.

A CDR is built when the core session ends (`SessionBook.on_session_ended`), from the same
store rows as the Session: the charging periods and costs come from the tariff engine through
`Pricing` (the tariff as it was at session start), or, without a tariff, periods cut where the
vehicle starts or stops drawing power and a total cost of 0 (ocpi.md §4 "free"). It is written
once to `ocpi_cdrs` (INSERT OR IGNORE: CDRs are immutable; a correction would be a credit CDR,
which this gateway does not issue), POSTed to the owning eMSP's CDRs receiver through the push
queue, and served to it on GET (paginated on last_updated, its own CDRs only).

At start-up `catch_up()` builds the CDRs of sessions that ended while no CDR could be written
(a crash between the session's end and its CDR), so every ended session gets one.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from gateway.ocpi.sessions import (
    CDR_TOKEN_SCHEMA,
    CHARGING_PERIOD_SCHEMA,
    PRICE_SCHEMA,
    RECORD_COLUMNS,
    SessionBook,
    SessionRecord,
    hours,
    kwh,
    owned_where,
    record_from_row,
)
from gateway.ocpi.transport import Page, PageParams, format_datetime
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.ocpi.server import Module, OcpiContext, OcpiRequest

logger = logging.getLogger(__name__)

CDR_ID_MAX: Final = 39
"""CDR.id is CiString(39)."""


class CdrLocations(Protocol):
    """The CdrLocation of a charger: the Location's address and coordinates with the one EVSE
    and connector (mod_cdrs §10.4.5)."""

    def cdr_location(self, charger_id: str) -> dict[str, Any]: ...


class CdrPublisher(Protocol):
    """POSTs a CDR to its owner's CDRs receiver; never blocks, never raises."""

    def publish_cdr(self, owner: tuple[str, str], cdr: dict[str, Any]) -> None: ...


def cdr_id(session_id: str) -> str:
    """A session's CDR id: the session id (the core's UUIDs are 36 characters)."""
    return session_id[:CDR_ID_MAX]


class CdrBook:
    """The CDRs of the site; see the module docstring."""

    def __init__(
        self,
        store: Store,
        sessions: SessionBook,
        locations: CdrLocations,
        *,
        publisher: CdrPublisher | None = None,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._locations = locations
        self.publisher = publisher
        sessions.on_session_ended(self.session_ended)

    async def session_ended(self, record: SessionRecord) -> dict[str, Any] | None:
        """Build, store and push the CDR of an ended session; the stored one when it
        exists already (None if the session is still open)."""
        if record.session.active:
            return None
        cdr = await self.build(record)
        stored, created = await self._insert(record, cdr)
        if created and record.owner is not None and self.publisher is not None:
            self.publisher.publish_cdr(record.owner, stored)
        logger.info(
            "CDR %s",
            "created" if created else "already existed",
            extra={"session_id": record.session.id, "total_cost": stored.get("total_cost")},
        )
        return stored

    async def build(self, record: SessionRecord) -> dict[str, Any]:
        """The CDR object of an ended session (mod_cdrs §10.3.1)."""
        session = record.session
        assert session.stopped_at is not None
        assert session.meter_stop_wh is not None
        periods, priced = await self._sessions.priced(record)
        parking_h = sum(
            dimension["volume"]
            for period in periods
            for dimension in period["dimensions"]
            if dimension["type"] == "PARKING_TIME"
        )
        cdr: dict[str, Any] = {
            "country_code": self._sessions.party[0],
            "party_id": self._sessions.party[1],
            "id": cdr_id(session.id),
            "start_date_time": format_datetime(session.started_at),
            "end_date_time": format_datetime(session.stopped_at),
            "session_id": session.id,
            "cdr_token": record.cdr_token,
            "auth_method": record.auth_method,
            "cdr_location": self._locations.cdr_location(session.charger_id),
            "currency": priced.currency if priced is not None else self._sessions.currency,
            "charging_periods": periods,
            "total_energy": kwh(max(0.0, session.meter_stop_wh - session.meter_start_wh)),
            "total_time": hours((session.stopped_at - session.started_at).total_seconds()),
            "last_updated": format_datetime(session.stopped_at),
        }
        if parking_h > 0:
            cdr["total_parking_time"] = round(parking_h, 6)
        if record.authorization_reference is not None:
            cdr["authorization_reference"] = record.authorization_reference
        if priced is not None:
            cdr.update(priced.costs)
            if priced.tariffs:
                cdr["tariffs"] = priced.tariffs
        else:
            cdr["total_cost"] = {"excl_vat": 0.0}
        return cdr

    async def _insert(
        self, record: SessionRecord, cdr: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        owner = record.owner or (None, None)
        row = (
            cdr["id"],
            record.session.id,
            owner[0],
            owner[1],
            json.dumps(cdr, separators=(",", ":")),
            cdr["last_updated"],
        )

        def write(db: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            created = db.execute(
                "INSERT OR IGNORE INTO ocpi_cdrs (id, session_id, country_code, party_id, body,"
                " last_updated) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            ).rowcount
            if created:
                return cdr, True
            stored = db.execute(
                "SELECT body FROM ocpi_cdrs WHERE session_id = ?", (record.session.id,)
            ).fetchone()
            return dict(json.loads(stored["body"])), False

        return await self._store.write(write)

    async def insert(self, owner: tuple[str, str] | None, cdr: Mapping[str, Any]) -> bool:
        """Store a CDR built elsewhere (an import, a test); False when its id exists."""
        row = (
            cdr["id"],
            cdr["session_id"],
            owner[0] if owner else None,
            owner[1] if owner else None,
            json.dumps(cdr, separators=(",", ":")),
            cdr["last_updated"],
        )
        return bool(
            await self._store.write(
                lambda db: (
                    db.execute(
                        "INSERT OR IGNORE INTO ocpi_cdrs (id, session_id, country_code, party_id,"
                        " body, last_updated) VALUES (?, ?, ?, ?, ?, ?)",
                        row,
                    ).rowcount
                )
            )
        )

    async def get(self, cdr_id_: str) -> dict[str, Any] | None:
        def read(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute("SELECT body FROM ocpi_cdrs WHERE id = ?", (cdr_id_,)).fetchone()
            return None if row is None else dict(json.loads(row["body"]))

        return await self._store.read(read)

    async def for_session(self, session_id: str) -> dict[str, Any] | None:
        def read(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute(
                "SELECT body FROM ocpi_cdrs WHERE session_id = ?", (session_id,)
            ).fetchone()
            return None if row is None else dict(json.loads(row["body"]))

        return await self._store.read(read)

    async def page(self, owners: Collection[tuple[str, str]], params: PageParams) -> Page:
        """The CDRs of any of `owners`, filtered on last_updated, oldest first."""
        where, args = owned_where(owners, params)

        def read(db: sqlite3.Connection) -> Page:
            total = int(
                db.execute(f"SELECT COUNT(*) FROM ocpi_cdrs o WHERE {where}", args).fetchone()[0]
            )
            rows = db.execute(
                f"SELECT body FROM ocpi_cdrs o WHERE {where}"
                " ORDER BY o.last_updated, o.id LIMIT ? OFFSET ?",
                (*args, params.limit, params.offset),
            ).fetchall()
            return Page([json.loads(row["body"]) for row in rows], total, params.limit)

        return await self._store.read(read)

    async def catch_up(self) -> int:
        """Build the CDRs missing for ended sessions; returns how many were made."""

        def read(db: sqlite3.Connection) -> list[SessionRecord]:
            return [
                record_from_row(row)
                for row in db.execute(
                    f"SELECT {RECORD_COLUMNS} FROM ocpi_sessions o JOIN sessions s"
                    " ON s.id = o.session_id LEFT JOIN ocpi_cdrs c ON c.session_id = s.id"
                    " WHERE s.stopped_at IS NOT NULL AND c.id IS NULL ORDER BY s.stopped_at"
                )
            ]

        missing = await self._store.read(read)
        for record in missing:
            await self.session_ended(record)
        return len(missing)


# --- HTTP module (Sender) ------------------------------------------------------------------

CDR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": [
        "country_code",
        "party_id",
        "id",
        "start_date_time",
        "end_date_time",
        "cdr_token",
        "auth_method",
        "cdr_location",
        "currency",
        "charging_periods",
        "total_cost",
        "total_energy",
        "total_time",
        "last_updated",
    ],
    "properties": {
        "country_code": {"type": "string"},
        "party_id": {"type": "string"},
        "id": {"type": "string"},
        "start_date_time": {"type": "string", "format": "date-time"},
        "end_date_time": {"type": "string", "format": "date-time"},
        "session_id": {"type": "string"},
        "cdr_token": CDR_TOKEN_SCHEMA,
        "auth_method": {"enum": ["AUTH_REQUEST", "COMMAND", "WHITELIST"]},
        "cdr_location": {"type": "object"},
        "currency": {"type": "string"},
        "charging_periods": {"type": "array", "items": CHARGING_PERIOD_SCHEMA},
        "total_cost": PRICE_SCHEMA,
        "total_energy": {"type": "number"},
        "total_time": {"type": "number"},
        "last_updated": {"type": "string", "format": "date-time"},
    },
}


def cdrs_module(context: OcpiContext) -> Module:
    """The CDRs sender: the caller's CDRs, paginated."""
    from gateway.ocpi.partners import InterfaceRole
    from gateway.ocpi.roaming import EMSP_SIDE, owners_of, roaming
    from gateway.ocpi.server import Module, Route

    book = roaming(context).cdrs

    async def list_cdrs(request: OcpiRequest) -> Page:
        assert request.page is not None
        owners = owners_of(
            request.partner, (request.routing.from_country_code, request.routing.from_party_id)
        )
        return await book.page(owners, request.page)

    return Module(
        identifier="cdrs",
        roles=(InterfaceRole.SENDER,),
        partner_roles=EMSP_SIDE,
        routes=(
            Route(
                "GET",
                "",
                list_cdrs,
                summary="Your CDRs, oldest first",
                paginated=True,
                response_schema=CDR_SCHEMA,
            ),
        ),
    )
