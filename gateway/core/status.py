"""The OCPP-agnostic status of a connector, derived from the charger's pilot state and the
session bookkeeping.

The vocabulary is OCPP 1.6's ChargePointStatus because it is the finest-grained of the
protocols the gateway speaks; OCPP 2.0.1 (Available/Occupied/Unavailable/Faulted) and OCPI
statuses are projections of it. The derivation follows the project reference
(`chargers.md` §2, after libocpp's state machine and evcc).
"""

from __future__ import annotations

from enum import StrEnum

from gateway.core.charger import ChargerReading, CpState


class ConnectorStatus(StrEnum):
    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    RESERVED = "Reserved"
    """Otherwise Available, but held for a reservation (`gateway.core.reservations`)."""


# The pilot states in which the EVSE withholds current (PWM off) although a vehicle is there.
_EVSE_WITHHOLDING = frozenset({CpState.B1, CpState.C1, CpState.D1})


def derive_status(
    reading: ChargerReading | None,
    *,
    online: bool,
    session_active: bool,
    operative: bool = True,
    offer_acknowledged: bool,
    finishing: bool,
    start_pending: bool,
    reserved: bool = False,
) -> ConnectorStatus:
    """The status a connector shows.

    - An unreachable charger is Unavailable: the gateway cannot tell its state, and it cannot
      start or stop charging there (Faulted is kept for faults the charger itself reports).
      So is one taken out of service (`operative` false), unless it reports a fault.
    - A session whose charging offer the charger has not yet confirmed stays Preparing, so a
      stale reading from before the enable never shows up as a suspension.
    - In a session, an EVSE that withholds current (disabled, 0 A, or B1/C1/D1) is
      SuspendedEVSE; that wins over SuspendedEV when both suspend.
    """
    if not online or reading is None:
        return ConnectorStatus.UNAVAILABLE
    if reading.cp_state.faulted or reading.error_code != 0:
        return ConnectorStatus.FAULTED
    if not operative:
        return ConnectorStatus.UNAVAILABLE
    if session_active:
        if not offer_acknowledged:
            return ConnectorStatus.PREPARING
        if not reading.enabled or reading.setpoint_a <= 0 or reading.cp_state in _EVSE_WITHHOLDING:
            return ConnectorStatus.SUSPENDED_EVSE
        if reading.cp_state.charging:
            return ConnectorStatus.CHARGING
        return ConnectorStatus.SUSPENDED_EV
    if finishing:
        return ConnectorStatus.FINISHING
    if reading.cp_state.vehicle_connected or start_pending:
        return ConnectorStatus.PREPARING
    return ConnectorStatus.RESERVED if reserved else ConnectorStatus.AVAILABLE
