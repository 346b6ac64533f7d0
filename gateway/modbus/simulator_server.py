"""Serving simulated chargers over Modbus: one server, many unit ids, as a Modbus TCP gateway
in front of several chargers, a serial-to-Ethernet converter in front of an RS-485 bus, or
the RS-485 bus itself would."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from gateway.modbus.link import SerialSettings

log = logging.getLogger(__name__)


class SimulatedDevice(Protocol):
    """What a server hosts under a unit id: a simulated charger or meter."""

    unit_id: int

    async def handle_read(
        self, func_code: int, address: int, count: int
    ) -> list[int] | ExcCodes: ...

    async def handle_write(self, address: int, words: Sequence[int]) -> ExcCodes | None: ...


_WRITE_FUNCTIONS = (6, 16)

REQUEST_LOG_LENGTH = 10_000
"""How many of the latest requests `SimulatorServer.requests` keeps (a long `evgw simulate`
run must not grow without bound)."""


@dataclass(slots=True)
class ServedRequest:
    """A request frame the simulator received, in arrival order (for tests of bus timing
    and ordering). Times are `time.monotonic()` seconds."""

    unit_id: int
    function_code: int
    address: int
    count: int
    received_at: float
    answered_at: float | None = None
    """When the answer was handed to the transport; None while pending or if unanswered
    (a unit missing on an RTU bus stays silent)."""


class _SimulatorContext(ModbusServerContext):
    """Routes pymodbus datastore calls to the simulated chargers by unit id, so every read
    is computed from the live state and every write takes effect at once."""

    def __init__(self, chargers: dict[int, SimulatedDevice]) -> None:
        # The base initializer wraps static data blocks, which this context has none of.
        self._chargers = chargers
        self.old_simulator = True  # tells ModbusBaseServer to call this context directly
        self.simdevices = []

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        return await self._charger(device_id).handle_read(func_code, address, count)

    async def async_setValues(
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        if func_code not in _WRITE_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        return await self._charger(device_id).handle_write(address, [int(v) for v in values])

    def device_ids(self) -> list[int]:
        return list(self._chargers)

    def _charger(self, device_id: int) -> SimulatedDevice:
        charger = self._chargers.get(device_id)
        if charger is None:
            # Modbus TCP: pymodbus answers exception 11 (gateway target failed to respond).
            # RTU: the server is told to ignore it, so the unit stays silent as on a real bus.
            raise NoSuchIdException(f"no simulated charger with unit id {device_id}")
        return charger


class SimulatorServer:
    """A Modbus server hosting one or more simulated chargers, one per unit id.

    Start it once, with one of: `start` (Modbus TCP, as a TCP gateway: a missing unit id is
    answered with exception 11), `start_rtu_over_tcp` (RTU frames over TCP, as a transparent
    serial-to-Ethernet converter) or `start_serial` (RTU on a serial port, as the RS-485 bus
    itself). On the RTU transports a unit id with no charger does not answer at all.

    `chargers` may be changed while running (`remove_charger`, `add_charger`): a removed
    unit vanishes from the bus at once. `requests` logs the request frames received, the
    latest `REQUEST_LOG_LENGTH` of them.
    """

    def __init__(self, chargers: Iterable[SimulatedDevice]) -> None:
        self.chargers: dict[int, SimulatedDevice] = {}
        for charger in chargers:
            self.add_charger(charger)
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self.port: int | None = None
        """The bound TCP port while serving over TCP, else None."""
        self.device: str | None = None
        """The serial device while serving on a serial port, else None."""
        self.requests: deque[ServedRequest] = deque(maxlen=REQUEST_LOG_LENGTH)

    def add_charger(self, charger: SimulatedDevice) -> None:
        """Put `charger` on the bus under its unit id; `ValueError` if the id is taken."""
        if charger.unit_id in self.chargers:
            raise ValueError(f"two simulated chargers with unit id {charger.unit_id}")
        self.chargers[charger.unit_id] = charger

    def remove_charger(self, unit_id: int) -> SimulatedDevice:
        """Take the charger with `unit_id` off the bus (it stops answering) and return it."""
        return self.chargers.pop(unit_id)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve Modbus TCP on host:port (0 = an ephemeral port); returns the bound port."""
        return await self._start_tcp(host, port, FramerType.SOCKET)

    async def start_rtu_over_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve Modbus RTU frames over TCP on host:port (0 = an ephemeral port), as a
        serial-to-Ethernet converter does; returns the bound port."""
        return await self._start_tcp(host, port, FramerType.RTU)

    async def start_serial(self, device: str, settings: SerialSettings | None = None) -> None:
        """Serve Modbus RTU on the serial port `device` (e.g. one end of a
        `gateway.modbus.serial_pair.SerialPair`). A pty carries 8N1 only (see serial_pair)."""
        self._check_not_running()
        line = settings if settings is not None else SerialSettings()
        server = ModbusSerialServer(
            _SimulatorContext(self.chargers),
            framer=FramerType.RTU,
            port=device,
            baudrate=line.baudrate,
            bytesize=line.bytesize,
            parity=line.parity,
            stopbits=line.stopbits,
            ignore_missing_devices=True,
            trace_pdu=self._trace,
        )
        try:
            await server.serve_forever(background=True)
        except Exception as exc:
            # pymodbus lets pyserial's termios.error through; name the port either way.
            await server.shutdown()  # type: ignore[no-untyped-call]
            raise RuntimeError(
                f"modbus simulator could not open {device} at {line}: {exc}"
            ) from exc
        self._server = server
        self.device = device
        log.info("modbus simulator on serial port", extra={"device": device, "line": str(line)})

    async def stop(self) -> None:
        """Stop serving and drop every client connection (or close the serial port)."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        self.port = None
        self.device = None

    async def _start_tcp(self, host: str, port: int, framer: FramerType) -> int:
        self._check_not_running()
        server = ModbusTcpServer(
            _SimulatorContext(self.chargers),
            framer=framer,
            address=(host, port),
            ignore_missing_devices=framer is FramerType.RTU,
            trace_pdu=self._trace,
        )
        await server.serve_forever(background=True)
        self._server = server
        # A TCP listener is an asyncio.Server, or uvloop's own Server class under uvloop:
        # both have `sockets`, so check for that rather than for a class.
        sockets = getattr(server.transport, "sockets", None)
        if not sockets:
            raise RuntimeError(f"modbus simulator could not listen on {host}:{port}")
        self.port = int(sockets[0].getsockname()[1])
        log.info(
            "modbus simulator listening",
            extra={"host": host, "port": self.port, "framing": framer.value},
        )
        return self.port

    def _check_not_running(self) -> None:
        if self._server is not None:
            raise RuntimeError("simulator already running")

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        now = time.monotonic()
        if not sending:
            self.requests.append(
                ServedRequest(pdu.dev_id, pdu.function_code, pdu.address, pdu.count, now)
            )
            return pdu
        for request in reversed(self.requests):
            if request.unit_id == pdu.dev_id and request.answered_at is None:
                request.answered_at = now
                break
        return pdu
