"""What every southbound driver reports about a charger, whatever its brand or protocol.

A driver turns register blocks or MQTT payloads into a `ChargerReading`; the core derives
connector status and sessions from successive readings. Commands go the other way through
`ChargerControl`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class CpState(StrEnum):
    """IEC 61851-1 control-pilot state (with the PWM sub-state where the charger reports it)."""

    A = "A"  # no vehicle
    B1 = "B1"  # vehicle connected, EVSE not offering current
    B2 = "B2"  # EVSE offers current, EV not drawing
    C1 = "C1"  # EV requests, EVSE withholds
    C2 = "C2"  # charging
    D1 = "D1"  # as C1, ventilation required
    D2 = "D2"  # as C2, ventilation required
    E = "E"  # CP shorted or no power
    F = "F"  # EVSE fault

    @property
    def vehicle_connected(self) -> bool:
        return self not in (CpState.A, CpState.E, CpState.F)

    @property
    def charging(self) -> bool:
        return self in (CpState.C2, CpState.D2)

    @property
    def faulted(self) -> bool:
        return self in (CpState.E, CpState.F)


class OcppErrorCode(StrEnum):
    """OCPP 1.6 ChargePointErrorCode: what a charger's vendor fault code means upstream.

    Profiles map vendor codes to these (`[errors]`); a non-zero code they do not map is
    `OTHER_ERROR`, and the vendor code itself goes into StatusNotification.vendorErrorCode.
    """

    CONNECTOR_LOCK_FAILURE = "ConnectorLockFailure"
    EV_COMMUNICATION_ERROR = "EVCommunicationError"
    GROUND_FAILURE = "GroundFailure"
    HIGH_TEMPERATURE = "HighTemperature"
    INTERNAL_ERROR = "InternalError"
    LOCAL_LIST_CONFLICT = "LocalListConflict"
    NO_ERROR = "NoError"
    OTHER_ERROR = "OtherError"
    OVER_CURRENT_FAILURE = "OverCurrentFailure"
    OVER_VOLTAGE = "OverVoltage"
    POWER_METER_FAILURE = "PowerMeterFailure"
    POWER_SWITCH_FAILURE = "PowerSwitchFailure"
    READER_FAILURE = "ReaderFailure"
    RESET_FAILURE = "ResetFailure"
    UNDER_VOLTAGE = "UnderVoltage"
    WEAK_SIGNAL = "WeakSignal"


@dataclass(frozen=True, slots=True)
class ChargerReading:
    """One consistent poll of a charger.

    Currents are per supply-side phase L1, L2, L3 in amperes; a single-phase charger reports 0
    on the phases it does not use. `energy_wh` is the charger's lifetime import register, so
    a session's energy is the difference between two readings.
    """

    cp_state: CpState
    enabled: bool
    current_a: tuple[float, float, float]
    voltage_v: tuple[float, float, float]
    power_w: float
    energy_wh: float
    setpoint_a: float
    """The maximum current the charger is currently allowed to offer (0 = paused)."""
    rfid: str | None = None
    """An RFID tag presented at the charger and not yet consumed, if the charger has a reader."""
    error_code: int = 0
    """The vendor's fault code; 0 means no fault."""
    ocpp_error_code: OcppErrorCode = OcppErrorCode.NO_ERROR
    """`error_code` (or a fault state without one) as an OCPP 1.6 ChargePointErrorCode."""


class ChargerControl(Protocol):
    """Commands a southbound driver can carry out on one charger. Every method raises
    `ChargerUnavailable` when the charger cannot be reached."""

    async def set_current_limit(self, amps: float) -> None:
        """Allow the charger to offer at most `amps` (0 pauses; never 0 < amps < 6)."""

    async def set_enabled(self, enabled: bool) -> None:
        """Enable or disable charging (disabling ends the offer of current at once)."""


class ChargerUnavailable(Exception):
    """A charger did not answer, answered with an exception, or the link to it is down."""


def round_down_to_resolution(amps: float, resolution_a: float) -> float:
    """Round `amps` down to a multiple of `resolution_a` (chargers.md §4: round setpoints
    down, whatever the driver), exactly: decimal arithmetic keeps 16.0 A at 0.1 A resolution
    from becoming 15.9."""
    step = Decimal(repr(resolution_a))
    steps = (Decimal(repr(amps)) / step).to_integral_value(rounding="ROUND_FLOOR")
    return float(steps * step)
