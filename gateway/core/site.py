"""The site: every charger the gateway serves, polled, with its connector state machine.

`Site` is the asyncio shell around the I/O-free `Connector` logic. It polls each charger's
driver, feeds the readings to the connector, writes the connector's desired charging offer
back to the charger, asks the registered `Authorizer` about presented identifiers, records
sessions in the `SessionLedger`, and publishes `SiteEvent`s to subscribers. Adapters (OCPP
upstream now; OCPI and a local API later) only ever talk to each other through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gateway.core.charger import ChargerControl, ChargerReading, ChargerUnavailable
from gateway.core.clock import Clock, SystemClock
from gateway.core.connector import (
    DEFAULT_CONNECTION_TIMEOUT_S,
    ChargingOffer,
    Connector,
    RemoteStartRefused,
)
from gateway.core.events import (
    AuthorizationRequested,
    ConnectorEffect,
    ReservationEnded,
    SessionEnded,
    SessionStarted,
    SiteEvent,
)
from gateway.core.reservations import (
    ParentIdSource,
    Reservation,
    ReservationEndReason,
    ReservationLedger,
    ReservationStatus,
)
from gateway.core.session import Session, StopReason
from gateway.core.tasks import raise_if_cancelling

__all__ = [
    "Authorizer",
    "ChargerDriver",
    "ChargerSpec",
    "PreAuthorizer",
    "RemoteStartRefused",
    "SessionLedger",
    "Site",
]

logger = logging.getLogger(__name__)

CONNECTOR_ID = 1
"""The gateway's chargers have one connector each for now."""


class ChargerDriver(ChargerControl, Protocol):
    """A southbound driver for one charger: commands plus a consistent poll."""

    async def read(self) -> ChargerReading:
        """Poll the charger. Raises `ChargerUnavailable` when it cannot be reached."""


class Authorizer(Protocol):
    """Decides whether an identifier presented at a charger may start a session. Registered
    by the upstream adapter that owns the charger (OCPP: an Authorize call)."""

    async def authorize(self, charger_id: str, id_tag: str) -> bool:
        """True to accept. May take seconds (a network round trip); should not raise."""


class PreAuthorizer(Protocol):
    """Consulted before a charger's `Authorizer` for every identifier presented at any
    charger (OCPI: the tokens roaming partners pushed). It decides the identifiers it knows
    and passes the others on."""

    async def pre_authorize(self, charger_id: str, id_tag: str) -> bool | None:
        """True/False to decide; None when the identifier is not its own (the charger's
        `Authorizer` decides). Should not raise."""


class SessionLedger(Protocol):
    """Durable record of sessions (implemented by `gateway.store.Store`)."""

    async def record_session_started(self, session: Session) -> None: ...
    async def record_upstream_transaction_id(self, session_id: str, value: str) -> None: ...
    async def record_session_ended(self, session: Session) -> None: ...
    async def open_sessions(self) -> list[Session]:
        """Sessions started and not ended, e.g. when the gateway stopped mid-session."""
        ...


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    """What the site needs to know about a charger to run it."""

    id: str
    max_current_a: float
    """The most the charger may offer (its rating or its share of the supply)."""
    phases: int = 3
    poll_interval_s: float = 1.0


@dataclass(slots=True)
class _SiteCharger:
    spec: ChargerSpec
    driver: ChargerDriver
    connector: Connector
    poll_now: asyncio.Event = field(default_factory=asyncio.Event)
    authorizer: Authorizer | None = None
    unreachable_logged: bool = False


class Site:
    """The chargers of one site and their sessions. Call `run()` to start polling."""

    def __init__(
        self,
        *,
        ledger: SessionLedger | None = None,
        clock: Clock | None = None,
        connection_timeout_s: float = DEFAULT_CONNECTION_TIMEOUT_S,
        reservations: ReservationLedger | None = None,
    ) -> None:
        self._ledger = ledger
        self._reservation_ledger = reservations
        self._reservation_timers: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._clock: Clock = clock or SystemClock()
        self._connection_timeout_s = connection_timeout_s
        self._chargers: dict[str, _SiteCharger] = {}
        self._subscribers: list[tuple[str | None, asyncio.Queue[SiteEvent]]] = []
        # One FIFO for every effect of every connector, drained by a single task, so ledger
        # writes and events keep the order in which the state changed.
        self._effects: asyncio.Queue[ConnectorEffect] = asyncio.Queue()
        self._background: set[asyncio.Task[None]] = set()
        self._recording: asyncio.Future[None] | None = None
        """The ledger write under way, which a stop waits for."""
        self._pre_authorizer: PreAuthorizer | None = None
        self.poll_observer: Callable[[str, float, bool], None] | None = None
        """Told (charger id, seconds the read took, whether the charger answered) after every
        poll: the metrics' poll latency (`gateway.monitoring.metrics`). Must be cheap."""

    # --- composition -----------------------------------------------------------------------

    def add_charger(self, spec: ChargerSpec, driver: ChargerDriver) -> None:
        """Register a charger; before `run()` only. Raises ValueError for a duplicate id."""
        if spec.id in self._chargers:
            raise ValueError(f"duplicate charger id {spec.id!r}")
        connector = Connector(
            spec.id,
            CONNECTOR_ID,
            max_current_a=spec.max_current_a,
            clock=self._clock,
            connection_timeout_s=self._connection_timeout_s,
        )
        self._chargers[spec.id] = _SiteCharger(spec, driver, connector)

    def set_authorizer(self, charger_id: str, authorizer: Authorizer | None) -> None:
        """Route the authorization of identifiers presented at `charger_id` to `authorizer`.
        Without one, presented identifiers are accepted (a free-vend site)."""
        self._charger(charger_id).authorizer = authorizer

    def set_pre_authorizer(self, pre_authorizer: PreAuthorizer | None) -> None:
        """Consult `pre_authorizer` first for identifiers presented at every charger (one
        for the site; None removes it)."""
        self._pre_authorizer = pre_authorizer

    def set_connection_timeout(self, charger_id: str, seconds: float) -> None:
        """How long an authorization waits for a vehicle on this charger (from now on)."""
        if seconds <= 0:
            raise ValueError(f"connection timeout must be positive, got {seconds}")
        self._charger(charger_id).connector.connection_timeout_s = seconds

    def subscribe(self, charger_id: str | None = None) -> asyncio.Queue[SiteEvent]:
        """A queue receiving every event from now on (of one charger, or of all)."""
        queue: asyncio.Queue[SiteEvent] = asyncio.Queue()
        self._subscribers.append((charger_id, queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[SiteEvent]) -> None:
        self._subscribers = [(c, q) for c, q in self._subscribers if q is not queue]

    # --- queries ---------------------------------------------------------------------------

    @property
    def charger_ids(self) -> Sequence[str]:
        return list(self._chargers)

    def spec(self, charger_id: str) -> ChargerSpec:
        return self._charger(charger_id).spec

    def connector(self, charger_id: str, connector_id: int = CONNECTOR_ID) -> Connector:
        """The connector's live state (status, session, last reading). Read it; change it
        only through the site's methods."""
        if connector_id != CONNECTOR_ID:
            raise LookupError(f"charger {charger_id!r} has no connector {connector_id}")
        return self._charger(charger_id).connector

    def connectors(self) -> Iterator[Connector]:
        return (charger.connector for charger in self._chargers.values())

    def driver(self, charger_id: str) -> ChargerDriver:
        """The charger's southbound driver (for the load balancing's setpoint writes)."""
        return self._charger(charger_id).driver

    def set_allocated_current(self, charger_id: str, amps: float | None) -> None:
        """The current the load balancing grants a charger (0 = paused); None = not
        balanced, sessions get the charger's maximum. The site's poll enables a starting
        session at this current and restores it if the charger loses its setpoint."""
        if amps is not None and not (math.isfinite(amps) and amps >= 0):
            raise ValueError(f"allocated current must be a non-negative number, got {amps}")
        self._charger(charger_id).connector.allocated_current_a = amps

    # --- commands --------------------------------------------------------------------------

    def set_operative(self, charger_id: str, operative: bool) -> None:
        """Put a charger in or out of service at once (a local operator, OCPP's
        ChangeAvailability): inoperative, it gets no current and reports Unavailable; see
        `Connector.set_operative`. Raises LookupError for an unknown charger."""
        charger = self._charger(charger_id)
        self._submit(charger.connector.set_operative(operative))
        charger.poll_now.set()

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> None:
        """Authorize `id_tag` on a connector: the session starts at once if a vehicle is
        plugged in, else when one is within the connection timeout. Raises
        `RemoteStartRefused` (or LookupError for an unknown charger/connector). Answers from
        local state: the charger is commanded by its poll task right after."""
        connector = self.connector(charger_id, connector_id)
        reservation_id = None
        if connector.reservation is not None:
            reservation_id = self._admitting_reservation(self._chargers[charger_id], id_tag)
            if reservation_id is None:
                raise RemoteStartRefused("connector reserved for another identifier")
        self._submit(connector.request_remote_start(id_tag, reservation_id=reservation_id))
        self._chargers[charger_id].poll_now.set()

    async def stop_session(self, charger_id: str, connector_id: int, reason: StopReason) -> Session:
        """End the active session on a connector: the charger is disabled, and the session
        closes with the meter reading taken after that (a `SessionEnded` event follows).
        Returns the session being stopped; raises LookupError when there is none."""
        session = self.connector(charger_id, connector_id).request_stop(reason)
        self._chargers[charger_id].poll_now.set()
        return session

    async def withhold_energy(self, charger_id: str, connector_id: int) -> Session:
        """Disable the charger but keep its active session open (it ends as usual, e.g. when
        the vehicle leaves). Returns the session; raises LookupError when there is none."""
        session = self.connector(charger_id, connector_id).withhold_energy()
        self._chargers[charger_id].poll_now.set()
        return session

    async def record_upstream_transaction_id(
        self, charger_id: str, session_id: str, value: str
    ) -> None:
        """Remember the id an upstream system gave a session (in the ledger too)."""
        self._charger(charger_id).connector.record_upstream_transaction_id(session_id, value)
        if self._ledger is not None:
            try:
                await self._ledger.record_upstream_transaction_id(session_id, value)
            except Exception:
                logger.exception(
                    "could not record upstream transaction id",
                    extra={"session_id": session_id, "upstream_transaction_id": value},
                )

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Resume sessions left open in the ledger, then poll every charger until cancelled."""
        if self._ledger is not None:
            for session in await self._ledger.open_sessions():
                charger = self._chargers.get(session.charger_id)
                if charger is None or session.connector_id != CONNECTOR_ID:
                    logger.warning(
                        "open session of an unknown charger left as is",
                        extra={"session_id": session.id, "charger_id": session.charger_id},
                    )
                    continue
                charger.connector.resume(session)
                logger.info(
                    "resumed open session",
                    extra={"session_id": session.id, "charger_id": session.charger_id},
                )
        await self._load_reservations()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._dispatch_effects(), name="site-effects")
                for charger in self._chargers.values():
                    tasks.create_task(self._poll_forever(charger), name=f"poll-{charger.spec.id}")
        finally:
            for timer in self._reservation_timers.values():
                timer.cancel()
            self._reservation_timers.clear()
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            await self._record_pending_effects()

    async def _record_pending_effects(self) -> None:
        """At the stop: finish the ledger write under way and record the effects not yet
        dispatched (a session that started or ended in the last poll), so that the next start
        resumes from what happened. Subscribers no longer listen; the upstream side recovers
        such sessions from the ledger when it starts."""
        if self._recording is not None:
            await asyncio.gather(self._recording, return_exceptions=True)
        while not self._effects.empty():
            effect = self._effects.get_nowait()
            if not isinstance(effect, AuthorizationRequested):
                await self._record(effect)

    def _charger(self, charger_id: str) -> _SiteCharger:
        try:
            return self._chargers[charger_id]
        except KeyError:
            raise LookupError(f"unknown charger {charger_id!r}") from None

    def _submit(self, effects: list[ConnectorEffect]) -> None:
        for effect in effects:
            self._effects.put_nowait(effect)

    async def _poll_forever(self, charger: _SiteCharger) -> None:
        interval = charger.spec.poll_interval_s
        while True:
            raise_if_cancelling()
            wrote = await self._poll_once(charger)
            if wrote:
                # Read back at once, so the new state (and a session closing on a stop)
                # does not wait a whole poll interval.
                await self._poll_once(charger)
            charger.poll_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await charger.poll_now.wait()

    async def _poll_once(self, charger: _SiteCharger) -> bool:
        """One read, and a write when the charger must change; True if it wrote."""
        connector = charger.connector
        started = time.monotonic()
        try:
            reading = await charger.driver.read()
        except Exception as error:
            self._observe_poll(charger.spec.id, started, answered=False)
            # A driver bug must not stop the site: it counts as an unreachable charger.
            if not charger.unreachable_logged:
                charger.unreachable_logged = True
                logger.warning(
                    "charger unreachable: %s",
                    error,
                    exc_info=not isinstance(error, ChargerUnavailable),
                    extra={"charger_id": charger.spec.id},
                )
            self._submit(connector.observe_unreachable())
            return False
        self._observe_poll(charger.spec.id, started, answered=True)
        if charger.unreachable_logged:
            charger.unreachable_logged = False
            logger.info("charger reachable again", extra={"charger_id": charger.spec.id})
        self._submit(connector.observe(reading))
        offer = connector.offer_to_write()
        if offer is None:
            return False
        try:
            await _write_offer(charger.driver, offer)
        except Exception as error:
            logger.warning(
                "could not command charger: %s",
                error,
                exc_info=not isinstance(error, ChargerUnavailable),
                extra={"charger_id": charger.spec.id, "offer": offer},
            )
            return False
        logger.info(
            "charger commanded",
            extra={
                "charger_id": charger.spec.id,
                "enabled": offer.enabled,
                "current_a": offer.current_a,
            },
        )
        return True

    def _observe_poll(self, charger_id: str, started: float, *, answered: bool) -> None:
        if self.poll_observer is None:
            return
        try:
            self.poll_observer(charger_id, time.monotonic() - started, answered)
        except Exception:
            logger.exception("poll observer failed", extra={"charger_id": charger_id})

    async def _dispatch_effects(self) -> None:
        while True:
            effect = await self._effects.get()
            if isinstance(effect, AuthorizationRequested):
                self._start_authorization(effect)
                continue
            # Shielded, and waited for at the stop: a stop must not cut a session's ledger
            # write short (a store job cancelled before its thread ran it is never written).
            self._recording = asyncio.ensure_future(self._record(effect))
            await asyncio.shield(self._recording)
            for charger_id, queue in self._subscribers:
                if charger_id is None or charger_id == effect.charger_id:
                    queue.put_nowait(effect)

    async def _record(self, event: SiteEvent) -> None:
        if isinstance(event, ReservationEnded):
            await self._forget_reservation(event)
            return
        if self._ledger is None:
            return
        try:
            if isinstance(event, SessionStarted):
                await self._ledger.record_session_started(event.session)
            elif isinstance(event, SessionEnded):
                await self._ledger.record_session_ended(event.session)
        except Exception:
            # Keep running: the session is still in memory and reaches the upstream system.
            logger.exception("could not record session", extra={"event": type(event).__name__})

    def _start_authorization(self, request: AuthorizationRequested) -> None:
        task = asyncio.create_task(self._authorize(request), name=f"authorize-{request.charger_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _authorize(self, request: AuthorizationRequested) -> None:
        charger = self._chargers[request.charger_id]
        decided: bool | None = None
        if self._pre_authorizer is not None:
            try:
                decided = await self._pre_authorizer.pre_authorize(
                    request.charger_id, request.id_tag
                )
            except Exception:
                logger.exception("pre-authorizer failed", extra={"charger_id": request.charger_id})
                decided = False
        accepted = True if decided is None else decided
        if decided is None and charger.authorizer is not None:
            try:
                accepted = await charger.authorizer.authorize(request.charger_id, request.id_tag)
            except Exception:
                logger.exception("authorizer failed", extra={"charger_id": request.charger_id})
                accepted = False
        logger.info(
            "identifier %s",
            "accepted" if accepted else "rejected",
            extra={"charger_id": request.charger_id},
        )
        reservation_id = None
        if accepted and charger.connector.reservation is not None:
            reservation_id = self._admitting_reservation(charger, request.id_tag)
            if reservation_id is None:
                accepted = False
                logger.info(
                    "identifier refused: the connector is reserved for another",
                    extra={"charger_id": request.charger_id},
                )
        self._submit(
            charger.connector.authorization_decided(
                request.id_tag, accepted, reservation_id=reservation_id
            )
        )
        charger.poll_now.set()

    # --- reservations (gateway.core.reservations) -----------------------------------------

    async def reserve(
        self,
        charger_id: str,
        connector_id: int,
        reservation_id: int,
        id_tag: str,
        parent_id_tag: str | None,
        expires_at: datetime,
        source: str,
    ) -> ReservationStatus:
        """Reserve a connector (0: any connector of the charger) for `id_tag`, or for any
        identifier whose parent is `parent_id_tag`, until `expires_at` (aware). A reservation
        with the same `reservation_id` on the charger is replaced. The answer follows OCPP:
        Accepted, Occupied, Faulted, Unavailable, or Rejected (unknown charger or connector,
        expiry not in the future). Accepted reservations are persisted, show as Reserved, end
        when the identifier starts a session there (the session carries `reservation_id`),
        on `cancel_reservation`, or at `expires_at` exactly; each end is a `ReservationEnded`
        event. `source` says who asked ("ocpp", "ocpi", ...)."""
        charger = self._chargers.get(charger_id)
        if charger is None or connector_id not in (0, CONNECTOR_ID):
            return ReservationStatus.REJECTED
        if expires_at <= self._clock.now():
            return ReservationStatus.REJECTED
        reservation = Reservation(
            charger_id, CONNECTOR_ID, reservation_id, id_tag, parent_id_tag, expires_at, source
        )
        status, effects = charger.connector.reserve(reservation)
        if status is not ReservationStatus.ACCEPTED:
            return status
        self._submit(effects)
        if self._reservation_ledger is not None:
            try:
                await self._reservation_ledger.record_reservation(reservation)
            except Exception:
                logger.exception("could not record reservation", extra={"charger_id": charger_id})
        self._arm_reservation_timer(reservation)
        logger.info(
            "connector reserved",
            extra={
                "charger_id": charger_id,
                "reservation_id": reservation_id,
                "expires_at": expires_at.isoformat(),
                "source": source,
            },
        )
        return status

    async def cancel_reservation(self, charger_id: str, reservation_id: int) -> bool:
        """End a reservation before its time; False when the charger holds no such
        reservation (unknown, already used or expired)."""
        charger = self._chargers.get(charger_id)
        if charger is None:
            return False
        try:
            effects = charger.connector.end_reservation(
                reservation_id, ReservationEndReason.CANCELLED
            )
        except LookupError:
            return False
        self._submit(effects)
        return True

    def reservation(self, charger_id: str) -> Reservation | None:
        """The reservation the charger's connector holds, if any."""
        return self._charger(charger_id).connector.reservation

    def _admitting_reservation(self, charger: _SiteCharger, id_tag: str) -> int | None:
        """The id of the connector's reservation if it admits `id_tag`, else None."""
        reservation = charger.connector.reservation
        if reservation is None:
            return None
        parent = None
        if id_tag != reservation.id_tag:
            for source in (charger.authorizer, self._pre_authorizer):
                if isinstance(source, ParentIdSource):
                    parent = source.parent_id_tag(id_tag)
                    if parent is not None:
                        break
        return reservation.reservation_id if reservation.admits(id_tag, parent) else None

    def _arm_reservation_timer(self, reservation: Reservation) -> None:
        key = (reservation.charger_id, reservation.reservation_id)
        previous = self._reservation_timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        delay = max(0.0, (reservation.expires_at - self._clock.now()).total_seconds())
        self._reservation_timers[key] = asyncio.get_running_loop().call_later(
            delay, self._expire_reservation, reservation
        )

    def _expire_reservation(self, reservation: Reservation) -> None:
        key = (reservation.charger_id, reservation.reservation_id)
        self._reservation_timers.pop(key, None)
        charger = self._chargers[reservation.charger_id]
        if charger.connector.reservation != reservation:
            return  # replaced, used or cancelled meanwhile
        self._submit(
            charger.connector.end_reservation(
                reservation.reservation_id, ReservationEndReason.EXPIRED
            )
        )

    async def _load_reservations(self) -> None:
        if self._reservation_ledger is None:
            return
        for reservation in await self._reservation_ledger.reservations():
            charger = self._chargers.get(reservation.charger_id)
            if charger is None:
                logger.warning(
                    "reservation of an unknown charger left as is",
                    extra={"charger_id": reservation.charger_id},
                )
                continue
            charger.connector.restore_reservation(reservation)
            self._arm_reservation_timer(reservation)

    async def _forget_reservation(self, ended: ReservationEnded) -> None:
        reservation = ended.reservation
        key = (reservation.charger_id, reservation.reservation_id)
        timer = self._reservation_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        logger.info(
            "reservation ended",
            extra={
                "charger_id": reservation.charger_id,
                "reservation_id": reservation.reservation_id,
                "reason": ended.reason.value,
            },
        )
        if self._reservation_ledger is None:
            return
        try:
            await self._reservation_ledger.delete_reservation(
                reservation.charger_id, reservation.reservation_id
            )
        except Exception:
            logger.exception(
                "could not delete reservation", extra={"charger_id": reservation.charger_id}
            )

    # --- upstream limits ---------------------------------------------------------------------

    def limit_current(self, charger_id: str, amps: float | None) -> None:
        """Limit a charger's setpoint to `amps` per phase on behalf of an upstream system
        (OCPP smart charging) on a site without load balancing; below 6 A the session pauses;
        None lifts the limit. (With load balancing such limits are the balancer's caps.)
        Raises LookupError for an unknown charger, ValueError for a bad value."""
        if amps is not None and not (math.isfinite(amps) and amps >= 0):
            raise ValueError(f"a limit must be a non-negative number of amperes, got {amps}")
        charger = self._charger(charger_id)
        charger.connector.set_current_limit(amps)
        charger.poll_now.set()


async def _write_offer(driver: ChargerDriver, offer: ChargingOffer) -> None:
    # Limit before enable, and disable before zeroing, so the charger never offers more than
    # intended in between.
    if offer.enabled:
        await driver.set_current_limit(offer.current_a)
        await driver.set_enabled(True)
    else:
        await driver.set_enabled(False)
        await driver.set_current_limit(0.0)
