"""A station's charging profiles at work: installed and persisted per charge point, evaluated
into a limit, and that limit applied (the asyncio side of `gateway.smart_charging`).

Where the limit goes:
- **With load balancing** (`[[circuits]]`), it is the charger's "ocpp" cap in the balancing
  loop (`BalancingLoop.set_charger_cap`): the balancer never gives the charger more and shares
  what it frees among the others. A ChargePointMaxProfile caps the one charger too: each charger
  is its own charge point upstream (ocpp.md §1, one identity per charger), so no station
  stands for a whole circuit and none becomes a `set_circuit_limit`.
- **Without**, it limits the charger's setpoint directly (`Site.limit_current`).
- Below the charger's minimum (the 6 A pilot minimum) the session pauses; with no profile in
  effect the cap is lifted.

When: at every instant the limit may change (a period or validity boundary, computed from the
profiles, not polled), when a profile is set or cleared, and when a transaction starts or ends
(a TxProfile is bound to its transaction and deleted at its end). The wait is capped at
`MAX_WAIT_S` so that a step of the wall clock (NTP) cannot hold a stale limit for long.

The EMS report (2.0.1 NotifyChargingLimit, chargingLimitSource "EMS"): the station is told
through `ems_listener` when, during a session, the local balancer's allocation falls below the
limit of the CSMS's profiles in effect by at least `EMS_MARGIN_A` (with the allocation), when that
allocation then moves by at least `EMS_MARGIN_A` again (at most every `EMS_REPORT_INTERVAL_S`),
and when it stops doing so (None: ClearedChargingLimit). Without load balancing there is no
other source of limits and nothing is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from gateway.balancing.loop import BalancingLoop
from gateway.core.clock import Clock
from gateway.core.events import SessionEnded, SessionMeterSampled, SessionStarted, SiteEvent
from gateway.core.site import CONNECTOR_ID, Site
from gateway.smart_charging import (
    NOMINAL_VOLTAGE_V,
    ChargingProfile,
    CompositePeriod,
    Installed,
    InstalledProfiles,
    Limit,
    ProfileError,
    Purpose,
    RateUnit,
    TransactionContext,
    composite,
    limit_at,
    next_boundary,
    parse_profile_16,
    parse_profile_201,
    profile_json,
)
from gateway.smart_charging.installed import MAX_PERIODS, MAX_PROFILES, MAX_STACK_LEVEL
from gateway.store import Store

logger = logging.getLogger(__name__)

Version = Literal["1.6", "2.0.1"]

CAP_SOURCE: Final = "ocpp"
"""The balancing loop's name for caps from OCPP smart charging."""
HORIZON: Final = timedelta(days=8)
"""How far ahead the next change is looked for: past a weekly recurrence."""
MAX_WAIT_S: Final = 900.0
"""The longest wait between evaluations (a wall-clock step is noticed within this)."""
BOUNDARY_SLACK_S: Final = 0.01
"""Wake this much after a boundary, so the evaluation sees the new period (timers may fire a
hair early)."""
EMS_MARGIN_A: Final = 1.0
"""An allocation this far below the CSMS limit counts as the EMS limiting (a whole ampere:
the coarsest setpoint resolution, below which rounding alone would trigger reports)."""
EMS_REPORT_INTERVAL_S: Final = 60.0
"""At most one changed-limit report a minute: the balancer retunes every few seconds."""


class ProfileRefused(Exception):
    """A SetChargingProfile the station answers Rejected; the message says why."""


@dataclass(frozen=True, slots=True)
class _Stored:
    profile_id: int
    connector_id: int
    session_id: str | None
    version: str
    body: dict[str, Any]
    installed_at: str


class StationSmartCharging:
    """The charging profiles of one station (one charger). `run(store)` until cancelled."""

    def __init__(self, site: Site, charger_id: str, *, version: Version, clock: Clock) -> None:
        self.site = site
        self.charger_id = charger_id
        self.version = version
        self.profiles = InstalledProfiles()
        self.balancing: BalancingLoop | None = None
        """Set (before `run`) when the site is balanced: limits then become its caps."""
        self.ems_listener: Callable[[float | None], Awaitable[None]] | None = None
        """2.0.1: told the balancer's allocation when it limits below the CSMS, None when
        it stops (see the module docstring)."""
        self.applied_a: float | None = None
        """The limit applied last (None: no profile in effect, no cap)."""
        self._clock = clock
        self._store: Store | None = None
        self._bodies: dict[int, dict[str, Any]] = {}
        self._remote_start_profiles: dict[str, ChargingProfile] = {}
        self._changed = asyncio.Event()
        self._loaded = asyncio.Event()
        self._ems_limit_a: float | None = None
        self._ems_reported_at = -math.inf
        self._log = {"charger_id": charger_id}

    # --- evaluation --------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    @property
    def _spec_phases(self) -> int:
        return self.site.spec(self.charger_id).phases

    @property
    def _max_current_a(self) -> float:
        return self.site.spec(self.charger_id).max_current_a

    def transaction(self) -> TransactionContext | None:
        session = self.site.connector(self.charger_id).session
        if session is None:
            return None
        return TransactionContext(session.id, session.started_at)

    def limit_now(self, at: datetime | None = None) -> Limit:
        """The limit in force on the connector now (or at `at`)."""
        return limit_at(
            self.profiles,
            at or self._clock.now(),
            connector_id=CONNECTOR_ID,
            transaction=self.transaction(),
            charger_phases=self._spec_phases,
            max_current_a=self._max_current_a,
        )

    def composite_schedule(
        self, connector_id: int, duration_s: int, start: datetime | None = None
    ) -> tuple[datetime, list[CompositePeriod]]:
        """(schedule start, periods) from now (whole seconds) for `duration_s`."""
        start = start or self._clock.now().replace(microsecond=0)
        periods = composite(
            self.profiles,
            start,
            timedelta(seconds=duration_s),
            connector_id=connector_id,
            transaction=self.transaction() if connector_id != 0 else None,
            charger_phases=self._spec_phases,
            max_current_a=self._max_current_a,
        )
        return start, periods

    def composite_json(
        self, connector_id: int, duration_s: int, unit: RateUnit | None
    ) -> tuple[datetime, dict[str, Any]]:
        """The composite as a chargingSchedule (1.6 field names, which 2.0.1 shares), in `unit`
        (amperes when None)."""
        start, periods = self.composite_schedule(connector_id, duration_s)
        unit = unit or RateUnit.AMPS
        out_periods: list[dict[str, Any]] = []
        for period in periods:
            offset = int((period.start - start).total_seconds())
            limit = period.amps
            if unit is RateUnit.WATTS:
                limit = period.amps * NOMINAL_VOLTAGE_V * period.number_phases
            entry = {
                "startPeriod": offset,
                "limit": round(limit, 1),
                "numberPhases": period.number_phases,
            }
            if out_periods and out_periods[-1]["startPeriod"] == offset:
                out_periods[-1] = entry  # two changes within one second: the later holds
            else:
                out_periods.append(entry)
        schedule = {
            "duration": duration_s,
            "chargingRateUnit": unit.value,
            "chargingSchedulePeriod": out_periods,
        }
        return start, schedule

    # --- changes -------------------------------------------------------------------------------

    def parse(self, payload: Any) -> ChargingProfile:
        """Parse a profile in this station's version. Raises `ProfileError`."""
        return parse_profile_16(payload) if self.version == "1.6" else parse_profile_201(payload)

    async def install(self, payload: dict[str, Any], connector_id: int) -> ChargingProfile:
        """Check, install and persist a profile from SetChargingProfile (`connector_id`: the
        1.6 connectorId or the 2.0.1 evseId). Raises `ProfileError` (malformed) or
        `ProfileRefused` (cannot apply here, e.g. a TxProfile without its transaction)."""
        profile = self.parse(payload)
        if connector_id not in (0, CONNECTOR_ID):
            raise ProfileRefused(f"no connector {connector_id}")
        self._check_bounds(profile)
        session_id = None
        if profile.purpose is Purpose.CHARGE_POINT_MAX and connector_id != 0:
            raise ProfileRefused("a ChargePointMaxProfile belongs on connector 0")
        if profile.purpose is Purpose.TX:
            if connector_id == 0:
                raise ProfileRefused("a TxProfile belongs on a connector, not 0")
            session = self.site.connector(self.charger_id).session
            if session is None:
                raise ProfileRefused("no transaction is active")
            if profile.transaction_id is None and self.version == "2.0.1":
                raise ProfileRefused("a TxProfile needs the transactionId")
            if profile.transaction_id is not None and profile.transaction_id not in (
                session.id,
                session.upstream_transaction_id,
            ):
                raise ProfileRefused(f"transaction {profile.transaction_id} is not active")
            session_id = session.id
        await self._install(profile, payload, connector_id, session_id)
        return profile

    def _check_bounds(self, profile: ChargingProfile) -> None:
        if profile.stack_level > MAX_STACK_LEVEL:
            raise ProfileRefused(f"stackLevel {profile.stack_level} above {MAX_STACK_LEVEL}")
        if len(profile.schedule.periods) > MAX_PERIODS:
            raise ProfileRefused(f"more than {MAX_PERIODS} schedule periods")
        if self.profiles.get(profile.id) is None and len(self.profiles) >= MAX_PROFILES:
            raise ProfileRefused(f"{MAX_PROFILES} profiles are installed already")

    def expect_remote_start_profile(self, id_tag: str, payload: dict[str, Any]) -> None:
        """A RemoteStart/RequestStartTransaction carried a chargingProfile: check it now
        (raises `ProfileError`, or `ProfileRefused` unless it is a TxProfile) and install it
        as the TxProfile of the session `id_tag` starts next."""
        profile = self.parse(payload)
        if profile.purpose is not Purpose.TX:
            raise ProfileRefused("a remote start's chargingProfile must be a TxProfile")
        self._check_bounds(profile)
        self._remote_start_profiles[id_tag] = profile
        self._bodies[profile.id] = payload

    def forget_remote_start_profile(self, id_tag: str) -> None:
        self._remote_start_profiles.pop(id_tag, None)

    async def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> list[int]:
        """ClearChargingProfile: the ids removed (persisted)."""
        removed = self.profiles.clear(
            profile_id=profile_id,
            connector_id=connector_id,
            purpose=purpose,
            stack_level=stack_level,
        )
        await self._forget(removed)
        if removed:
            logger.info("charging profiles cleared", extra={**self._log, "profile_ids": removed})
        return removed

    def report_json(self, installed: Installed) -> dict[str, Any]:
        """An installed profile in this station's version (GetChargingProfiles)."""
        return profile_json(installed.profile, v201=self.version == "2.0.1")

    async def _install(
        self,
        profile: ChargingProfile,
        payload: dict[str, Any],
        connector_id: int,
        session_id: str | None,
    ) -> None:
        installed = Installed(profile, connector_id, self._clock.now(), session_id)
        replaced = self.profiles.install(installed)
        for profile_id in replaced:
            self._bodies.pop(profile_id, None)
        self._bodies[profile.id] = payload
        if self._store is not None:
            row = _Stored(
                profile.id,
                connector_id,
                session_id,
                self.version,
                payload,
                installed.installed_at.isoformat(),
            )

            def write(db: sqlite3.Connection) -> None:
                _delete(db, self.charger_id, replaced)
                _put(db, self.charger_id, row)

            await self._store.write(write)
        logger.info(
            "charging profile installed",
            extra={
                **self._log,
                "profile_id": profile.id,
                "purpose": profile.purpose.value,
                "stack_level": profile.stack_level,
                "connector_id": connector_id,
                "replaced": replaced,
            },
        )
        self._changed.set()

    async def _forget(self, removed: list[int]) -> None:
        if not removed:
            return
        for profile_id in removed:
            self._bodies.pop(profile_id, None)
        if self._store is not None:
            await self._store.write(lambda db: _delete(db, self.charger_id, removed))
        self._changed.set()

    # --- running -------------------------------------------------------------------------------

    async def wait_loaded(self) -> None:
        await self._loaded.wait()

    async def run(self, store: Store) -> None:
        """Load the persisted profiles, then keep the limit applied until cancelled."""
        events = self.site.subscribe(self.charger_id)
        try:
            await self._load(store)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._follow_events(events), name=f"sc-events-{self.charger_id}")
                tasks.create_task(self._apply_forever(), name=f"sc-apply-{self.charger_id}")
        finally:
            self.site.unsubscribe(events)

    async def _load(self, store: Store) -> None:
        self._store = store
        rows = await store.read(lambda db: _rows(db, self.charger_id))
        for row in rows:
            try:
                parse = parse_profile_16 if row.version == "1.6" else parse_profile_201
                profile = parse(row.body)
            except ProfileError as error:
                logger.warning(
                    "stored charging profile unreadable, dropped: %s",
                    error,
                    extra={**self._log, "profile_id": row.profile_id},
                )
                await store.write(
                    functools.partial(
                        _delete, charge_point=self.charger_id, profile_ids=[row.profile_id]
                    )
                )
                continue
            self.profiles.install(
                Installed(
                    profile,
                    row.connector_id,
                    datetime.fromisoformat(row.installed_at),
                    row.session_id,
                )
            )
            self._bodies[profile.id] = row.body
        # TxProfiles of sessions that ended while the gateway was down.
        open_sessions = {session.id for session in await store.open_sessions()}
        stale = [
            entry.profile.id
            for entry in self.profiles
            if entry.profile.purpose is Purpose.TX and entry.session_id not in open_sessions
        ]
        for profile_id in stale:
            self.profiles.clear(profile_id=profile_id)
        await self._forget(stale)
        self._loaded.set()

    async def _apply_forever(self) -> None:
        while True:
            self._changed.clear()
            now = self._clock.now()
            try:
                self._apply(self.limit_now(now))
            except Exception:
                logger.exception("could not apply the charging limit", extra=self._log)
            boundary = next_boundary(self.profiles, now, HORIZON, self.transaction())
            wait = MAX_WAIT_S
            if boundary is not None:
                wait = min(wait, (boundary - now).total_seconds() + BOUNDARY_SLACK_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.0)):
                    await self._changed.wait()

    def _apply(self, limit: Limit) -> None:
        amps = None if limit.bound_by is None else limit.amps
        if amps == self.applied_a:
            return
        self.applied_a = amps
        if self.balancing is not None:
            self.balancing.set_charger_cap(self.charger_id, CAP_SOURCE, amps)
        else:
            self.site.limit_current(self.charger_id, amps)
        logger.info(
            "charging limit applied",
            extra={
                **self._log,
                "limit_a": amps,
                "bound_by": None if limit.bound_by is None else limit.bound_by.value,
                "via": "balancing" if self.balancing is not None else "setpoint",
            },
        )

    async def _follow_events(self, events: asyncio.Queue[SiteEvent]) -> None:
        while True:
            event = await events.get()
            try:
                if isinstance(event, SessionStarted):
                    await self._session_started(event)
                elif isinstance(event, SessionEnded):
                    removed = self.profiles.transaction_ended(event.session.id)
                    await self._forget(removed)
                    self._changed.set()
                    await self._report_ems(None)
                elif isinstance(event, SessionMeterSampled):
                    await self._check_ems()
            except Exception:
                logger.exception("smart charging: %s not handled", type(event).__name__)

    async def _session_started(self, event: SessionStarted) -> None:
        profile = self._remote_start_profiles.pop(event.session.id_tag, None)
        if profile is not None:
            payload = self._bodies.get(profile.id, {})
            await self._install(profile, payload, event.session.connector_id, event.session.id)
        self._changed.set()

    async def _check_ems(self) -> None:
        if self.balancing is None or self.ems_listener is None:
            return
        allocated = self.site.connector(self.charger_id).allocated_current_a
        csms = self.limit_now()
        limiting = (
            csms.bound_by is not None  # no profile in effect: nothing of the CSMS's to undercut
            and allocated is not None
            and allocated <= csms.amps - EMS_MARGIN_A
        )
        await self._report_ems(allocated if limiting else None)

    async def _report_ems(self, allocated: float | None) -> None:
        listener = self.ems_listener
        if listener is None:
            return
        previous = self._ems_limit_a
        if allocated is None:
            if previous is None:
                return
        elif previous is not None:
            now = self._clock.monotonic()
            if abs(allocated - previous) < EMS_MARGIN_A:
                return
            if now - self._ems_reported_at < EMS_REPORT_INTERVAL_S:
                return
        self._ems_limit_a = allocated
        self._ems_reported_at = self._clock.monotonic()
        await listener(allocated)


def parse_rate_unit(value: Any) -> RateUnit | None:
    """A request's optional chargingRateUnit. Raises `ProfileError` for an unknown one."""
    if value is None:
        return None
    try:
        return RateUnit(value)
    except ValueError:
        raise ProfileError(f"chargingRateUnit: {value!r} is not A or W") from None


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _rows(db: sqlite3.Connection, charge_point: str) -> list[_Stored]:
    return [
        _Stored(
            row["profile_id"],
            row["connector_id"],
            row["session_id"],
            row["version"],
            json.loads(row["body"]),
            row["installed_at"],
        )
        for row in db.execute(
            "SELECT * FROM ocpp_charging_profiles WHERE charge_point = ? ORDER BY profile_id",
            (charge_point,),
        )
    ]


def _put(db: sqlite3.Connection, charge_point: str, row: _Stored) -> None:
    db.execute(
        "INSERT OR REPLACE INTO ocpp_charging_profiles (charge_point, profile_id, connector_id,"
        " session_id, version, body, installed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            charge_point,
            row.profile_id,
            row.connector_id,
            row.session_id,
            row.version,
            json.dumps(row.body),
            row.installed_at,
        ),
    )


def _delete(db: sqlite3.Connection, charge_point: str, profile_ids: list[int]) -> None:
    db.executemany(
        "DELETE FROM ocpp_charging_profiles WHERE charge_point = ? AND profile_id = ?",
        [(charge_point, profile_id) for profile_id in profile_ids],
    )
