"""Southbound Modbus (TCP, RTU on a serial line, RTU over TCP): charger profiles as data,
register codecs, the async driver, a poller, and a simulated charger with an EV model for
tests and the demo.

Typical use::

    profile = load_profile("keba-p30")
    pool = ModbusLinkPool(request_timeout_s=2.0)
    charger = ModbusCharger(pool.link("192.0.2.10"), None, profile)  # None: profile's unit id
    reading = await charger.read()
    await charger.set_current_limit(16.0)
"""

from gateway.core.charger import round_down_to_resolution
from gateway.modbus.driver import ModbusCharger
from gateway.modbus.link import (
    ModbusConnectionError,
    ModbusExceptionResponse,
    ModbusLink,
    ModbusLinkError,
    ModbusLinkPool,
    ModbusRtuOverTcpLink,
    ModbusSerialLink,
    ModbusTcpLink,
    ModbusTimeout,
    SerialSettings,
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
)
from gateway.modbus.registers import (
    RegisterDecodeError,
    RegisterType,
    WordOrder,
    decode_value,
    encode_value,
)
from gateway.modbus.serial_pair import SerialPair
from gateway.modbus.simulator import SimulatedCharger
from gateway.modbus.simulator_server import ServedRequest, SimulatorServer

__all__ = [
    "ChargerOffline",
    "ChargerOnline",
    "ChargerPolled",
    "ChargerPoller",
    "ChargerProfile",
    "ModbusCharger",
    "ModbusConnectionError",
    "ModbusExceptionResponse",
    "ModbusLink",
    "ModbusLinkError",
    "ModbusLinkPool",
    "ModbusRtuOverTcpLink",
    "ModbusSerialLink",
    "ModbusTcpLink",
    "ModbusTimeout",
    "PollEvent",
    "ProfileError",
    "RegisterDecodeError",
    "RegisterSpec",
    "RegisterType",
    "SerialPair",
    "SerialSettings",
    "ServedRequest",
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
