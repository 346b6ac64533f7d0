"""What a meter reports, whatever its brand: per-phase currents for the load balancer's
headroom (load-balancing.md §2), and power and energy for the operators."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One consistent poll of a three-phase meter.

    Currents are per grid phase L1, L2, L3 in amperes, as the meter measures them (a meter
    that gives no direction reports import and export alike). Powers are in W, positive for
    import; energies are the meter's lifetime registers in Wh.
    """

    current_a: tuple[float, float, float]
    voltage_v: tuple[float, float, float]
    power_w: float
    power_per_phase_w: tuple[float, float, float] | None = None
    """None when the meter has no per-phase power registers."""
    energy_import_wh: float = 0.0
    energy_export_wh: float | None = None
    """None when the meter has no export register."""
