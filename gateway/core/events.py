"""What the core tells its subscribers (the upstream adapters, the store, later the local API).

Events are immutable facts, delivered in the order they happened for each charger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.core.charger import ChargerReading, OcppErrorCode
from gateway.core.reservations import Reservation, ReservationEndReason
from gateway.core.session import Session
from gateway.core.status import ConnectorStatus


@dataclass(frozen=True, slots=True)
class StatusChanged:
    charger_id: str
    connector_id: int
    status: ConnectorStatus
    previous: ConnectorStatus | None
    """None for the first status after start-up."""
    at: datetime
    vendor_error_code: int = 0
    """The charger's own fault code when `status` is Faulted; 0 otherwise."""
    error_code: OcppErrorCode = OcppErrorCode.NO_ERROR
    """What the fault means (the profile's `[errors]` map); NoError unless Faulted."""


@dataclass(frozen=True, slots=True)
class ChargerConnectivityChanged:
    charger_id: str
    online: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session: Session

    @property
    def charger_id(self) -> str:
        return self.session.charger_id


@dataclass(frozen=True, slots=True)
class SessionMeterSampled:
    """A fresh reading of a charger with an active session (one per poll; adapters decide how
    often to report)."""

    session: Session
    reading: ChargerReading
    at: datetime

    @property
    def charger_id(self) -> str:
        return self.session.charger_id


@dataclass(frozen=True, slots=True)
class SessionEnded:
    session: Session

    @property
    def charger_id(self) -> str:
        return self.session.charger_id


@dataclass(frozen=True, slots=True)
class AuthorizationRequested:
    """The connector needs a decision on an identifier presented at the charger. Consumed by
    the site itself (it asks the registered `Authorizer`); never published to subscribers."""

    charger_id: str
    connector_id: int
    id_tag: str


@dataclass(frozen=True, slots=True)
class ReservationEnded:
    """A reservation is over: used by a session, expired, cancelled or removed."""

    reservation: Reservation
    reason: ReservationEndReason
    at: datetime

    @property
    def charger_id(self) -> str:
        return self.reservation.charger_id


SiteEvent = (
    StatusChanged
    | ChargerConnectivityChanged
    | SessionStarted
    | SessionMeterSampled
    | SessionEnded
    | ReservationEnded
)
ConnectorEffect = SiteEvent | AuthorizationRequested
