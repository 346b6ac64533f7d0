"""Site and circuit meters over Modbus: profiles as data (Eastron SDM630, ABB B23), the
driver, a monitor that keeps the latest reading and knows when it is stale, and a simulator.

Typical use::

    meter = ModbusMeter(pool.link("192.0.2.20"), None, load_meter_profile("eastron-sdm630"),
                        name="site")
    monitor = MeterMonitor(meter, interval_s=1.0)
    asyncio.create_task(monitor.run())
    reading = monitor.latest()   # None while stale
"""

from gateway.core.meter import MeterReading
from gateway.meters.driver import MeterUnavailable, ModbusMeter, RegisterReader
from gateway.meters.monitor import DEFAULT_STALE_AFTER_S, MeterMonitor
from gateway.meters.profile import (
    METER_ROLES,
    MeterProfile,
    load_meter_profile,
    meter_profile_names,
    parse_meter_profile,
)
from gateway.meters.simulator import SimulatedMeter

__all__ = [
    "DEFAULT_STALE_AFTER_S",
    "METER_ROLES",
    "MeterMonitor",
    "MeterProfile",
    "MeterReading",
    "MeterUnavailable",
    "ModbusMeter",
    "RegisterReader",
    "SimulatedMeter",
    "load_meter_profile",
    "meter_profile_names",
    "parse_meter_profile",
]
