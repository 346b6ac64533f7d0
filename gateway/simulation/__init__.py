"""Simulated charge points with an EV model, shared by every southbound simulator.

`SimulatedChargePoint` holds the physics (setpoint, enable, watchdog and failsafe, the EV and
its lagging current); the Modbus simulator (`gateway.modbus.simulator`) and the MQTT
simulators (`gateway.mqtt.simulator`) expose it in their own wire formats.
"""

from gateway.simulation.charge_point import (
    CURRENT_LAG_TIME_CONSTANT_S,
    NOMINAL_VOLTAGE_V,
    PHYSICS_STEP_S,
    PILOT_MINIMUM_A,
    SimulatedChargePoint,
    SimulatedEv,
)

__all__ = [
    "CURRENT_LAG_TIME_CONSTANT_S",
    "NOMINAL_VOLTAGE_V",
    "PHYSICS_STEP_S",
    "PILOT_MINIMUM_A",
    "SimulatedChargePoint",
    "SimulatedEv",
]
