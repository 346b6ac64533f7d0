"""Southbound Modbus TCP: charger profiles as data, register codecs, the async driver, a
poller, and a simulated charger with an EV model for tests and the demo.

Typical use::

    profile = load_profile("keba-p30")
    pool = ModbusLinkPool(request_timeout_s=2.0)
    charger = ModbusCharger(pool.link("192.0.2.10"), None, profile)  # None: profile's unit id
    reading = await charger.read()
    await charger.set_current_limit(16.0)
"""

from gateway.modbus.driver import ModbusCharger
from gateway.modbus.link import (
    ModbusConnectionError,
    ModbusExceptionResponse,
    ModbusLinkError,
    ModbusLinkPool,
    ModbusTcpLink,
    ModbusTimeout,
)
from gateway.modbus.poller import (
    ChargerOffline,
    ChargerOnline,
    ChargerPolled,
    ChargerPoller,
    PollEvent,
)
from gateway.modbus.profile import (
    ChargerProfile,
    ProfileError,
    RegisterSpec,
    load_profile,
    parse_profile,
    profile_names,
    round_down_to_resolution,
)
from gateway.modbus.registers import (
    RegisterDecodeError,
    RegisterType,
    WordOrder,
    decode_value,
    encode_value,
)
from gateway.modbus.simulator import SimulatedCharger
from gateway.modbus.simulator_server import SimulatorServer

__all__ = [
    "ChargerOffline",
    "ChargerOnline",
    "ChargerPolled",
    "ChargerPoller",
    "ChargerProfile",
    "ModbusCharger",
    "ModbusConnectionError",
    "ModbusExceptionResponse",
    "ModbusLinkError",
    "ModbusLinkPool",
    "ModbusTcpLink",
    "ModbusTimeout",
    "PollEvent",
    "ProfileError",
    "RegisterDecodeError",
    "RegisterSpec",
    "RegisterType",
    "SimulatedCharger",
    "SimulatorServer",
    "WordOrder",
    "decode_value",
    "encode_value",
    "load_profile",
    "parse_profile",
    "profile_names",
    "round_down_to_resolution",
]
