"""OCPI 2.2.1 Sessions (we are Sender): the OCPI view of the core's sessions.

There is one session model: the core `Session` (gateway/core/session.py) in the store's
`sessions` table, the same rows OCPP's transactions come from. A session started by an RFID
swipe and one started by an OCPI START_SESSION go through the same core path
(`Site` → `Connector`), so each is an OCPP transaction upstream and an OCPI Session here.
OCPI adds, per session, in `ocpi_sessions`: the owner (the eMSP whose token started it), the
`cdr_token`, the `auth_method` and the `authorization_reference`; and in
`ocpi_session_samples` the meter samples its charging periods are cut from.

- **Ownership.** `SessionBook.grant()` is told, before a session starts, which token was
  accepted for (charger, identifier): by `TokenAuthorization` for a swipe of a roaming token,
  by the commands module for START_SESSION. The session that starts there with that
  identifier belongs to the token's eMSP. A session no roaming token started (OCPP's central
  system authorized it) has no owner and is not shared with roaming partners.
- **Projection** (`session_json`): status ACTIVE while open, COMPLETED once ended; `kwh`
  from the latest reading; `charging_periods` from the samples (cut where the vehicle stops
  or resumes drawing power, and wherever the tariff's price may change when a `Pricing` is
  given); `total_cost` while charging when priced.
- **Pushes**: the whole Session (PUT) to the owner when it starts, at most every
  `push_interval_s` while it charges, and when it ends (ocpi.md §4: "not every minute on AC").
  The owner can always pull (GET, paginated on last_updated, its own sessions only).
- Samples are written every `sample_interval_s` and whenever the vehicle starts or stops
  drawing power, so the periods are right to within one interval without a write per poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol

from gateway.core.clock import Clock, SystemClock
from gateway.core.events import SessionEnded, SessionMeterSampled, SessionStarted, SiteEvent
from gateway.core.session import Session, SessionOrigin
from gateway.core.site import Site
from gateway.ocpi.tokens import AuthMethod, EvsePlaces, Grant, TokenType, cdr_token
from gateway.ocpi.transport import Page, PageParams, format_datetime, parse_datetime
from gateway.store import Store
from gateway.tariffs import metering
from gateway.tariffs.metering import build_charging_periods

if TYPE_CHECKING:
    from gateway.ocpi.server import Module, OcpiContext, OcpiRequest

logger = logging.getLogger(__name__)

CHARGING_POWER_MIN_W: Final = 100.0
"""Below this the vehicle counts as not drawing power (parking for the tariff): a car's
standby draw and a meter's noise stay below it, the least a charging car takes (6 A at
230 V on one phase, 1.38 kW) is far above."""

DEFAULT_SAMPLE_INTERVAL_S: Final = 60.0
DEFAULT_PUSH_INTERVAL_S: Final = 300.0
"""Session pushes while charging: every 5 minutes (ocpi.md §4: not every minute on AC, not
every 30 minutes on DC)."""

GRANT_LIFETIME_S: Final = 600.0
"""A grant waits this long for its session: longer than any connection timeout the core
allows for a vehicle to be plugged in (OCPP ConnectionTimeOut, 60 s by default)."""

CONNECTOR_ID: Final = "1"


@dataclass(frozen=True, slots=True)
class MeterSample:
    """A reading during a session: when, the lifetime energy register, the power and the
    current summed over the phases (as OCPI's current restrictions count it)."""

    at: datetime
    energy_wh: float
    power_w: float
    current_a: float

    @property
    def charging(self) -> bool:
        return self.power_w >= CHARGING_POWER_MIN_W


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A core session with what OCPI adds to it."""

    session: Session
    owner: tuple[str, str] | None
    """(country_code, party_id) of the eMSP whose token started it."""
    cdr_token: dict[str, Any]
    auth_method: str
    authorization_reference: str | None
    last_updated: datetime


@dataclass(frozen=True, slots=True)
class Priced:
    """A priced session (from `Pricing`): its charging periods and its costs as OCPI JSON."""

    charging_periods: list[dict[str, Any]]
    currency: str
    costs: dict[str, Any]
    """CDR cost fields: total_cost (a Price) and the optional total_*_cost parts."""
    tariffs: list[dict[str, Any]] = field(default_factory=list)
    """The tariffs applied, as they were (CDR.tariffs)."""


class Pricing(Protocol):
    """Prices a session from its meter points (the tariff engine); None when no tariff
    applies."""

    def price(self, record: SessionRecord, points: Sequence[MeterSample]) -> Priced | None: ...


class SessionPublisher(Protocol):
    """Sends a Session (PUT) to its owner; never blocks, never raises."""

    def publish_session(self, owner: tuple[str, str], session: dict[str, Any]) -> None: ...


def kwh(energy_wh: float) -> float:
    """Energy in kWh as OCPI numbers carry it (3 decimals: 1 Wh)."""
    return round(energy_wh / 1000.0, 3)


def hours(seconds: float) -> float:
    return round(seconds / 3600.0, 6)


def session_points(
    started_at: datetime,
    meter_start_wh: float,
    samples: Sequence[MeterSample],
    end: MeterSample,
) -> list[MeterSample]:
    """The meter points a session's periods are cut from: its start (in the state of the
    first sample after it: the start itself is recorded before the first reading), the
    samples in between, and `end`. Between two points the earlier one's state holds."""
    inner = [s for s in samples if started_at < s.at < end.at]
    first = inner[0] if inner else end
    points = [MeterSample(started_at, meter_start_wh, first.power_w, first.current_a)]
    points.extend(inner)
    points.append(MeterSample(max(end.at, started_at), end.energy_wh, end.power_w, end.current_a))
    return points


def metering_samples(points: Sequence[MeterSample]) -> list[metering.MeterSample]:
    """`points` as the tariff engine's samples (exact decimals; charging by the power)."""
    return [
        metering.MeterSample(
            at=point.at,
            energy_wh=Decimal(repr(point.energy_wh)),
            power_w=Decimal(repr(point.power_w)),
            current_a=Decimal(repr(point.current_a)),
            charging=point.charging,
        )
        for point in points
    ]


def default_periods(points: Sequence[MeterSample], time_zone: tzinfo) -> list[dict[str, Any]]:
    """Charging periods without a tariff (`gateway.tariffs.metering`): a new period only
    where the vehicle starts or stops drawing power. A session of no duration gets one empty
    period (a CDR needs at least one)."""
    periods = build_charging_periods(metering_samples(points), time_zone=time_zone)
    if not periods:
        return [
            {
                "start_date_time": format_datetime(points[0].at),
                "dimensions": [{"type": "ENERGY", "volume": 0}, {"type": "TIME", "volume": 0}],
            }
        ]
    return [period.to_ocpi() for period in periods]


class SessionBook:
    """The OCPI sessions of the site; see the module docstring. `run()` follows the site's
    events; the query methods serve the GETs and the other OCPI modules."""

    def __init__(
        self,
        store: Store,
        site: Site,
        *,
        party: tuple[str, str],
        places: EvsePlaces,
        currency: str = "EUR",
        time_zone: tzinfo = UTC,
        pricing: Pricing | None = None,
        publisher: SessionPublisher | None = None,
        clock: Clock | None = None,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        push_interval_s: float = DEFAULT_PUSH_INTERVAL_S,
    ) -> None:
        self.party = party
        """Our own (country_code, party_id) as CPO."""
        self.places = places
        self.currency = currency
        self.time_zone = time_zone
        """The Location's time zone: periods are cut at its local midnights."""
        self.pricing = pricing
        self.publisher = publisher
        self.sample_interval_s = sample_interval_s
        self.push_interval_s = push_interval_s
        self._store = store
        self._site = site
        self._clock: Clock = clock or SystemClock()
        self._grants: dict[tuple[str, str], tuple[Grant, float]] = {}
        self._latest: dict[str, MeterSample] = {}
        self._saved: dict[str, MeterSample] = {}
        self._pushed_at: dict[str, float] = {}
        self._ended_hooks: list[Callable[[SessionRecord], Any]] = []
        self._ready = asyncio.Event()

    # --- ownership -------------------------------------------------------------------------

    def grant(self, charger_id: str, id_tag: str, grant: Grant) -> None:
        """A token was accepted for `id_tag` at `charger_id`: the session starting there
        with that identifier (within `GRANT_LIFETIME_S`) belongs to the token's eMSP."""
        now = self._clock.monotonic()
        self._grants = {k: v for k, v in self._grants.items() if v[1] > now}
        self._grants[(charger_id, id_tag.upper())] = (grant, now + GRANT_LIFETIME_S)

    def on_session_ended(self, hook: Callable[[SessionRecord], Any]) -> None:
        """Call `hook` (a function or coroutine function) with each session that ended,
        after its OCPI record is final (the CDR module builds the CDR there)."""
        self._ended_hooks.append(hook)

    async def wait_ready(self) -> None:
        """Until `run()` follows the site's events."""
        await self._ready.wait()

    # --- following the site ----------------------------------------------------------------

    async def run(self) -> None:
        """Follow the site's events until cancelled."""
        events = self._site.subscribe()
        self._ready.set()
        try:
            while True:
                event = await events.get()
                try:
                    await self._on_event(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # One bad event must not stop the OCPI view of every later session.
                    logger.exception(
                        "OCPI session update failed", extra={"event": type(event).__name__}
                    )
        finally:
            self._site.unsubscribe(events)
            self._ready.clear()

    async def _on_event(self, event: SiteEvent) -> None:
        if isinstance(event, SessionStarted):
            await self._started(event.session)
        elif isinstance(event, SessionMeterSampled):
            await self._sampled(event)
        elif isinstance(event, SessionEnded):
            await self._ended(event.session)

    async def _started(self, session: Session) -> None:
        key = (session.charger_id, session.id_tag.upper())
        entry = self._grants.pop(key, None)
        grant = entry[0] if entry is not None and entry[1] > self._clock.monotonic() else None
        record = self.record_for(session, grant, self._clock.now())
        sample = MeterSample(session.started_at, session.meter_start_wh, 0.0, 0.0)
        await self.save_record(record)
        await self._save_sample(session.id, sample)
        self._latest[session.id] = sample
        self._pushed_at[session.id] = self._clock.monotonic()
        await self._publish(session.id)

    def record_for(self, session: Session, grant: Grant | None, now: datetime) -> SessionRecord:
        """What OCPI adds to a starting core session."""
        if grant is not None:
            token = grant.token
            return SessionRecord(
                session,
                (str(token["country_code"]), str(token["party_id"])),
                cdr_token(token),
                grant.auth_method.value,
                grant.authorization_reference,
                now,
            )
        # Authorized by OCPP's central system (or a free-vend site): our own token record.
        local_token = {
            "country_code": self.party[0],
            "party_id": self.party[1],
            "uid": session.id_tag,
            "type": (
                TokenType.RFID.value
                if session.origin is SessionOrigin.LOCAL
                else TokenType.OTHER.value
            ),
            "contract_id": session.id_tag,
        }
        method = (
            AuthMethod.AUTH_REQUEST if session.origin is SessionOrigin.LOCAL else AuthMethod.COMMAND
        )
        return SessionRecord(session, None, local_token, method.value, None, now)

    async def _sampled(self, event: SessionMeterSampled) -> None:
        reading = event.reading
        sample = MeterSample(event.at, reading.energy_wh, reading.power_w, sum(reading.current_a))
        session_id = event.session.id
        self._latest[session_id] = sample
        saved = self._saved.get(session_id)
        if (
            saved is None
            or saved.charging != sample.charging
            or (sample.at - saved.at).total_seconds() >= self.sample_interval_s
        ):
            await self._save_sample(session_id, sample)
            await self._touch(session_id, event.at)
        pushed = self._pushed_at.get(session_id)
        if pushed is None or self._clock.monotonic() - pushed >= self.push_interval_s:
            self._pushed_at[session_id] = self._clock.monotonic()
            await self._publish(session_id)

    async def _ended(self, session: Session) -> None:
        assert session.stopped_at is not None
        assert session.meter_stop_wh is not None
        latest = self._latest.pop(session.id, None)
        power = latest.power_w if latest is not None else 0.0
        await self._save_sample(
            session.id, MeterSample(session.stopped_at, session.meter_stop_wh, power, 0.0)
        )
        self._saved.pop(session.id, None)
        self._pushed_at.pop(session.id, None)
        record = await self.record(session.id)
        if record is None:
            # Started before OCPI followed the site (an upgrade mid-session): adopt it now.
            record = self.record_for(session, None, self._clock.now())
            await self.save_record(record)
        await self._touch(session.id, self._clock.now())
        await self._publish(session.id)
        record = await self.record(session.id)
        assert record is not None
        for hook in self._ended_hooks:
            try:
                result = hook(record)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("session-ended hook failed", extra={"session_id": session.id})

    async def _publish(self, session_id: str) -> None:
        if self.publisher is None:
            return
        record = await self.record(session_id)
        if record is None or record.owner is None:
            return
        self.publisher.publish_session(record.owner, await self.session_json(record))

    # --- storage ---------------------------------------------------------------------------

    async def save_record(self, record: SessionRecord) -> None:
        """Write a session's OCPI record (also how tests and imports add sessions)."""
        owner = record.owner or (None, None)
        row = (
            record.session.id,
            owner[0],
            owner[1],
            json.dumps(record.cdr_token, separators=(",", ":")),
            record.auth_method,
            record.authorization_reference,
            format_datetime(record.last_updated),
        )

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO ocpi_sessions (session_id, country_code, party_id,"
                " cdr_token, auth_method, authorization_reference, last_updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )

        await self._store.write(write)

    async def _save_sample(self, session_id: str, sample: MeterSample) -> None:
        self._saved[session_id] = sample
        row = (
            session_id,
            sample.at.isoformat(),
            sample.energy_wh,
            sample.power_w,
            sample.current_a,
        )
        await self._store.write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO ocpi_session_samples (session_id, at, energy_wh,"
                " power_w, current_a) VALUES (?, ?, ?, ?, ?)",
                row,
            )
        )

    async def _touch(self, session_id: str, at: datetime) -> None:
        stamp = format_datetime(at)
        await self._store.write(
            lambda db: db.execute(
                "UPDATE ocpi_sessions SET last_updated = ? WHERE session_id = ?",
                (stamp, session_id),
            )
        )

    async def record(self, session_id: str) -> SessionRecord | None:
        def read(db: sqlite3.Connection) -> SessionRecord | None:
            row = db.execute(
                f"SELECT {RECORD_COLUMNS} FROM ocpi_sessions o JOIN sessions s"
                " ON s.id = o.session_id WHERE o.session_id = ?",
                (session_id,),
            ).fetchone()
            return None if row is None else record_from_row(row)

        return await self._store.read(read)

    async def samples(self, session_id: str) -> list[MeterSample]:
        def read(db: sqlite3.Connection) -> list[MeterSample]:
            return [
                MeterSample(
                    parse_datetime(row["at"]), row["energy_wh"], row["power_w"], row["current_a"]
                )
                for row in db.execute(
                    "SELECT * FROM ocpi_session_samples WHERE session_id = ? ORDER BY at",
                    (session_id,),
                )
            ]

        return await self._store.read(read)

    async def page(self, owners: Collection[tuple[str, str]], params: PageParams) -> Page:
        """The sessions owned by any of `owners`, filtered on last_updated, oldest first."""
        where, args = owned_where(owners, params)

        def read(db: sqlite3.Connection) -> tuple[int, list[SessionRecord]]:
            total = int(
                db.execute(f"SELECT COUNT(*) FROM ocpi_sessions o WHERE {where}", args).fetchone()[
                    0
                ]
            )
            rows = db.execute(
                f"SELECT {RECORD_COLUMNS} FROM ocpi_sessions o JOIN sessions s"
                f" ON s.id = o.session_id WHERE {where}"
                " ORDER BY o.last_updated, o.session_id LIMIT ? OFFSET ?",
                (*args, params.limit, params.offset),
            ).fetchall()
            return total, [record_from_row(row) for row in rows]

        total, records = await self._store.read(read)
        items = [await self.session_json(record) for record in records]
        return Page(items, total, params.limit)

    # --- projection ------------------------------------------------------------------------

    def end_sample(self, record: SessionRecord, samples: Sequence[MeterSample] = ()) -> MeterSample:
        """The session's last known point: its stop (in the state of the sample saved with
        it), or the latest reading while open."""
        session = record.session
        if session.stopped_at is not None and session.meter_stop_wh is not None:
            last = samples[-1] if samples else None
            power = last.power_w if last is not None else 0.0
            current = last.current_a if last is not None else 0.0
            return MeterSample(session.stopped_at, session.meter_stop_wh, power, current)
        latest = self._latest.get(session.id)
        if latest is not None:
            return latest
        if samples:
            return samples[-1]
        return MeterSample(self._clock.now(), session.meter_start_wh, 0.0, 0.0)

    async def priced(self, record: SessionRecord) -> tuple[list[dict[str, Any]], Priced | None]:
        """The session's charging periods and, when a tariff applies, its prices."""
        session = record.session
        samples = await self.samples(session.id)
        points = session_points(
            session.started_at, session.meter_start_wh, samples, self.end_sample(record, samples)
        )
        if self.pricing is not None:
            try:
                priced = self.pricing.price(record, points)
            except Exception:
                logger.exception("pricing failed", extra={"session_id": session.id})
                priced = None
            if priced is not None:
                return priced.charging_periods, priced
        return default_periods(points, self.time_zone), None

    async def session_json(self, record: SessionRecord) -> dict[str, Any]:
        """The OCPI Session object (mod_sessions §9.3.1)."""
        session = record.session
        end = self.end_sample(record)
        periods, priced = await self.priced(record)
        body: dict[str, Any] = {
            "country_code": self.party[0],
            "party_id": self.party[1],
            "id": session.id,
            "start_date_time": format_datetime(session.started_at),
            "kwh": kwh(max(0.0, end.energy_wh - session.meter_start_wh)),
            "cdr_token": record.cdr_token,
            "auth_method": record.auth_method,
            "location_id": self.places.location_id,
            "evse_uid": self.places.evse_uid(session.charger_id),
            "connector_id": CONNECTOR_ID,
            "currency": priced.currency if priced is not None else self.currency,
            "charging_periods": periods,
            "status": "ACTIVE" if session.active else "COMPLETED",
            "last_updated": format_datetime(record.last_updated),
        }
        if session.stopped_at is not None:
            body["end_date_time"] = format_datetime(session.stopped_at)
        if record.authorization_reference is not None:
            body["authorization_reference"] = record.authorization_reference
        if priced is not None and "total_cost" in priced.costs:
            body["total_cost"] = priced.costs["total_cost"]
        return body


RECORD_COLUMNS: Final = (
    "s.id, s.charger_id, s.connector_id, s.id_tag, s.origin, s.started_at, s.meter_start_wh,"
    " s.stopped_at, s.meter_stop_wh, s.stop_reason, s.upstream_transaction_id,"
    " o.country_code, o.party_id, o.cdr_token, o.auth_method, o.authorization_reference,"
    " o.last_updated"
)


def record_from_row(row: sqlite3.Row) -> SessionRecord:
    from gateway.core.session import StopReason

    session = Session(
        id=row["id"],
        charger_id=row["charger_id"],
        connector_id=row["connector_id"],
        id_tag=row["id_tag"],
        origin=SessionOrigin(row["origin"]),
        started_at=datetime.fromisoformat(row["started_at"]),
        meter_start_wh=row["meter_start_wh"],
        stopped_at=datetime.fromisoformat(row["stopped_at"]) if row["stopped_at"] else None,
        meter_stop_wh=row["meter_stop_wh"],
        stop_reason=StopReason(row["stop_reason"]) if row["stop_reason"] else None,
        upstream_transaction_id=row["upstream_transaction_id"],
    )
    owner = (
        (str(row["country_code"]), str(row["party_id"]))
        if row["country_code"] is not None and row["party_id"] is not None
        else None
    )
    return SessionRecord(
        session,
        owner,
        dict(json.loads(row["cdr_token"])),
        str(row["auth_method"]),
        row["authorization_reference"],
        parse_datetime(row["last_updated"]),
    )


def owned_where(
    owners: Collection[tuple[str, str]], params: PageParams
) -> tuple[str, tuple[object, ...]]:
    """SQL filter on the owner (alias `o`) and last_updated; no owner matches nothing."""
    clauses: list[str] = []
    args: list[object] = []
    if owners:
        clauses.append(
            "(" + " OR ".join("(o.country_code = ? AND o.party_id = ?)" for _ in owners) + ")"
        )
        for country_code, party_id in owners:
            args.extend((country_code, party_id))
    else:
        clauses.append("0")
    if params.date_from is not None:
        clauses.append("o.last_updated >= ?")
        args.append(format_datetime(params.date_from))
    if params.date_to is not None:
        clauses.append("o.last_updated < ?")
        args.append(format_datetime(params.date_to))
    return " AND ".join(clauses), tuple(args)


def money(value: Decimal | float) -> float:
    """A monetary amount as OCPI JSON carries it (a number; 4 decimals keep exact cents and
    the spec examples' three)."""
    return float(round(Decimal(str(value)), 4))


def owners_of(roles: Collection[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(country_code, party_id) of each of a partner's roles."""
    return [(str(role["country_code"]), str(role["party_id"])) for role in roles]


# --- HTTP module (Sender) ------------------------------------------------------------------

_DATETIME: Final[dict[str, Any]] = {"type": "string", "format": "date-time"}
CDR_TOKEN_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["country_code", "party_id", "uid", "type", "contract_id"],
    "properties": {
        "country_code": {"type": "string"},
        "party_id": {"type": "string"},
        "uid": {"type": "string"},
        "type": {"type": "string"},
        "contract_id": {"type": "string"},
    },
}
CHARGING_PERIOD_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["start_date_time", "dimensions"],
    "properties": {
        "start_date_time": _DATETIME,
        "dimensions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "volume"],
                "properties": {"type": {"type": "string"}, "volume": {"type": "number"}},
            },
        },
        "tariff_id": {"type": "string"},
    },
}
PRICE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["excl_vat"],
    "properties": {"excl_vat": {"type": "number"}, "incl_vat": {"type": "number"}},
}
SESSION_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": [
        "country_code",
        "party_id",
        "id",
        "start_date_time",
        "kwh",
        "cdr_token",
        "auth_method",
        "location_id",
        "evse_uid",
        "connector_id",
        "currency",
        "status",
        "last_updated",
    ],
    "properties": {
        "country_code": {"type": "string"},
        "party_id": {"type": "string"},
        "id": {"type": "string"},
        "start_date_time": _DATETIME,
        "end_date_time": _DATETIME,
        "kwh": {"type": "number"},
        "cdr_token": CDR_TOKEN_SCHEMA,
        "auth_method": {"enum": ["AUTH_REQUEST", "COMMAND", "WHITELIST"]},
        "authorization_reference": {"type": "string"},
        "location_id": {"type": "string"},
        "evse_uid": {"type": "string"},
        "connector_id": {"type": "string"},
        "currency": {"type": "string"},
        "charging_periods": {"type": "array", "items": CHARGING_PERIOD_SCHEMA},
        "total_cost": PRICE_SCHEMA,
        "status": {"enum": ["ACTIVE", "COMPLETED", "INVALID", "PENDING", "RESERVATION"]},
        "last_updated": _DATETIME,
    },
}


def sessions_module(context: OcpiContext) -> Module:
    """The Sessions sender: the caller's sessions, paginated (date_from required). Its
    background task runs the whole roaming side (`Roaming.run`)."""
    from gateway.ocpi.partners import InterfaceRole
    from gateway.ocpi.roaming import EMSP_SIDE, owners_of, roaming
    from gateway.ocpi.server import Module, Route

    shared = roaming(context)

    async def list_sessions(request: OcpiRequest) -> Page:
        assert request.page is not None
        owners = owners_of(
            request.partner, (request.routing.from_country_code, request.routing.from_party_id)
        )
        return await shared.sessions.page(owners, request.page)

    return Module(
        identifier="sessions",
        roles=(InterfaceRole.SENDER,),
        partner_roles=EMSP_SIDE,
        routes=(
            Route(
                "GET",
                "",
                list_sessions,
                summary="Your sessions, oldest update first",
                paginated=True,
                require_date_from=True,
                response_schema=SESSION_SCHEMA,
            ),
        ),
        run=shared.run,
    )
