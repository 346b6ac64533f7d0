"""Charging sessions as the core knows them, independent of any upstream protocol."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class StopReason(StrEnum):
    """Why a session ended. The values are the OCPP 1.6 `Reason` spellings, which 2.0.1's
    `stoppedReason` also uses, so adapters can pass them through."""

    EV_DISCONNECTED = "EVDisconnected"
    REMOTE = "Remote"
    LOCAL = "Local"
    DEAUTHORIZED = "DeAuthorized"
    POWER_LOSS = "PowerLoss"
    REBOOT = "Reboot"
    OTHER = "Other"


class SessionOrigin(StrEnum):
    """Who authorized the session."""

    LOCAL = "Local"
    """An identifier presented at the charger (RFID) and accepted by the authorizer."""
    REMOTE = "Remote"
    """A remote start from an upstream system."""


@dataclass(frozen=True, slots=True)
class Session:
    """One charging session on one connector.

    `meter_start_wh`/`meter_stop_wh` are readings of the charger's lifetime energy register, so
    the energy delivered is their difference. `upstream_transaction_id` is the id the upstream
    system assigned (the OCPP 1.6 transactionId, as text), once known.
    """

    id: str
    charger_id: str
    connector_id: int
    id_tag: str
    origin: SessionOrigin
    started_at: datetime
    meter_start_wh: float
    stopped_at: datetime | None = None
    meter_stop_wh: float | None = None
    stop_reason: StopReason | None = None
    upstream_transaction_id: str | None = None
    reservation_id: int | None = None
    """The reservation this session used (`gateway.core.reservations`), if any; not kept in
    the ledger (only the session's start message upstream carries it)."""

    @property
    def active(self) -> bool:
        return self.stopped_at is None

    @property
    def energy_wh(self) -> float | None:
        """Energy delivered, once the session has ended."""
        if self.meter_stop_wh is None:
            return None
        return self.meter_stop_wh - self.meter_start_wh

    def ended(self, at: datetime, meter_stop_wh: float, reason: StopReason) -> Session:
        """This session, closed."""
        return dataclasses.replace(
            self, stopped_at=at, meter_stop_wh=meter_stop_wh, stop_reason=reason
        )
