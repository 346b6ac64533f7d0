"""Reservations of connectors, enforced by the gateway itself (OCPP 1.6 §3.11/§5.13, 2.0.1
block H, ocpp.md §9), whoever asked for them: an OCPP central system (ReserveNow) or an OCPI
platform (RESERVE_NOW). The site owns them (`Site.reserve`, `Site.cancel_reservation`).

- A reserved connector reports Reserved while it would otherwise be Available.
- Only the reserving identifier, or one with the same parent identifier (group), starts there;
  the session then carries the reservation's id and the reservation ends (Used).
- It ends on time at its expiry (a timer, not a poll), on cancellation, or when the connector
  faults or is taken out of service (Removed). An unreachable charger keeps its reservation:
  the gateway reports such a charger Unavailable for what may be one missed poll.
- Reservations are persisted and taken up again after a restart; one that expired meanwhile
  ends at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


class ReservationStatus(StrEnum):
    """The answer to a reservation request (1.6 ReservationStatus = 2.0.1 ReserveNowStatusEnum)."""

    ACCEPTED = "Accepted"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"
    """A vehicle or a session is there, or another reservation holds the connector."""
    REJECTED = "Rejected"
    """No such connector, an expiry in the past, or reservations not allowed here."""
    UNAVAILABLE = "Unavailable"


class ReservationEndReason(StrEnum):
    USED = "Used"
    """The reserving identifier (or its group) started a session."""
    EXPIRED = "Expired"
    CANCELLED = "Cancelled"
    REMOVED = "Removed"
    """The connector faulted or was made inoperative (2.0.1 ReservationUpdateStatus Removed)."""


@dataclass(frozen=True, slots=True)
class Reservation:
    charger_id: str
    connector_id: int
    reservation_id: int
    """Unique per charger (OCPP's reservationId; OCPI ids are remapped by their adapter)."""
    id_tag: str
    parent_id_tag: str | None
    expires_at: datetime
    source: str
    """Who reserved: "ocpp", "ocpi", ..."""

    def admits(self, id_tag: str, parent_id_tag: str | None) -> bool:
        """May `id_tag` (whose group is `parent_id_tag`, when known) start here?"""
        if id_tag == self.id_tag:
            return True
        return self.parent_id_tag is not None and parent_id_tag == self.parent_id_tag


@runtime_checkable
class ParentIdSource(Protocol):
    """An `Authorizer` that also knows identifiers' parents (groups), from its Authorize
    answers, its local list and its cache."""

    def parent_id_tag(self, id_tag: str) -> str | None: ...


class ReservationLedger(Protocol):
    """Durable record of reservations (implemented by `gateway.store.Store`)."""

    async def reservations(self) -> list[Reservation]: ...
    async def record_reservation(self, reservation: Reservation) -> None: ...
    async def delete_reservation(self, charger_id: str, reservation_id: int) -> None: ...
