"""The session state machine of one connector, free of I/O.

It is fed readings, authorization decisions and remote commands, and answers with the effects
the site must carry out (events to publish, identifiers to authorize). What the charger
should be told (enabled, current limit) is a *desired state* the site reconciles on every
poll: a write that fails, or a charger that reboots and forgets its limit, is simply retried
on the next poll instead of being tracked as a pending command.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from gateway.core.charger import ChargerReading, OcppErrorCode
from gateway.core.clock import Clock
from gateway.core.events import (
    AuthorizationRequested,
    ChargerConnectivityChanged,
    ConnectorEffect,
    ReservationEnded,
    SessionEnded,
    SessionMeterSampled,
    SessionStarted,
    StatusChanged,
)
from gateway.core.reservations import Reservation, ReservationEndReason, ReservationStatus
from gateway.core.session import Session, SessionOrigin, StopReason
from gateway.core.status import ConnectorStatus, derive_status

DEFAULT_CONNECTION_TIMEOUT_S = 60.0
"""How long an authorization waits for a vehicle to be plugged in (OCPP 1.6 ConnectionTimeOut;
the issue asks for 60 s by default)."""

MIN_OFFER_CURRENT_A = 6.0
"""IEC 61851-1: 6 A is the lowest current the control pilot can signal (chargers.md §1)."""

LIMIT_TOLERANCE_A = 1.0
"""A setpoint this close to a changed upstream limit counts as following it: the coarsest
setpoint resolution of the supported chargers is a whole ampere, and drivers round down."""
LIMIT_WRITE_ATTEMPTS = 5
"""Polls that rewrite a changed limit the charger does not show yet; then the usual checks
only, so a charger that clamps the value is not written on every poll."""


@dataclass(frozen=True, slots=True)
class ChargingOffer:
    """What the charger should be doing: enabled at `current_a`, or disabled (0 A)."""

    enabled: bool
    current_a: float

    @staticmethod
    def off() -> ChargingOffer:
        return ChargingOffer(enabled=False, current_a=0.0)


@dataclass(frozen=True, slots=True)
class PendingStart:
    """An authorization waiting for a vehicle (remote start, or a tag presented before plug-in)."""

    id_tag: str
    origin: SessionOrigin
    deadline: float
    """On the clock's monotonic scale."""
    reservation_id: int | None = None
    """The reservation this start may use (its identifier was admitted by it)."""


class RemoteStartRefused(Exception):
    """A remote start the connector cannot honour; the message says why."""


class Connector:
    """One connector of one charger (the gateway's chargers have exactly one, numbered 1)."""

    def __init__(
        self,
        charger_id: str,
        connector_id: int,
        *,
        max_current_a: float,
        clock: Clock,
        connection_timeout_s: float = DEFAULT_CONNECTION_TIMEOUT_S,
    ) -> None:
        if max_current_a < MIN_OFFER_CURRENT_A:
            raise ValueError(
                f"max_current_a must be at least {MIN_OFFER_CURRENT_A} A, got {max_current_a}"
            )
        self.charger_id = charger_id
        self.connector_id = connector_id
        self.max_current_a = max_current_a
        self.allocated_current_a: float | None = None
        self.current_limit_a: float | None = None
        """A limit from upstream (OCPP smart charging) applied to the setpoint directly, on a
        site without load balancing (with it, such limits are the balancer's caps); None:
        no limit. Below the pilot minimum it pauses the session (enabled at 0 A)."""
        self._reservation: Reservation | None = None
        self._limit_writes_left = 0
        """The current the site's load balancing grants this connector (0 = paused), or
        None when the site is not balanced and a session gets `max_current_a`."""
        self.connection_timeout_s = connection_timeout_s
        self._clock = clock
        self._reading: ChargerReading | None = None
        self._online = False
        self._status: ConnectorStatus | None = None
        self._session: Session | None = None
        self._stop_requested: StopReason | None = None
        self._energy_withheld = False
        self._offer_acknowledged = False
        self._finishing = False
        self._pending_start: PendingStart | None = None
        self._operative = True
        self._tag_under_authorization: str | None = None
        self._tag_handled: str | None = None
        """The last tag presented in this plug cycle that was already sent for authorization,
        so a tag that stays in the charger's register is authorized once."""

    # --- what the connector is -----------------------------------------------------------

    @property
    def status(self) -> ConnectorStatus | None:
        """None until the first reading or failed poll."""
        return self._status

    @property
    def session(self) -> Session | None:
        return self._session

    @property
    def reading(self) -> ChargerReading | None:
        return self._reading

    @property
    def online(self) -> bool:
        return self._online

    @property
    def pending_start(self) -> PendingStart | None:
        return self._pending_start

    @property
    def operative(self) -> bool:
        """False: taken out of service (OCPP's Inoperative): no current, status Unavailable."""
        return self._operative

    @property
    def desired_offer(self) -> ChargingOffer:
        """What the charger should be told: enabled in a session, at the maximum or at the
        load balancing's allocation (0 A: enabled but paused), disabled otherwise, while a
        stop is underway and while energy is withheld."""
        if (
            self._session is not None
            and self._stop_requested is None
            and not self._energy_withheld
            and self._operative
        ):
            current = self.max_current_a
            if self.allocated_current_a is not None:
                current = min(current, self.allocated_current_a)
            elif self.current_limit_a is not None:
                current = min(current, self.current_limit_a)
                if current < MIN_OFFER_CURRENT_A:
                    current = 0.0  # the pilot cannot signal less: paused
            return ChargingOffer(enabled=True, current_a=current)
        return ChargingOffer.off()

    def offer_to_write(self) -> ChargingOffer | None:
        """The offer to write to the charger now, or None when the last reading shows the
        charger already complying. The setpoint is only re-checked for having been lost
        (below the pilot minimum): a driver that rounds or clamps to the hardware must not
        cause a write on every poll."""
        reading = self._reading
        if reading is None or not self._online:
            return None
        desired = self.desired_offer
        if desired.enabled and desired.current_a < MIN_OFFER_CURRENT_A:
            if (
                self.allocated_current_a is None
                and reading.enabled
                and reading.setpoint_a >= MIN_OFFER_CURRENT_A
            ):
                # Paused by an upstream limit on a site without load balancing: nobody else
                # writes the 0 A.
                return desired
            # Paused by the load balancing, which owns the setpoint and writes the 0 A: a
            # charger at 0 A or disabled (a KEBA pauses by disabling) complies either way.
            return None
        if reading.enabled != desired.enabled:
            return desired
        if desired.enabled and reading.setpoint_a < MIN_OFFER_CURRENT_A:
            return desired
        if self._limit_writes_left > 0 and desired.enabled:
            if abs(reading.setpoint_a - desired.current_a) < LIMIT_TOLERANCE_A:
                self._limit_writes_left = 0  # the charger follows the new limit
            else:
                self._limit_writes_left -= 1
                return desired
        return None

    def set_current_limit(self, amps: float | None) -> None:
        """Apply an upstream limit to the setpoint (see `current_limit_a`); the next polls
        write the changed setpoint until the charger shows it."""
        if amps == self.current_limit_a:
            return
        self.current_limit_a = amps
        self._limit_writes_left = LIMIT_WRITE_ATTEMPTS

    # --- inputs --------------------------------------------------------------------------

    def observe(self, reading: ChargerReading) -> list[ConnectorEffect]:
        """A fresh poll of the charger."""
        effects: list[ConnectorEffect] = []
        now = self._clock.now()
        if not self._online:
            self._online = True
            effects.append(ChargerConnectivityChanged(self.charger_id, online=True, at=now))
        self._reading = reading
        self._expire_pending_start()

        if not reading.cp_state.vehicle_connected:
            self._finishing = False
            self._tag_handled = None

        session = self._session
        if session is not None:
            if self._stop_requested is not None and (
                not reading.enabled or not reading.cp_state.vehicle_connected
            ):
                # The charger has complied with the stop, so this energy register is final.
                effects.append(self._end_session(self._stop_requested, reading.energy_wh))
            elif not reading.cp_state.vehicle_connected:
                effects.append(self._end_session(StopReason.EV_DISCONNECTED, reading.energy_wh))
            elif self._stop_requested is None:
                if reading.enabled and reading.setpoint_a > 0:
                    self._offer_acknowledged = True
                effects.append(SessionMeterSampled(session, reading, now))

        if (
            reading.rfid
            and reading.rfid != self._tag_handled
            and self._session is None
            and self._tag_under_authorization is None
        ):
            self._tag_handled = reading.rfid
            self._tag_under_authorization = reading.rfid
            effects.append(AuthorizationRequested(self.charger_id, self.connector_id, reading.rfid))

        effects.extend(self._try_start_session())
        effects.extend(self._refresh_status())
        return effects

    def observe_unreachable(self) -> list[ConnectorEffect]:
        """A poll that failed: the charger is offline until the next successful one."""
        effects: list[ConnectorEffect] = []
        if self._online:
            self._online = False
            effects.append(
                ChargerConnectivityChanged(self.charger_id, online=False, at=self._clock.now())
            )
        if self._session is not None and self._stop_requested is not None:
            # A stop cannot wait for a charger that is gone; the last known register is the
            # best meter value there is.
            last_energy = (
                self._reading.energy_wh
                if self._reading is not None
                else self._session.meter_start_wh
            )
            effects.append(self._end_session(self._stop_requested, last_energy))
        self._expire_pending_start()
        effects.extend(self._refresh_status())
        return effects

    def authorization_decided(
        self, id_tag: str, accepted: bool, *, reservation_id: int | None = None
    ) -> list[ConnectorEffect]:
        """The authorizer's answer for a tag this connector asked about (`reservation_id`:
        the reservation that admitted the tag, on a reserved connector)."""
        if self._tag_under_authorization == id_tag:
            self._tag_under_authorization = None
        effects: list[ConnectorEffect] = []
        if accepted and self._session is None:
            self._pending_start = PendingStart(
                id_tag,
                SessionOrigin.LOCAL,
                deadline=self._clock.monotonic() + self.connection_timeout_s,
                reservation_id=reservation_id,
            )
            effects.extend(self._try_start_session())
        effects.extend(self._refresh_status())
        return effects

    def request_remote_start(
        self, id_tag: str, *, reservation_id: int | None = None
    ) -> list[ConnectorEffect]:
        """Start a session for `id_tag` now if a vehicle is plugged in, else as soon as one is
        within the connection timeout. Raises `RemoteStartRefused` when the connector cannot
        take a session (unreachable, faulted, busy, or reserved and `reservation_id` is not
        its reservation's)."""
        if not self._online or self._reading is None:
            raise RemoteStartRefused("charger unreachable")
        if not self._operative:
            raise RemoteStartRefused("charger inoperative")
        if self._status is ConnectorStatus.FAULTED:
            raise RemoteStartRefused("charger faulted")
        if self._session is not None:
            raise RemoteStartRefused("a session is already active")
        reservation = self._reservation
        if reservation is not None and reservation.reservation_id != reservation_id:
            raise RemoteStartRefused("connector reserved for another identifier")
        self._pending_start = PendingStart(
            id_tag,
            SessionOrigin.REMOTE,
            deadline=self._clock.monotonic() + self.connection_timeout_s,
            reservation_id=reservation_id,
        )
        effects = self._try_start_session()
        effects.extend(self._refresh_status())
        return effects

    def request_stop(self, reason: StopReason) -> Session:
        """Ask for the active session to end. The charger is disabled through the desired
        offer; the session closes on the first reading that shows the charger disabled, with
        that reading's energy (or at once with the last known energy if it is unreachable). Raises
        LookupError when there is no active session."""
        if self._session is None:
            raise LookupError(f"no active session on {self.charger_id}/{self.connector_id}")
        if self._stop_requested is None:
            self._stop_requested = reason
        return self._session

    def withhold_energy(self) -> Session:
        """Keep the active session open but disable the charger until the session ends (an
        upstream system refused the identifier after the start and does not want the session
        stopped). Raises LookupError when there is no active session."""
        if self._session is None:
            raise LookupError(f"no active session on {self.charger_id}/{self.connector_id}")
        self._energy_withheld = True
        return self._session

    def set_operative(self, operative: bool) -> list[ConnectorEffect]:
        """Put the connector in or out of service at once. Inoperative, it offers no current
        (an active session stays open, withheld, until it ends or the connector is operative
        again), takes no new session and shows Unavailable."""
        self._operative = operative
        if not operative:
            self._pending_start = None
        return self._refresh_status()

    def resume(self, session: Session) -> None:
        """Take over a session left open by a previous run of the gateway (from the ledger).
        The first reading decides: vehicle still there, it continues; gone, it ends."""
        if self._session is not None:
            raise RuntimeError(f"{self.charger_id}/{self.connector_id} already has a session")
        self._session = session
        self._offer_acknowledged = False

    # --- reservations (gateway.core.reservations) -----------------------------------------

    @property
    def reservation(self) -> Reservation | None:
        return self._reservation

    def reserve(self, reservation: Reservation) -> tuple[ReservationStatus, list[ConnectorEffect]]:
        """Hold the connector for `reservation` (a reservation with the same id is replaced).
        Answers Unavailable (unreachable or inoperative), Faulted, Occupied (a vehicle, a
        session, a pending start or another reservation), or Accepted."""
        held = self._reservation
        if not self._online or self._reading is None or not self._operative:
            return ReservationStatus.UNAVAILABLE, []
        if self._status is ConnectorStatus.FAULTED:
            return ReservationStatus.FAULTED, []
        if held is not None and held.reservation_id != reservation.reservation_id:
            return ReservationStatus.OCCUPIED, []
        if self._status not in (ConnectorStatus.AVAILABLE, ConnectorStatus.RESERVED, None):
            return ReservationStatus.OCCUPIED, []
        self._reservation = reservation
        return ReservationStatus.ACCEPTED, self._refresh_status()

    def restore_reservation(self, reservation: Reservation) -> None:
        """Take up a reservation persisted by a previous run (before the first poll)."""
        self._reservation = reservation

    def end_reservation(
        self, reservation_id: int, reason: ReservationEndReason
    ) -> list[ConnectorEffect]:
        """End the reservation with that id (cancelled, expired); raises LookupError when the
        connector does not hold it."""
        held = self._reservation
        if held is None or held.reservation_id != reservation_id:
            raise LookupError(f"no reservation {reservation_id} on {self.charger_id}")
        self._reservation = None
        effects: list[ConnectorEffect] = [ReservationEnded(held, reason, self._clock.now())]
        effects.extend(self._refresh_status())
        return effects

    def tick(self) -> list[ConnectorEffect]:
        """Let time pass: expire a pending start whose vehicle never came."""
        if self._expire_pending_start():
            return self._refresh_status()
        return []

    def record_upstream_transaction_id(self, session_id: str, value: str) -> Session | None:
        """Attach the upstream id to the active session with `session_id`; returns the
        updated session, or None when that session is no longer active."""
        if self._session is None or self._session.id != session_id:
            return None
        self._session = dataclasses.replace(self._session, upstream_transaction_id=value)
        return self._session

    # --- transitions ---------------------------------------------------------------------

    def _try_start_session(self) -> list[ConnectorEffect]:
        pending = self._pending_start
        reading = self._reading
        if (
            pending is None
            or self._session is not None
            or reading is None
            or not self._online
            or not self._operative
            or not reading.cp_state.vehicle_connected
            or reading.cp_state.faulted
        ):
            return []
        reservation = self._reservation
        if reservation is not None and pending.reservation_id != reservation.reservation_id:
            return []  # admitted before the reservation was made: it waits, and expires
        self._pending_start = None
        self._finishing = False
        self._offer_acknowledged = False
        self._session = Session(
            id=str(uuid.uuid4()),
            charger_id=self.charger_id,
            connector_id=self.connector_id,
            id_tag=pending.id_tag,
            origin=pending.origin,
            started_at=self._clock.now(),
            meter_start_wh=reading.energy_wh,
            reservation_id=None if reservation is None else reservation.reservation_id,
        )
        effects: list[ConnectorEffect] = [SessionStarted(self._session)]
        if reservation is not None:
            self._reservation = None
            effects.append(
                ReservationEnded(reservation, ReservationEndReason.USED, self._clock.now())
            )
        return effects

    def _end_session(self, reason: StopReason, meter_stop_wh: float) -> SessionEnded:
        assert self._session is not None
        ended = self._session.ended(self._clock.now(), meter_stop_wh, reason)
        self._session = None
        self._stop_requested = None
        self._energy_withheld = False
        self._offer_acknowledged = False
        self._finishing = True
        return SessionEnded(ended)

    def _expire_pending_start(self) -> bool:
        if self._pending_start is not None and self._clock.monotonic() >= (
            self._pending_start.deadline
        ):
            self._pending_start = None
            return True
        return False

    def _refresh_status(self) -> list[ConnectorEffect]:
        status = derive_status(
            self._reading,
            online=self._online,
            operative=self._operative,
            session_active=self._session is not None,
            offer_acknowledged=self._offer_acknowledged,
            finishing=self._finishing,
            start_pending=self._pending_start is not None,
            reserved=self._reservation is not None,
        )
        ended: list[ConnectorEffect] = []
        if self._reservation is not None and (
            status is ConnectorStatus.FAULTED or not self._operative
        ):
            ended.append(
                ReservationEnded(self._reservation, ReservationEndReason.REMOVED, self._clock.now())
            )
            self._reservation = None
        if status is self._status:
            return ended
        previous, self._status = self._status, status
        faulted = status is ConnectorStatus.FAULTED and self._reading is not None
        vendor_error_code = self._reading.error_code if faulted and self._reading else 0
        error_code = OcppErrorCode.NO_ERROR
        if faulted and self._reading is not None:
            error_code = self._reading.ocpp_error_code
            if error_code is OcppErrorCode.NO_ERROR:
                # Faulted by its pilot state (E/F) without a code the profile could map.
                error_code = OcppErrorCode.OTHER_ERROR
        return [
            *ended,
            StatusChanged(
                self.charger_id,
                self.connector_id,
                status,
                previous,
                self._clock.now(),
                vendor_error_code,
                error_code,
            ),
        ]
