"""OCPI 2.2.1 ChargingProfiles (we are Receiver): a partner's limit on one of its sessions
becomes a cap of the load balancing (mod_charging_profiles §14, ocpi.md §4).

- PUT `/{session_id}` (SetChargingProfile), GET `/{session_id}?duration&response_url`
  (GetActiveChargingProfile), DELETE `/{session_id}?response_url` (ClearProfile) are answered
  at once with a ChargingProfileResponse (ACCEPTED, NOT_SUPPORTED, REJECTED, UNKNOWN_SESSION,
  with a timeout); the result (ChargingProfileResult, ActiveChargingProfileResult,
  ClearProfileResult) is POSTed to the `response_url`.
- The profile is evaluated with the OCPP smart-charging evaluator
  (`gateway.smart_charging.schedule`) as an Absolute TxProfile of the session, starting at
  `start_date_time` or, without one, when it was set; W become A per phase at the nominal
  voltage over the charger's phases. The limit in force goes to the balancing loop as the
  charger's "ocpi" cap (`BalancingLoop.set_charger_cap`), re-evaluated at each period
  boundary, lifted when the profile ends, is cleared, or the session ends.
- Without load balancing (no [[circuits]]) there is nothing to enforce a cap with: every
  request is NOT_SUPPORTED.
- Profiles are kept in `ocpi_charging_profiles`, so a restart puts the cap of a session that
  is still open back in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sqlite3
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from gateway.core.clock import Clock, SystemClock
from gateway.core.events import SessionEnded
from gateway.core.session import Session
from gateway.core.site import Site
from gateway.ocpi.sessions import SessionBook
from gateway.ocpi.transport import format_datetime, invalid, parse_datetime
from gateway.smart_charging.profile import (
    ChargingProfile,
    Kind,
    Purpose,
    RateUnit,
    Schedule,
    SchedulePeriod,
)
from gateway.smart_charging.schedule import (
    Installed,
    TransactionContext,
    boundaries,
    limit_at,
)
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.ocpi.server import Module, OcpiContext, OcpiRequest

logger = logging.getLogger(__name__)

CAP_SOURCE: Final = "ocpi"
PROFILE_TIMEOUT_S: Final = 30
"""ChargingProfileResponse.timeout: the result is computed locally and follows at once; the
margin covers the push queue."""
MAX_PERIODS: Final = 1024
"""More schedule periods than any day at one-minute resolution needs: a bound on a partner's
request, not a spec limit."""
REEVALUATE_MAX_S: Final = 60.0
"""Re-evaluate at least this often, in case the clock stepped past a boundary."""


class ChargingProfileResponseType(StrEnum):
    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TOO_OFTEN = "TOO_OFTEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ChargerCaps(Protocol):
    """Where a cap goes (`gateway.balancing.loop.BalancingLoop`)."""

    def set_charger_cap(self, charger_id: str, source: str, amps: float | None) -> None: ...


ResultSender = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class _Active:
    session: Session
    profile: dict[str, Any]
    installed: Installed


def validate_profile(body: object) -> dict[str, Any]:
    """An OCPI ChargingProfile (mod_charging_profiles §14.4.2); raises `OcpiError` 2001."""
    if not isinstance(body, dict):
        raise invalid("charging_profile: must be an object")
    unit = body.get("charging_rate_unit")
    if unit not in ("W", "A"):
        raise invalid("charging_profile.charging_rate_unit: must be W or A")
    start = body.get("start_date_time")
    if start is not None:
        try:
            parse_datetime(start)
        except ValueError:
            raise invalid("charging_profile.start_date_time: not an RFC 3339 DateTime") from None
    duration = body.get("duration")
    if duration is not None and (
        not isinstance(duration, int) or isinstance(duration, bool) or duration < 0
    ):
        raise invalid("charging_profile.duration: must be a non-negative integer")
    minimum = body.get("min_charging_rate")
    if minimum is not None and not _non_negative(minimum):
        raise invalid("charging_profile.min_charging_rate: must be a non-negative number")
    periods = body.get("charging_profile_period", [])
    if not isinstance(periods, list) or len(periods) > MAX_PERIODS:
        raise invalid(f"charging_profile.charging_profile_period: a list of at most {MAX_PERIODS}")
    previous = -1
    for index, period in enumerate(periods):
        where = f"charging_profile.charging_profile_period[{index}]"
        if not isinstance(period, dict):
            raise invalid(f"{where}: must be an object")
        start_period = period.get("start_period")
        if (
            not isinstance(start_period, int)
            or isinstance(start_period, bool)
            or start_period <= previous
        ):
            raise invalid(f"{where}.start_period: integers, increasing, from 0")
        if not _non_negative(period.get("limit")):
            raise invalid(f"{where}.limit: must be a non-negative number")
        previous = start_period
    return dict(body)


def _non_negative(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def installed_profile(profile: Mapping[str, Any], session: Session, set_at: datetime) -> Installed:
    """An OCPI profile as the OCPP evaluator's Absolute TxProfile of the session."""
    start = profile.get("start_date_time")
    periods = tuple(
        SchedulePeriod(int(p["start_period"]), float(p["limit"]))
        for p in profile.get("charging_profile_period", [])
    )
    schedule = Schedule(
        unit=RateUnit(profile["charging_rate_unit"]),
        periods=periods,
        duration_s=profile.get("duration"),
        start=parse_datetime(start) if start is not None else set_at,
        min_charging_rate=profile.get("min_charging_rate"),
    )
    ocpp_profile = ChargingProfile(
        id=0, stack_level=0, purpose=Purpose.TX, kind=Kind.ABSOLUTE, schedule=schedule
    )
    return Installed(ocpp_profile, session.connector_id, set_at, session.id)


class ChargingProfiles:
    """The partners' profiles on their sessions; see the module docstring."""

    def __init__(
        self,
        store: Store,
        site: Site,
        sessions: SessionBook,
        caps: ChargerCaps | None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._site = site
        self._sessions = sessions
        self._caps = caps
        self._clock: Clock = clock or SystemClock()
        self._active: dict[str, _Active] = {}
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def supported(self) -> bool:
        return self._caps is not None

    # --- requests ------------------------------------------------------------------------

    async def set_profile(
        self,
        session_id: str,
        body: Any,
        owners: Collection[tuple[str, str]],
        send_result: ResultSender,
    ) -> dict[str, Any]:
        """SetChargingProfile; returns the ChargingProfileResponse."""
        if not isinstance(body, dict):
            raise invalid("SetChargingProfile: must be an object")
        profile = validate_profile(body.get("charging_profile"))
        response_url = _response_url(body.get("response_url"))
        if not self.supported:
            return _response(ChargingProfileResponseType.NOT_SUPPORTED)
        session = await self._own_active_session(session_id, owners)
        if session is None:
            return _response(ChargingProfileResponseType.UNKNOWN_SESSION)
        set_at = self._clock.now()
        installed = installed_profile(profile, session, set_at)
        self._active[session_id] = _Active(session, profile, installed)
        row = (session_id, session.charger_id, json.dumps(profile), set_at.isoformat())
        await self._store.write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO ocpi_charging_profiles (session_id, charger_id, profile,"
                " set_at) VALUES (?, ?, ?, ?)",
                row,
            )
        )
        self._apply(session_id)
        self._changed.set()
        self._later(send_result, response_url, {"result": "ACCEPTED"})
        return _response(ChargingProfileResponseType.ACCEPTED)

    async def clear_profile(
        self,
        session_id: str,
        response_url: str | None,
        owners: Collection[tuple[str, str]],
        send_result: ResultSender,
    ) -> dict[str, Any]:
        """ClearProfile; returns the ChargingProfileResponse."""
        url = _response_url(response_url)
        if not self.supported:
            return _response(ChargingProfileResponseType.NOT_SUPPORTED)
        session = await self._own_active_session(session_id, owners)
        if session is None:
            return _response(ChargingProfileResponseType.UNKNOWN_SESSION)
        await self._forget(session_id, session.charger_id)
        self._later(send_result, url, {"result": "ACCEPTED"})
        return _response(ChargingProfileResponseType.ACCEPTED)

    async def get_active(
        self,
        session_id: str,
        duration_text: str | None,
        response_url: str | None,
        owners: Collection[tuple[str, str]],
        send_result: ResultSender,
    ) -> dict[str, Any]:
        """GetActiveChargingProfile; returns the ChargingProfileResponse, the
        ActiveChargingProfileResult (the limits over `duration` seconds from now, in A per
        phase) follows."""
        url = _response_url(response_url)
        try:
            duration = int(duration_text or "")
        except ValueError:
            raise invalid("duration: required, an integer number of seconds") from None
        if duration < 0:
            raise invalid("duration: must not be negative")
        if not self.supported:
            return _response(ChargingProfileResponseType.NOT_SUPPORTED)
        session = await self._own_active_session(session_id, owners)
        if session is None:
            return _response(ChargingProfileResponseType.UNKNOWN_SESSION)
        now = self._clock.now()
        result = {
            "result": "ACCEPTED",
            "profile": {
                "start_date_time": format_datetime(now),
                "charging_profile": self.composite(session, now, duration),
            },
        }
        self._later(send_result, url, result)
        return _response(ChargingProfileResponseType.ACCEPTED)

    def composite(self, session: Session, start: datetime, duration_s: int) -> dict[str, Any]:
        """The limits in force over [start, start + duration) as one ChargingProfile in A."""
        spec = self._site.spec(session.charger_id)
        active = self._active.get(session.id)
        entries = [active.installed] if active is not None else []
        context = TransactionContext(session.id, session.started_at)
        end = start + timedelta(seconds=duration_s)
        periods: list[dict[str, Any]] = []
        for at in [start, *boundaries(entries, start, end, context)]:
            limit = limit_at(
                entries,
                at,
                connector_id=session.connector_id,
                transaction=context,
                charger_phases=spec.phases,
                max_current_a=spec.max_current_a,
            )
            amps = round(limit.amps, 1)
            if periods and periods[-1]["limit"] == amps:
                continue
            periods.append({"start_period": int((at - start).total_seconds()), "limit": amps})
        return {
            "charging_rate_unit": "A",
            "duration": duration_s,
            "charging_profile_period": periods,
        }

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Restore stored profiles, then keep caps in step with the schedules and the
        sessions until cancelled."""
        await self._restore()
        events = self._site.subscribe()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._follow_sessions(events), name="ocpi-profiles-sessions")
                tasks.create_task(self._follow_schedules(), name="ocpi-profiles-schedules")
        finally:
            self._site.unsubscribe(events)
            for task in list(self._tasks):
                task.cancel()

    async def _follow_sessions(self, events: asyncio.Queue[Any]) -> None:
        while True:
            event = await events.get()
            if isinstance(event, SessionEnded) and event.session.id in self._active:
                await self._forget(event.session.id, event.session.charger_id)

    async def _follow_schedules(self) -> None:
        while True:
            self._changed.clear()
            for session_id in list(self._active):
                self._apply(session_id)
            now = self._clock.now()
            wait = REEVALUATE_MAX_S
            for active in self._active.values():
                upcoming = boundaries(
                    [active.installed],
                    now,
                    now + timedelta(seconds=REEVALUATE_MAX_S),
                    TransactionContext(active.session.id, active.session.started_at),
                )
                if upcoming:
                    wait = min(wait, max(0.05, (upcoming[0] - now).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()

    def _apply(self, session_id: str) -> None:
        active = self._active.get(session_id)
        if active is None or self._caps is None:
            return
        session = active.session
        spec = self._site.spec(session.charger_id)
        limit = limit_at(
            [active.installed],
            self._clock.now(),
            connector_id=session.connector_id,
            transaction=TransactionContext(session.id, session.started_at),
            charger_phases=spec.phases,
            max_current_a=spec.max_current_a,
        )
        amps = None if limit.bound_by is None else max(0.0, limit.amps)
        try:
            self._caps.set_charger_cap(session.charger_id, CAP_SOURCE, amps)
        except (LookupError, ValueError):
            logger.warning(
                "charging profile cap not applied",
                extra={"charger_id": session.charger_id, "amps": amps},
            )

    async def _forget(self, session_id: str, charger_id: str) -> None:
        self._active.pop(session_id, None)
        if self._caps is not None:
            with contextlib.suppress(LookupError, ValueError):
                self._caps.set_charger_cap(charger_id, CAP_SOURCE, None)
        await self._store.write(
            lambda db: db.execute(
                "DELETE FROM ocpi_charging_profiles WHERE session_id = ?", (session_id,)
            )
        )
        self._changed.set()

    async def _restore(self) -> None:
        def read(db: sqlite3.Connection) -> list[sqlite3.Row]:
            return db.execute("SELECT * FROM ocpi_charging_profiles").fetchall()

        for row in await self._store.read(read):
            session = None
            with contextlib.suppress(LookupError):
                session = self._site.connector(row["charger_id"]).session
            if session is None or session.id != row["session_id"]:
                record = await self._sessions.record(row["session_id"])
                if record is None or not record.session.active:
                    await self._forget(row["session_id"], row["charger_id"])
                    continue
                session = record.session
            profile = dict(json.loads(row["profile"]))
            installed = installed_profile(profile, session, datetime.fromisoformat(row["set_at"]))
            self._active[session.id] = _Active(session, profile, installed)
            self._apply(session.id)

    async def _own_active_session(
        self, session_id: str, owners: Collection[tuple[str, str]]
    ) -> Session | None:
        record = await self._sessions.record(session_id)
        if record is None or not record.session.active or record.owner not in owners:
            return None
        return record.session

    def _later(self, send_result: ResultSender, url: str, result: dict[str, Any]) -> None:
        # The result goes out after the synchronous response, as the spec's flow has it.
        async def send() -> None:
            await asyncio.sleep(0)
            send_result(url, result)

        task = asyncio.create_task(send(), name="ocpi-profile-result")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _response(result: ChargingProfileResponseType) -> dict[str, Any]:
    return {"result": result.value, "timeout": PROFILE_TIMEOUT_S}


def _response_url(value: object) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise invalid("response_url: required, an http(s) URL")
    return value


# --- HTTP module (Receiver) ----------------------------------------------------------------

PROFILE_RESPONSE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["result", "timeout"],
    "properties": {
        "result": {"enum": [r.value for r in ChargingProfileResponseType]},
        "timeout": {"type": "integer"},
    },
}
SET_PROFILE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["charging_profile", "response_url"],
    "properties": {
        "response_url": {"type": "string", "maxLength": 255},
        "charging_profile": {
            "type": "object",
            "required": ["charging_rate_unit"],
            "properties": {
                "start_date_time": {"type": "string", "format": "date-time"},
                "duration": {"type": "integer", "minimum": 0},
                "charging_rate_unit": {"enum": ["W", "A"]},
                "min_charging_rate": {"type": "number", "minimum": 0},
                "charging_profile_period": {
                    "type": "array",
                    "maxItems": MAX_PERIODS,
                    "items": {
                        "type": "object",
                        "required": ["start_period", "limit"],
                        "properties": {
                            "start_period": {"type": "integer", "minimum": 0},
                            "limit": {"type": "number", "minimum": 0},
                        },
                    },
                },
            },
        },
    },
}
_SESSION_PARAM: Final[dict[str, dict[str, Any]]] = {
    "session_id": {"type": "string", "minLength": 1, "maxLength": 36}
}
_URL_QUERY: Final[dict[str, Any]] = {"type": "string", "maxLength": 255}


def charging_profiles_module(context: OcpiContext) -> Module:
    """The ChargingProfiles receiver: GET, PUT and DELETE `/{session_id}`."""
    from gateway.ocpi.partners import InterfaceRole
    from gateway.ocpi.roaming import EMSP_SIDE, owners_of, roaming
    from gateway.ocpi.server import Module, Route

    shared = roaming(context)

    def owners(request: OcpiRequest) -> list[tuple[str, str]]:
        return owners_of(
            request.partner, (request.routing.from_country_code, request.routing.from_party_id)
        )

    async def get_active(request: OcpiRequest) -> Any:
        return await shared.profiles.get_active(
            request.match["session_id"],
            request.query.get("duration"),
            request.query.get("response_url"),
            owners(request),
            shared.send_to(request.partner),
        )

    async def put_profile(request: OcpiRequest) -> Any:
        return await shared.profiles.set_profile(
            request.match["session_id"],
            request.body,
            owners(request),
            shared.send_to(request.partner),
        )

    async def delete_profile(request: OcpiRequest) -> Any:
        return await shared.profiles.clear_profile(
            request.match["session_id"],
            request.query.get("response_url"),
            owners(request),
            shared.send_to(request.partner),
        )

    return Module(
        identifier="chargingprofiles",
        roles=(InterfaceRole.RECEIVER,),
        partner_roles=EMSP_SIDE,
        routes=(
            Route(
                "GET",
                "/{session_id}",
                get_active,
                summary="The active profile of a session, sent to response_url",
                path_params=_SESSION_PARAM,
                query_params={
                    "duration": {"type": "integer", "minimum": 0},
                    "response_url": _URL_QUERY,
                },
                required_query=frozenset({"duration", "response_url"}),
                response_schema=PROFILE_RESPONSE_SCHEMA,
            ),
            Route(
                "PUT",
                "/{session_id}",
                put_profile,
                summary="Set a session's charging profile (a cap of the load balancing)",
                path_params=_SESSION_PARAM,
                request_schema=SET_PROFILE_SCHEMA,
                response_schema=PROFILE_RESPONSE_SCHEMA,
            ),
            Route(
                "DELETE",
                "/{session_id}",
                delete_profile,
                summary="Clear a session's charging profile",
                path_params=_SESSION_PARAM,
                query_params={"response_url": _URL_QUERY},
                required_query=frozenset({"response_url"}),
                response_schema=PROFILE_RESPONSE_SCHEMA,
            ),
        ),
    )
